// The OpenAI endpoints: POST /v1/chat/completions, POST /v1/completions, GET /v1/models.
#include <atomic>
#include <cstdio>

#include "serve/http_routes.hpp"

namespace engine::serve {

using nlohmann::json;

namespace {

std::string new_id(const char* prefix) {
  static std::atomic<uint64_t> counter{0};
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s-%llx%06llx", prefix, (unsigned long long)unix_now(),
                (unsigned long long)(counter++ & 0xffffff));
  return buf;
}

json usage(const job& j) {
  return json{{"prompt_tokens", j.n_prompt},
              {"completion_tokens", j.n_gen},
              {"total_tokens", j.n_prompt + j.n_gen},
              {"prompt_tokens_details", {{"cached_tokens", j.n_reused}}}};
}

// A job that ended in an error after the reply began: the error object as the last data.
std::string sse(const json& v) { return "data: " + dump(v) + "\n\n"; }

void completion(const httplib::Request& req, httplib::Response& res, server_state& st, bool chat) {
  guarded(res, st, api::openai, [&] {
    const json body = parse_body(req.body);
    openai_request r = parse_openai(body, st.mc, chat);
    auto j = std::make_shared<job>(std::move(r.gen));
    const std::string id = new_id(chat ? "chatcmpl" : "cmpl");
    const int64_t created = unix_now();
    const std::string model = st.mc.name;
    const char* object =
        chat ? (r.stream ? "chat.completion.chunk" : "chat.completion") : "text_completion";
    auto head = [=] {
      return json{{"id", id},
                  {"object", object},
                  {"created", created},
                  {"model", model},
                  {"system_fingerprint", "strata"}};
    };
    if (r.stream) {
      auto first = std::make_shared<bool>(true);
      auto chunk = [=](const std::string& text, const json& finish) {
        json c = head();
        json choice{{"index", 0}, {"logprobs", nullptr}, {"finish_reason", finish}};
        if (chat) {
          json delta = json::object();
          if (*first) delta["role"] = "assistant";
          if (!text.empty() || finish.is_null()) delta["content"] = text;
          choice["delta"] = delta;
        } else {
          choice["text"] = text;
        }
        *first = false;
        c["choices"] = json::array({choice});
        return sse(c);
      };
      const bool include_usage = r.include_usage;
      answer_job(
          res, st, api::openai, j, "text/event-stream",
          [=](const std::string& text) { return chunk(text, nullptr); },
          [=] {
            if (j->reason == finish_reason::error)
              return sse(error_body(api::openai, 500, j->error)) + "data: [DONE]\n\n";
            std::string out = chunk("", finish_name(j->reason));
            if (include_usage) {
              json u = head();
              u["choices"] = json::array();
              u["usage"] = usage(*j);
              out += sse(u);
            }
            return out + "data: [DONE]\n\n";
          },
          false);
      return;
    }
    auto text = std::make_shared<std::string>();
    answer_job(
        res, st, api::openai, j, "application/json",
        [=](const std::string& t) {
          *text += t;
          return std::string();
        },
        [=] {
          if (j->reason == finish_reason::error)
            return dump(error_body(api::openai, 500, j->error));
          json out = head();
          json choice{
              {"index", 0}, {"logprobs", nullptr}, {"finish_reason", finish_name(j->reason)}};
          if (chat)
            choice["message"] = {{"role", "assistant"}, {"content", *text}};
          else
            choice["text"] = *text;
          out["choices"] = json::array({choice});
          out["usage"] = usage(*j);
          return dump(out);
        },
        true);
  });
}

}  // namespace

void add_openai_routes(httplib::Server& svr, server_state& st) {
  svr.Post("/v1/chat/completions", [&st](const httplib::Request& req, httplib::Response& res) {
    completion(req, res, st, true);
  });
  svr.Post("/v1/completions", [&st](const httplib::Request& req, httplib::Response& res) {
    completion(req, res, st, false);
  });
  svr.Get("/v1/models", [&st](const httplib::Request&, httplib::Response& res) {
    const json m{{"id", st.mc.name},
                 {"object", "model"},
                 {"created", int64_t(st.started)},
                 {"owned_by", "strata"}};
    res.set_content(dump(json{{"object", "list"}, {"data", json::array({m})}}), "application/json");
  });
}

}  // namespace engine::serve
