// engine::serve::prompt -- the token ids of a request's prompt. A chat is rendered with the
// model's chat template; the template's own markers are read as special tokens, while the text
// of every message is tokenized as plain text, so "<|im_start|>" typed by a user cannot open a
// turn of its own.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "io/gguf.hpp"
#include "text/chat_template.hpp"
#include "text/tokenizer.hpp"

namespace engine::serve {

// Does the file name a chat format (a tokenizer.chat_template, or the marker tokens of one)?
bool has_chat_template(const gguf& file);

// The template applied to `msgs` with the assistant's turn opened, as token ids (BOS where the
// model wants one). Message text is plain text; template text may hold special tokens.
std::vector<int32_t> chat_prompt(const chat_template& tmpl, const tokenizer& tok,
                                 const std::vector<chat_message>& msgs);

// Raw text to continue (BOS where the model wants one; no special tokens are parsed).
std::vector<int32_t> text_prompt(const tokenizer& tok, const std::string& text);

}  // namespace engine::serve
