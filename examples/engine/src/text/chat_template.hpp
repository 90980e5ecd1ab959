// engine::chat_template -- renders a conversation the way the model was trained to read it.
// The GGUF's tokenizer.chat_template (Jinja) is not interpreted; its markers say which of the
// known formats it is (as llama.cpp's built-in templates do):
//   ChatML  <|im_start|>role\ncontent<|im_end|>\n      (SmolLM2, Qwen; with the template's
//           default system prompt when the first message is not a system one)
//   Llama 3 <|start_header_id|>role<|end_header_id|>\n\ncontent<|eot_id|>
//   Gemma   <start_of_turn>user\ncontent<end_of_turn>\n  (assistant -> model; the system prompt
//           goes into the first user turn)
//   plain   "User: content\n" lines, for templates it does not know.
// BOS is not part of the text: encode with add_special adds it where the model wants one.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "io/gguf.hpp"

namespace engine {

struct chat_message {
  std::string role, content;
};

// Renders messages with the GGUF's tokenizer.chat_template, recognising ChatML, Llama 3,
// Gemma (and a plain fallback) by its markers; add_assistant opens the assistant turn.
std::string apply_chat_template(const gguf& file, const std::vector<chat_message>& msgs,
                                bool add_assistant);

enum class chat_format { chatml, llama3, gemma, plain };
std::string_view format_name(chat_format f);  // "chatml", "llama3", "gemma", "plain"

struct chat_template {
  chat_format format = chat_format::plain;
  std::string default_system;  // ChatML: system prompt used when the chat has none
};

// A template's format from its markers; plain when none is known.
chat_format detect_chat_format(std::string_view tmpl);
// The literal system prompt a ChatML template inserts when the first message is not a system
// message (SmolLM2: "You are a helpful AI assistant named SmolLM, ..."); "" when it has none.
std::string default_system_prompt(std::string_view tmpl);
chat_template parse_chat_template(std::string_view tmpl);
// The file's template: tokenizer.chat_template when present, otherwise the format whose marker
// tokens the vocabulary has (gemma-3-270m's GGUF ships no template), else plain.
chat_template chat_template_of(const gguf& file);
std::string render_chat(const chat_template& tmpl, const std::vector<chat_message>& msgs,
                        bool add_assistant);

}  // namespace engine
