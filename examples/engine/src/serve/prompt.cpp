#include "serve/prompt.hpp"

#include <string_view>

#include "error.hpp"

namespace engine::serve {

namespace {

// Marks a message's place in the rendered template; the bytes cannot come from JSON text
// that passed validation (request.cpp refuses this control sequence in message text).
constexpr std::string_view mark_open = "\x01\x02strata-msg:";
constexpr char mark_close = '\x03';

// What render_chat does to message text in formats that trim it (Llama 3, Gemma).
std::string trimmed(std::string_view s) {
  const auto ws = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  size_t b = 0, e = s.size();
  while (b < e && ws(s[b])) ++b;
  while (e > b && ws(s[e - 1])) --e;
  return std::string(s.substr(b, e - b));
}

}  // namespace

bool has_chat_template(const gguf& file) {
  return chat_template_of(file).format != chat_format::plain;
}

std::vector<int32_t> chat_prompt(const chat_template& tmpl, const tokenizer& tok,
                                 const std::vector<chat_message>& msgs) {
  std::vector<chat_message> marked = msgs;
  for (size_t i = 0; i < marked.size(); ++i) {
    if (msgs[i].content.find(mark_open) != std::string::npos)
      throw make_error("message text holds the bytes \\u0001\\u0002", "chat prompt");
    marked[i].content = std::string(mark_open) + std::to_string(i) + mark_close;
  }
  const bool trims = tmpl.format == chat_format::llama3 || tmpl.format == chat_format::gemma;
  const std::string text = render_chat(tmpl, marked, true);
  // Template text between the marks: special tokens allowed; the marks: message text, plain.
  std::vector<int32_t> out;
  bool first = true;
  size_t pos = 0;
  const auto add = [&](std::string_view piece, bool special) {
    if (piece.empty()) return;
    const auto ids = tok.encode(piece, first, special);
    out.insert(out.end(), ids.begin(), ids.end());
    first = false;
  };
  while (pos < text.size()) {
    const size_t m = text.find(mark_open, pos);
    if (m == std::string::npos) {
      add(std::string_view(text).substr(pos), true);
      break;
    }
    add(std::string_view(text).substr(pos, m - pos), true);
    const size_t close = text.find(mark_close, m);
    const size_t idx = std::stoul(text.substr(m + mark_open.size(), close - m - mark_open.size()));
    const std::string& content = msgs.at(idx).content;
    if (first && tok.add_bos() && tok.bos() >= 0) {  // BOS before a message that opens the text
      out.push_back(tok.bos());
      first = false;
    }
    add(trims ? trimmed(content) : content, false);
    pos = close + 1;
  }
  if (first) out = tok.encode("", true, false);
  return out;
}

std::vector<int32_t> text_prompt(const tokenizer& tok, const std::string& text) {
  return tok.encode(text, true, false);
}

}  // namespace engine::serve
