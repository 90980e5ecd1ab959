// The Ollama endpoints: POST /api/chat, POST /api/generate (NDJSON streaming by default),
// GET /api/tags, POST /api/show, GET /api/ps, GET /api/version, GET and HEAD /.
#include <cstdio>
#include <ctime>

#include "model/model.hpp"
#include "serve/http_routes.hpp"

namespace engine::serve {

using nlohmann::json;

namespace {

// RFC 3339 UTC time with nanoseconds, as Ollama writes created_at.
std::string rfc3339_now() {
  const auto now = std::chrono::system_clock::now();
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch());
  const std::time_t secs = std::time_t(ns.count() / 1000000000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%09lldZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                (long long)(ns.count() % 1000000000));
  return buf;
}

int64_t ns(double seconds) { return int64_t(std::max(0.0, seconds) * 1e9); }

json details(const server_state& st) {
  const auto& c = st.mc.file;
  const std::string arch =
      c.has("general.architecture") ? c.get_string("general.architecture") : "";
  return json{{"parent_model", ""},   {"format", "gguf"},
              {"family", arch},       {"families", json::array({arch})},
              {"parameter_size", ""}, {"quantization_level", ""}};
}

json model_entry(const server_state& st) {
  return json{{"name", st.mc.name},
              {"model", st.mc.name},
              {"modified_at", rfc3339_now()},
              {"size", int64_t(st.mc.file.file_size())},
              {"digest", ""},
              {"details", details(st)}};
}

void generate(const httplib::Request& req, httplib::Response& res, server_state& st, bool chat) {
  guarded(res, st, api::ollama, [&] {
    const json body = parse_body(req.body);
    const std::string model = body.contains("model") && body["model"].is_string()
                                  ? body["model"].get<std::string>()
                                  : st.mc.name;
    // /api/generate without a prompt (or /api/chat without messages) loads the model: done.
    const bool load_only = chat ? (!body.contains("messages") ||
                                   (body["messages"].is_array() && body["messages"].empty()))
                                : (!body.contains("prompt") && !body.contains("system"));
    if (load_only && is_served_model(st.mc, model)) {
      json done{
          {"model", model}, {"created_at", rfc3339_now()}, {"done", true}, {"done_reason", "load"}};
      if (chat)
        done["message"] = {{"role", "assistant"}, {"content", ""}};
      else
        done["response"] = "";
      res.set_content(dump(done), "application/json");
      return;
    }
    ollama_request r = parse_ollama(body, st.mc, chat);
    auto j = std::make_shared<job>(std::move(r.gen));
    auto record = [=](const std::string& text, bool done) {
      json v{{"model", model}, {"created_at", rfc3339_now()}};
      if (chat)
        v["message"] = {{"role", "assistant"}, {"content", text}};
      else
        v["response"] = text;
      v["done"] = done;
      return v;
    };
    auto final_record = [=](const std::string& text) {
      if (j->reason == finish_reason::error) return dump(error_body(api::ollama, 500, j->error));
      json v = record(text, true);
      v["done_reason"] = finish_name(j->reason);
      const double gen_start = j->t_first > 0 ? j->t_first : j->t_end;
      v["total_duration"] = ns(j->t_end - j->t_submit);
      v["load_duration"] = 0;
      v["prompt_eval_count"] = j->n_prompt - j->n_reused;
      v["prompt_eval_duration"] = ns(gen_start - j->t_start);
      v["eval_count"] = j->n_gen;
      v["eval_duration"] = ns(j->t_end - gen_start);
      if (!chat) v["context"] = json::array();
      return dump(v);
    };
    if (r.stream) {
      answer_job(
          res, st, api::ollama, j, "application/x-ndjson",
          [=](const std::string& text) { return dump(record(text, false)) + "\n"; },
          [=] { return final_record("") + "\n"; }, false);
      return;
    }
    auto text = std::make_shared<std::string>();
    answer_job(
        res, st, api::ollama, j, "application/json",
        [=](const std::string& t) {
          *text += t;
          return std::string();
        },
        [=] { return final_record(*text); }, true);
  });
}

}  // namespace

void add_ollama_routes(httplib::Server& svr, server_state& st) {
  svr.Post("/api/chat", [&st](const httplib::Request& req, httplib::Response& res) {
    generate(req, res, st, true);
  });
  svr.Post("/api/generate", [&st](const httplib::Request& req, httplib::Response& res) {
    generate(req, res, st, false);
  });
  svr.Get("/api/tags", [&st](const httplib::Request&, httplib::Response& res) {
    res.set_content(dump(json{{"models", json::array({model_entry(st)})}}), "application/json");
  });
  svr.Get("/api/ps", [&st](const httplib::Request&, httplib::Response& res) {
    json m = model_entry(st);
    m["expires_at"] = "2262-04-11T23:47:16.854775807Z";  // loaded for the server's life
    m["size_vram"] = 0;
    res.set_content(dump(json{{"models", json::array({m})}}), "application/json");
  });
  svr.Post("/api/show", [&st](const httplib::Request& req, httplib::Response& res) {
    guarded(res, st, api::ollama, [&] {
      const json body = parse_body(req.body);
      std::string name;
      for (const char* key : {"model", "name"})
        if (body.contains(key) && body[key].is_string()) name = body[key].get<std::string>();
      if (name.empty() || !is_served_model(st.mc, name))
        throw api_error(404, "model '" + name + "' not found");
      const auto& c = st.mc.file;
      json info = json::object();
      for (const char* key : {"general.architecture", "general.name"})
        if (c.has(key)) info[key] = c.get_string(key);
      const std::string tmpl =
          c.has("tokenizer.chat_template") ? c.get_string("tokenizer.chat_template") : "";
      json caps = json::array({"completion"});
      res.set_content(dump(json{{"modelfile", ""},
                                {"parameters", ""},
                                {"template", tmpl},
                                {"details", details(st)},
                                {"model_info", info},
                                {"capabilities", caps},
                                {"modified_at", rfc3339_now()}}),
                      "application/json");
    });
  });
  svr.Get("/api/version", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(R"({"version":"0.6.3"})", "application/json");
  });
  // Ollama answers GET and HEAD / with this text; clients use it as a liveness probe.
  svr.Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("Ollama is running", "text/plain");
  });
}

}  // namespace engine::serve
