#include "text/chat_template.hpp"

namespace engine {
namespace {

struct marker {
  std::string_view text;
  chat_format format;
};
// Checked in order; a template holding several markers gets the first.
constexpr marker markers[] = {
    {"<|im_start|>", chat_format::chatml},
    {"<|start_header_id|>", chat_format::llama3},
    {"<start_of_turn>", chat_format::gemma},
};

std::string trim(std::string_view s) {
  const auto ws = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  size_t b = 0, e = s.size();
  while (b < e && ws(s[b])) ++b;
  while (e > b && ws(s[e - 1])) --e;
  return std::string(s.substr(b, e - b));
}

// A Jinja string literal's body -> its value; false when it is not a plain literal.
bool unescape_literal(std::string_view body, std::string& out) {
  out.clear();
  for (size_t i = 0; i < body.size(); ++i) {
    const char c = body[i];
    if (c == '\'' || c == '"' || c == '{' || c == '}') return false;
    if (c != '\\') {
      out += c;
      continue;
    }
    if (++i == body.size()) return false;
    switch (body[i]) {
      case 'n': out += '\n'; break;
      case 't': out += '\t'; break;
      case 'r': out += '\r'; break;
      case '\\':
      case '\'':
      case '"': out += body[i]; break;
      default: return false;
    }
  }
  return true;
}

void render_chatml(const chat_template& t, const std::vector<chat_message>& msgs, std::string& s) {
  if (!msgs.empty() && msgs[0].role != "system" && !t.default_system.empty()) {
    s += "<|im_start|>system\n" + t.default_system + "<|im_end|>\n";
  }
  for (const chat_message& m : msgs)
    s += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
}

void render_llama3(const std::vector<chat_message>& msgs, std::string& s) {
  for (const chat_message& m : msgs) {
    s += "<|start_header_id|>" + m.role + "<|end_header_id|>\n\n" + trim(m.content) + "<|eot_id|>";
  }
}

void render_gemma(const std::vector<chat_message>& msgs, std::string& s) {
  std::string system;
  for (const chat_message& m : msgs) {
    if (m.role == "system") {
      system += trim(m.content);
      continue;
    }
    const std::string role = m.role == "assistant" ? "model" : m.role;
    s += "<start_of_turn>" + role + "\n";
    if (!system.empty() && role != "model") {
      s += system + "\n\n";
      system.clear();
    }
    s += trim(m.content) + "<end_of_turn>\n";
  }
}

void render_plain(const std::vector<chat_message>& msgs, std::string& s) {
  for (const chat_message& m : msgs) {
    std::string role = m.role;
    if (!role.empty() && role[0] >= 'a' && role[0] <= 'z')
      role[0] = static_cast<char>(role[0] - 32);
    s += role + ": " + m.content + "\n";
  }
}

}  // namespace

std::string_view format_name(chat_format f) {
  switch (f) {
    case chat_format::chatml: return "chatml";
    case chat_format::llama3: return "llama3";
    case chat_format::gemma: return "gemma";
    case chat_format::plain: break;
  }
  return "plain";
}

chat_format detect_chat_format(std::string_view tmpl) {
  for (const marker& m : markers) {
    if (tmpl.find(m.text) != std::string_view::npos) return m.format;
  }
  return chat_format::plain;
}

std::string default_system_prompt(std::string_view tmpl) {
  constexpr std::string_view head = "<|im_start|>system";
  std::string value;
  for (size_t p = tmpl.find(head); p != std::string_view::npos; p = tmpl.find(head, p + 1)) {
    size_t b = p + head.size();
    if (tmpl.substr(b, 1) == "\n") {
      b += 1;
    } else if (tmpl.substr(b, 2) == "\\n") {
      b += 2;
    } else {
      continue;
    }
    const size_t e = tmpl.find("<|im_end|>", b);
    if (e == std::string_view::npos) break;
    // Only a literal counts: "system\n' + messages[0]['content'] + '" is not one.
    if (unescape_literal(tmpl.substr(b, e - b), value) && !value.empty()) return value;
  }
  return {};
}

chat_template parse_chat_template(std::string_view tmpl) {
  chat_template t;
  t.format = detect_chat_format(tmpl);
  if (t.format == chat_format::chatml) t.default_system = default_system_prompt(tmpl);
  return t;
}

chat_template chat_template_of(const gguf& file) {
  if (file.has("tokenizer.chat_template")) {
    return parse_chat_template(file.get_string("tokenizer.chat_template"));
  }
  chat_template t;
  if (const gguf_value* tokens = file.find("tokenizer.ggml.tokens")) {
    for (const marker& m : markers) {
      for (const std::string_view s : tokens->strings) {
        if (s == m.text) {
          t.format = m.format;
          return t;
        }
      }
    }
  }
  return t;
}

std::string render_chat(const chat_template& tmpl, const std::vector<chat_message>& msgs,
                        bool add_assistant) {
  std::string s;
  switch (tmpl.format) {
    case chat_format::chatml:
      render_chatml(tmpl, msgs, s);
      if (add_assistant) s += "<|im_start|>assistant\n";
      break;
    case chat_format::llama3:
      render_llama3(msgs, s);
      if (add_assistant) s += "<|start_header_id|>assistant<|end_header_id|>\n\n";
      break;
    case chat_format::gemma:
      render_gemma(msgs, s);
      if (add_assistant) s += "<start_of_turn>model\n";
      break;
    case chat_format::plain:
      render_plain(msgs, s);
      if (add_assistant) s += "Assistant:";
      break;
  }
  return s;
}

std::string apply_chat_template(const gguf& file, const std::vector<chat_message>& msgs,
                                bool add_assistant) {
  return render_chat(chat_template_of(file), msgs, add_assistant);
}

}  // namespace engine
