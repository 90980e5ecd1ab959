#include "serve/http_server.hpp"

#include <chrono>

#include "error.hpp"
#include "serve/http_routes.hpp"

namespace engine::serve {

using nlohmann::json;

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string dump(const json& v) { return v.dump(-1, ' ', false, json::error_handler_t::replace); }

json error_body(api a, int status, const std::string& message, const std::string& param,
                const std::string& code) {
  if (a == api::ollama) return json{{"error", message}};
  const char* type = status == 401   ? "authentication_error"
                     : status == 404 ? "not_found_error"
                     : status == 413 ? "invalid_request_error"
                     : status == 429 ? "rate_limit_error"
                     : status >= 500 ? "server_error"
                                     : "invalid_request_error";
  return json{{"error",
               {{"message", message},
                {"type", type},
                {"param", param.empty() ? json() : json(param)},
                {"code", code.empty() ? json() : json(code)}}}};
}

void send_error(httplib::Response& res, api a, int status, const std::string& message,
                const std::string& param, const std::string& code) {
  res.status = status;
  res.set_content(dump(error_body(a, status, message, param, code)), "application/json");
}

void guarded(httplib::Response& res, server_state& st, api a, const std::function<void()>& body) {
  try {
    body();
  } catch (const api_error& e) {
    send_error(res, a, e.status, e.what(), e.param, e.code);
  } catch (const error& e) {
    send_error(res, a, 400, e.what());
  } catch (const std::exception& e) {
    send_error(res, a, 500, std::string("internal error: ") + e.what());
  }
  if (res.status >= 400) st.metrics.errors++;
}

void answer_job(httplib::Response& res, server_state& st, api a, std::shared_ptr<job> j,
                const char* content_type, std::function<std::string(const std::string&)> on_text,
                std::function<std::string()> on_end, bool heartbeat) {
  if (!st.sched.submit(j)) {
    const bool stopping = st.sched.shutting_down();
    send_error(res, a, 503,
               stopping ? "the server is shutting down"
                        : "the server is busy: " + std::to_string(st.sched.options().queue) +
                              " requests are already waiting (--queue)",
               "", stopping ? "shutting_down" : "queue_full");
    st.metrics.errors++;
    return;
  }
  res.status = 200;
  res.set_chunked_content_provider(
      content_type,
      [j, on_text, on_end, heartbeat](size_t, httplib::DataSink& sink) {
        auto last_write = std::chrono::steady_clock::now();
        while (true) {
          const job::update u = j->wait(std::chrono::milliseconds(250));
          std::string out;
          for (const std::string& piece : u.pieces) out += on_text(piece);
          if (u.done) out += on_end();
          const auto now = std::chrono::steady_clock::now();
          if (out.empty() && heartbeat && now - last_write > std::chrono::seconds(1))
            out.push_back(' ');
          if (!out.empty()) {
            last_write = now;
            if (!sink.write(out.data(), out.size())) {
              j->cancelled = true;
              return false;
            }
          }
          if (u.done) {
            sink.done();
            return true;
          }
        }
      },
      [j](bool success) {
        if (!success) j->cancelled = true;
      });
}

struct http_server::impl {
  server_state st;
  httplib::Server svr;
};

http_server::http_server(model_context& mc, scheduler& sched, server_metrics& metrics,
                         http_options o)
    : p_(new impl{server_state{mc, sched, metrics, std::move(o), double(unix_now())}, {}}) {
  server_state& st = p_->st;
  httplib::Server& svr = p_->svr;
  const int threads = st.o.threads;
  svr.new_task_queue = [threads] { return new httplib::ThreadPool(size_t(threads)); };
  svr.set_payload_max_length(st.o.max_body);
  svr.set_read_timeout(st.o.timeout_s, 0);
  svr.set_write_timeout(st.o.timeout_s, 0);
  if (!st.o.cors.empty()) {
    svr.set_default_headers({{"Access-Control-Allow-Origin", st.o.cors},
                             {"Access-Control-Allow-Headers", "Authorization, Content-Type"},
                             {"Access-Control-Allow-Methods", "GET, HEAD, POST, OPTIONS"}});
    svr.Options(R"(.*)", [](const httplib::Request&, httplib::Response& res) { res.status = 204; });
  }
  // The API key guards every endpoint but /health and / (Ollama's liveness probe).
  svr.set_pre_routing_handler([&st](const httplib::Request& req, httplib::Response& res) {
    if (st.o.api_key.empty() || req.method == "OPTIONS" || req.path == "/health" || req.path == "/")
      return httplib::Server::HandlerResponse::Unhandled;
    const std::string auth = req.get_header_value("Authorization");
    if (auth == std::string("Bearer ").append(st.o.api_key))
      return httplib::Server::HandlerResponse::Unhandled;
    const api a = req.path.rfind("/api/", 0) == 0 ? api::ollama : api::openai;
    send_error(res, a, 401,
               auth.empty() ? "missing API key (Authorization: Bearer KEY)" : "invalid API key", "",
               "invalid_api_key");
    st.metrics.errors++;
    return httplib::Server::HandlerResponse::Handled;
  });
  // Statuses the library sets itself (404 no route, 413 body too large, 400 bad request) get a
  // body in the API's shape.
  svr.set_error_handler([&st](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    const api a = req.path.rfind("/api/", 0) == 0 ? api::ollama : api::openai;
    std::string what =
        res.status == 404
            ? std::string("no endpoint ").append(req.method).append(" ").append(req.path)
        : res.status == 413 ? "request body larger than " + std::to_string(st.o.max_body) + " bytes"
                            : "bad request";
    send_error(res, a, res.status, what);
    st.metrics.errors++;
  });
  add_openai_routes(svr, st);
  add_ollama_routes(svr, st);
  add_admin_routes(svr, st);
}

http_server::~http_server() = default;

int http_server::bind() {
  server_state& st = p_->st;
  int port = st.o.port;
  if (port == 0) {
    port = p_->svr.bind_to_any_port(st.o.host);
    if (port <= 0) port = -1;
  } else if (!p_->svr.bind_to_port(st.o.host, port)) {
    port = -1;
  }
  if (port < 0)
    throw make_error("cannot listen on " + st.o.host + ":" + std::to_string(st.o.port),
                     "strata-server");
  return port;
}

void http_server::listen() { p_->svr.listen_after_bind(); }

void http_server::stop() { p_->svr.stop(); }

}  // namespace engine::serve
