#include "serve/request.hpp"

#include <chrono>
#include <cmath>

#include "error.hpp"
#include "serve/prompt.hpp"
#include "serve/scheduler.hpp"

namespace engine::serve {

using nlohmann::json;

namespace {

constexpr int64_t max_tokens_limit = int64_t(1) << 22;
constexpr size_t max_stop_strings = 16;

const char* type_name(const json& v) { return v.type_name(); }

[[noreturn]] void bad(const std::string& field, const std::string& what) {
  throw api_error(400, "'" + field + "' " + what, field);
}

// The field's value when present and not null.
const json* field(const json& body, const char* name) {
  const auto it = body.find(name);
  if (it == body.end() || it->is_null()) return nullptr;
  return &*it;
}

bool get_bool(const json& body, const char* name, bool fallback) {
  const json* v = field(body, name);
  if (!v) return fallback;
  if (!v->is_boolean()) bad(name, std::string("must be a boolean, not ") + type_name(*v));
  return v->get<bool>();
}

double get_number(const json& body, const char* name, double fallback, double lo, double hi) {
  const json* v = field(body, name);
  if (!v) return fallback;
  if (!v->is_number()) bad(name, std::string("must be a number, not ") + type_name(*v));
  const double x = v->get<double>();
  if (!std::isfinite(x) || x < lo || x > hi)
    bad(name, "must be in [" + json(lo).dump() + ", " + json(hi).dump() + "], not " + v->dump());
  return x;
}

int64_t get_integer(const json& body, const char* name, int64_t fallback, int64_t lo, int64_t hi) {
  const json* v = field(body, name);
  if (!v) return fallback;
  if (!v->is_number_integer())
    bad(name,
        std::string("must be an integer, not ") + (v->is_number() ? "a fraction" : type_name(*v)));
  // Unsigned values above int64's range compare as huge.
  if (v->is_number_unsigned() && v->get<uint64_t>() > uint64_t(hi))
    bad(name,
        "must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], not " + v->dump());
  const int64_t x = v->get<int64_t>();
  if (x < lo || x > hi)
    bad(name,
        "must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], not " + v->dump());
  return x;
}

std::string get_string(const json& body, const char* name, const std::string& fallback) {
  const json* v = field(body, name);
  if (!v) return fallback;
  if (!v->is_string()) bad(name, std::string("must be a string, not ") + type_name(*v));
  return v->get<std::string>();
}

std::vector<std::string> get_stop(const json& body, const char* name) {
  const json* v = field(body, name);
  if (!v) return {};
  std::vector<std::string> out;
  if (v->is_string()) {
    out.push_back(v->get<std::string>());
  } else if (v->is_array()) {
    for (const json& s : *v) {
      if (!s.is_string()) bad(name, "must hold strings, not " + std::string(type_name(s)));
      out.push_back(s.get<std::string>());
    }
  } else {
    bad(name, std::string("must be a string or an array of strings, not ") + type_name(*v));
  }
  if (out.size() > max_stop_strings)
    bad(name, "may hold at most " + std::to_string(max_stop_strings) + " strings");
  for (const std::string& s : out)
    if (s.empty()) bad(name, "may not hold an empty string");
  return out;
}

uint64_t clock_seed() {
  return uint64_t(std::chrono::steady_clock::now().time_since_epoch().count());
}

// A message's content: a string, or OpenAI's array of {"type":"text","text":...} parts.
std::string content_text(const json& content, const std::string& where) {
  if (content.is_null()) return {};
  if (content.is_string()) return content.get<std::string>();
  if (!content.is_array())
    bad(where,
        std::string("must be a string or an array of content parts, not ") + type_name(content));
  std::string text;
  for (const json& part : content) {
    if (!part.is_object()) bad(where, "parts must be objects");
    const std::string type = get_string(part, "type", "");
    if (type != "text")
      throw api_error(400, "content part type '" + type + "' is not supported (only \"text\")",
                      where);
    text += get_string(part, "text", "");
  }
  return text;
}

std::vector<chat_message> get_messages(const json& body) {
  const json* v = field(body, "messages");
  if (!v) bad("messages", "is required");
  if (!v->is_array()) bad("messages", std::string("must be an array, not ") + type_name(*v));
  if (v->empty()) bad("messages", "must not be empty");
  std::vector<chat_message> out;
  for (size_t i = 0; i < v->size(); ++i) {
    const json& m = (*v)[i];
    const std::string where = "messages[" + std::to_string(i) + "]";
    if (!m.is_object()) bad(where, "must be an object");
    const json* role = field(m, "role");
    if (!role || !role->is_string()) bad(where + ".role", "must be a string");
    std::string r = role->get<std::string>();
    if (r == "developer") r = "system";
    if (r != "system" && r != "user" && r != "assistant")
      bad(where + ".role", "must be system, user or assistant, not '" + r + "'");
    const auto c = m.find("content");
    out.push_back({r, content_text(c == m.end() ? json() : *c, where + ".content")});
  }
  return out;
}

void refuse_unsupported(const json& body, bool chat) {
  if (const json* n = field(body, "n"); n && !(n->is_number_integer() && n->get<int64_t>() == 1))
    throw api_error(400, "'n' other than 1 is not supported (one choice per request)", "n");
  for (const char* name : {"tools", "functions"}) {
    const json* t = field(body, name);
    if (t && !(t->is_array() && t->empty()))
      throw api_error(400, std::string("'") + name + "' is not supported (no tool calls)", name);
  }
  if (const json* l = field(body, "logprobs"); l && !(l->is_boolean() && !l->get<bool>()))
    throw api_error(400, "'logprobs' is not supported", "logprobs");
  if (field(body, "top_logprobs"))
    throw api_error(400, "'top_logprobs' is not supported", "top_logprobs");
  if (const json* b = field(body, "best_of"); !chat && b && !(b->is_number_integer() && *b == 1))
    throw api_error(400, "'best_of' other than 1 is not supported", "best_of");
  if (!chat && get_bool(body, "echo", false))
    throw api_error(400, "'echo' is not supported", "echo");
  if (const json* r = field(body, "response_format")) {
    if (!r->is_object() || get_string(*r, "type", "text") != "text")
      throw api_error(400, "'response_format' other than text is not supported", "response_format");
  }
}

void check_model(const json& body, const model_context& mc, bool required) {
  const json* v = field(body, "model");
  if (!v) {
    if (required) bad("model", "is required");
    return;
  }
  if (!v->is_string()) bad("model", std::string("must be a string, not ") + type_name(*v));
  if (!is_served_model(mc, v->get<std::string>()))
    throw api_error(
        404, "model '" + v->get<std::string>() + "' not found (this server has '" + mc.name + "')",
        "model", "model_not_found");
}

std::vector<int32_t> build_prompt(const model_context& mc, const std::vector<chat_message>& msgs) {
  if (!mc.has_template)
    throw api_error(
        400, "model '" + mc.name + "' has no chat template: use /v1/completions or /api/generate");
  try {
    return chat_prompt(mc.tmpl, mc.tok, msgs);
  } catch (const error& e) {
    throw api_error(400, e.what(), "messages");
  }
}

// Prompt length against the slot's context; kv_policy against the slot's allocation.
void check_fit(gen_params& g, const model_context& mc, const char* prompt_field) {
  const int n_ctx = mc.sched.options().n_ctx;
  if (g.prompt.empty()) bad(prompt_field, "gives no tokens");
  if (int64_t(g.prompt.size()) >= n_ctx)
    throw api_error(400,
                    "prompt too long: " + std::to_string(g.prompt.size()) +
                        " tokens do not fit in the slot's context of " + std::to_string(n_ctx) +
                        " tokens (one more is needed for the answer)",
                    prompt_field, "context_length_exceeded");
  if (!g.kv_policy.empty()) {
    try {
      mc.sched.check_policy(g.kv_policy);
    } catch (const error& e) {
      throw api_error(400, e.what(), "kv_policy");
    }
  }
}

}  // namespace

bool is_served_model(const model_context& mc, const std::string& requested) {
  return requested.empty() || requested == mc.name || requested == mc.name + ".gguf" ||
         requested == mc.name + ":latest";
}

json parse_body(const std::string& body) {
  json v;
  try {
    v = json::parse(body);
  } catch (const json::exception& e) {
    throw api_error(400, std::string("malformed JSON: ") + e.what());
  }
  if (!v.is_object())
    throw api_error(400, std::string("the body must be a JSON object, not ") + v.type_name());
  return v;
}

openai_request parse_openai(const json& body, const model_context& mc, bool chat) {
  openai_request r;
  check_model(body, mc, false);
  refuse_unsupported(body, chat);
  gen_params& g = r.gen;
  g.max_tokens = int(get_integer(body, "max_tokens", -1, 1, max_tokens_limit));
  g.max_tokens = int(get_integer(body, "max_completion_tokens", g.max_tokens, 1, max_tokens_limit));
  g.sp.temp = float(get_number(body, "temperature", 1.0, 0.0, 2.0));
  g.sp.top_p = float(get_number(body, "top_p", 1.0, 0.0, 1.0));
  g.sp.top_k = int(get_integer(body, "top_k", 0, 0, 1 << 20));  // an extension, as llama-server's
  g.sp.seed = uint64_t(get_integer(body, "seed", int64_t(clock_seed() >> 1), 0,
                                   std::numeric_limits<int64_t>::max()));
  g.stop = get_stop(body, "stop");
  g.kv_policy = get_string(body, "kv_policy", "");
  g.n_keep = int(get_integer(body, "n_keep", 0, -1, max_tokens_limit));  // -1: the prompt
  g.n_discard = int(get_integer(body, "n_discard", 0, 0, max_tokens_limit));
  r.stream = get_bool(body, "stream", false);
  if (const json* so = field(body, "stream_options")) {
    if (!so->is_object()) bad("stream_options", "must be an object");
    r.include_usage = get_bool(*so, "include_usage", false);
  }
  if (chat) {
    g.prompt = build_prompt(mc, get_messages(body));
    check_fit(g, mc, "messages");
  } else {
    const json* p = field(body, "prompt");
    if (!p) bad("prompt", "is required");
    std::string text;
    if (p->is_string()) {
      text = p->get<std::string>();
    } else if (p->is_array() && p->size() == 1 && (*p)[0].is_string()) {
      text = (*p)[0].get<std::string>();
    } else {
      bad("prompt", "must be a string (or an array of one string)");
    }
    g.prompt = text_prompt(mc.tok, text);
    check_fit(g, mc, "prompt");
  }
  return r;
}

ollama_request parse_ollama(const json& body, const model_context& mc, bool chat) {
  ollama_request r;
  check_model(body, mc, true);
  r.stream = get_bool(body, "stream", true);
  gen_params& g = r.gen;
  // Ollama's defaults.
  g.sp.temp = 0.8f;
  g.sp.top_k = 40;
  g.sp.top_p = 0.9f;
  g.sp.seed = clock_seed() >> 1;
  if (const json* o = field(body, "options")) {
    if (!o->is_object()) bad("options", "must be an object");
    const int n_ctx = mc.sched.options().n_ctx;
    const int64_t num_ctx = get_integer(*o, "num_ctx", n_ctx, 1, max_tokens_limit);
    if (num_ctx > n_ctx)
      throw api_error(400,
                      "options.num_ctx " + std::to_string(num_ctx) +
                          " is larger than the slot's context of " + std::to_string(n_ctx) +
                          " tokens (strata-server -c / -np)",
                      "options.num_ctx");
    const int64_t np = get_integer(*o, "num_predict", -1, -2, max_tokens_limit);
    g.max_tokens = np < 0 ? -1 : int(np);
    g.sp.temp = float(get_number(*o, "temperature", g.sp.temp, 0.0, 2.0));
    g.sp.top_k = int(get_integer(*o, "top_k", g.sp.top_k, 0, 1 << 20));
    g.sp.top_p = float(get_number(*o, "top_p", g.sp.top_p, 0.0, 1.0));
    g.sp.seed = uint64_t(
        get_integer(*o, "seed", int64_t(g.sp.seed), 0, std::numeric_limits<int64_t>::max()));
    g.stop = get_stop(*o, "stop");
    g.kv_policy = get_string(*o, "kv_policy", "");
    g.n_keep = int(get_integer(*o, "num_keep", 0, -1, max_tokens_limit));
  }
  if (chat) {
    g.prompt = build_prompt(mc, get_messages(body));
    check_fit(g, mc, "messages");
    return r;
  }
  const std::string prompt = get_string(body, "prompt", "");
  const std::string system = get_string(body, "system", "");
  const bool raw = get_bool(body, "raw", false);
  if (raw || !mc.has_template) {
    g.prompt = text_prompt(mc.tok, system.empty() ? prompt : system + "\n" + prompt);
  } else {
    std::vector<chat_message> msgs;
    if (!system.empty()) msgs.push_back({"system", system});
    msgs.push_back({"user", prompt});
    g.prompt = build_prompt(mc, msgs);
  }
  check_fit(g, mc, "prompt");
  return r;
}

}  // namespace engine::serve
