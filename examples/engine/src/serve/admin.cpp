// GET /health, GET /metrics (Prometheus text), GET /slots, POST /slots/{id}?action=...
#include "serve/http_routes.hpp"
#include "serve/slot_file.hpp"

namespace engine::serve {

using nlohmann::json;

void add_admin_routes(httplib::Server& svr, server_state& st) {
  svr.Get("/health", [&st](const httplib::Request&, httplib::Response& res) {
    const bool stopping = st.sched.shutting_down();
    res.status = stopping ? 503 : 200;
    res.set_content(dump(json{{"status", stopping ? "shutting down" : "ok"}}), "application/json");
  });
  svr.Get("/metrics", [&st](const httplib::Request&, httplib::Response& res) {
    res.set_content(prometheus_text(st.metrics, st.sched.slots(), st.sched.queued()),
                    "text/plain; version=0.0.4");
  });
  svr.Get("/slots", [&st](const httplib::Request&, httplib::Response& res) {
    json out = json::array();
    for (const slot_info& s : st.sched.slots())
      out.push_back({{"id", s.id},
                     {"state", s.busy ? "busy" : "idle"},
                     {"n_ctx", s.n_ctx},
                     {"n_cached", s.n_cached},
                     {"kv_policy", s.policy},
                     {"kv_bytes", s.bytes},
                     {"kv_f16_bytes", s.f16_bytes},
                     {"bits_per_value", s.bits_per_value},
                     {"n_requests", s.n_requests}});
    res.set_content(dump(out), "application/json");
  });
  svr.Post(R"(/slots/(\d+))", [&st](const httplib::Request& req, httplib::Response& res) {
    guarded(res, st, api::openai, [&] {
      const int id = std::stoi(req.matches[1].str());
      const std::string action = req.get_param_value("action");
      std::string filename;
      if (action == "save" || action == "restore") {
        if (st.o.slot_save_path.empty())
          throw api_error(400, "slot files need --slot-save-path", "action");
        const json body = req.body.empty() ? json::object() : parse_body(req.body);
        if (!body.contains("filename") || !body["filename"].is_string())
          throw api_error(400, "'filename' (a string) is required", "filename");
        filename = body["filename"].get<std::string>();
        if (!plain_file_name(filename))
          throw api_error(400,
                          "'filename' must be a plain file name (letters, digits, '.', '-', '_'; "
                          "no path), not '" +
                              filename + "'",
                          "filename");
      } else if (action != "erase") {
        throw api_error(400, "'action' must be save, restore or erase, not '" + action + "'",
                        "action");
      }
      const std::string path = st.o.slot_save_path + "/" + filename;
      int n_tokens = 0;
      const std::string err =
          st.sched.with_idle_slot(id, [&](kv_store& kv, std::vector<int32_t>& tokens) {
            if (action == "erase") {
              n_tokens = int(tokens.size());
              tokens.clear();
              kv.truncate(0);
            } else if (action == "save") {
              save_slot(path, st.mc.file, kv, tokens);
              n_tokens = int(tokens.size());
            } else {
              load_slot(path, st.mc.file, kv, tokens);
              n_tokens = int(tokens.size());
            }
          });
      if (!err.empty())
        throw api_error(err.find("busy") != std::string::npos ? 409 : 400, err, "action");
      json out{{"id_slot", id}, {"action", action}, {"n_tokens", n_tokens}};
      if (!filename.empty()) out["filename"] = filename;
      res.set_content(dump(out), "application/json");
    });
  });
}

}  // namespace engine::serve
