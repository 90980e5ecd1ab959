// Fuzz target: the chat-template reader and renderer (examples/engine/src/text/chat_template.hpp).
// Input: byte 0 bit 0 = add_assistant; the rest split at NUL bytes into the template text,
// then role, content, role, content, ...
// Properties: no crash for any template or message; the format is the one of the template's
// first marker; a default system prompt only for ChatML, and then rendered before a chat that
// does not start with a system message; every message's content (trimmed, where the format
// trims) is in the rendered text (Gemma: system text once a user turn follows it); with
// add_assistant the text ends with the assistant turn's opening.
#include <string>

#include "targets.hpp"
#include "text/chat_template.hpp"

namespace strata_fuzz {

namespace {

std::string trimmed(std::string_view s) {
  const auto ws = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  while (!s.empty() && ws(s.front())) s.remove_prefix(1);
  while (!s.empty() && ws(s.back())) s.remove_suffix(1);
  return std::string(s);
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

void chat_template(input in) {
  if (in.empty()) return;
  const bool add_assistant = in[0] & 1;
  std::vector<std::string> parts(1);
  for (std::size_t i = 1; i < in.size(); ++i) {
    if (in[i] == 0)
      parts.emplace_back();
    else
      parts.back() += char(in[i]);
  }
  const std::string& tmpl = parts[0];
  std::vector<engine::chat_message> msgs;
  for (std::size_t i = 1; i + 1 < parts.size(); i += 2) msgs.push_back({parts[i], parts[i + 1]});

  const engine::chat_template t = engine::parse_chat_template(tmpl);
  check(t.format == engine::detect_chat_format(tmpl), "parse and detect disagree on the format");
  const std::size_t im = tmpl.find("<|im_start|>"), l3 = tmpl.find("<|start_header_id|>"),
                    ge = tmpl.find("<start_of_turn>");
  using engine::chat_format;
  const chat_format want = im != std::string::npos   ? chat_format::chatml
                           : l3 != std::string::npos ? chat_format::llama3
                           : ge != std::string::npos ? chat_format::gemma
                                                     : chat_format::plain;
  check(t.format == want, "the format is not the one of the first known marker");
  check(t.default_system.empty() || t.format == chat_format::chatml,
        "a default system prompt outside ChatML");
  check(t.default_system.empty() || contains(tmpl, "<|im_end|>"),
        "a default system prompt without <|im_end|> in the template");

  const std::string text = engine::render_chat(t, msgs, add_assistant);
  bool user_follows = false;
  for (std::size_t i = msgs.size(); i-- > 0;) {
    const engine::chat_message& m = msgs[i];
    const bool trims = t.format == chat_format::llama3 || t.format == chat_format::gemma;
    const std::string body = trims ? trimmed(m.content) : m.content;
    if (t.format == chat_format::gemma && m.role == "system") {
      if (user_follows)
        check(contains(text, body), "a Gemma system message is lost before a user turn");
    } else {
      check(contains(text, body), "a message's content is not in the rendered text");
    }
    if (m.role != "system" && m.role != "assistant") user_follows = true;
  }
  if (t.format == chat_format::chatml && !t.default_system.empty() && !msgs.empty() &&
      msgs[0].role != "system")
    check(text.starts_with("<|im_start|>system\n" + t.default_system + "<|im_end|>\n"),
          "the default system prompt does not open the chat");
  if (add_assistant) {
    const char* open = t.format == chat_format::chatml ? "<|im_start|>assistant\n"
                       : t.format == chat_format::llama3
                           ? "<|start_header_id|>assistant<|end_header_id|>\n\n"
                       : t.format == chat_format::gemma ? "<start_of_turn>model\n"
                                                        : "Assistant:";
    check(text.ends_with(open), "add_assistant does not open the assistant turn");
  }
}

std::vector<bytes> chat_template_seeds() {
  using namespace std::string_literals;
  const std::string smollm =
      "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
      "{{ '<|im_start|>system\\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
      "Face<|im_end|>\\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + "
      "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}";
  const std::string chat = "user\0Hi there\0assistant\0 Hello! \0user\0two tips?"s;
  std::vector<bytes> s;
  for (const std::string& tmpl :
       {smollm, std::string("<|start_header_id|>{{ role }}<|end_header_id|>"),
        std::string("<start_of_turn>{{ role }}"), std::string("{{ plain }}")}) {
    for (const std::string& msgs : {chat, "system\0Be brief.\0"s + chat}) {
      bytes b = to_bytes(tmpl + '\0' + msgs);
      b.insert(b.begin(), 1);
      s.push_back(std::move(b));
    }
  }
  return s;
}

}  // namespace strata_fuzz
