// engine::serve -- what the route files (openai.cpp, ollama.cpp, admin.cpp) share inside the
// HTTP front: the server's state, error replies in each API's shape, and a job's reply written
// as it is made (streamed or not) through a content provider, so that a client that goes away
// cancels its job.
#pragma once

#include <httplib.h>

#include <functional>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "serve/http_server.hpp"

namespace engine::serve {

enum class api { openai, ollama };

struct server_state {
  model_context& mc;
  scheduler& sched;
  server_metrics& metrics;
  http_options o;
  double started = 0;  // wall-clock seconds since the epoch (Unix time)
};

// JSON text that never throws on invalid UTF-8 (replaced by U+FFFD).
std::string dump(const nlohmann::json& v);

// Writes an error in the API's shape: OpenAI {"error":{"message","type","param","code"}},
// Ollama {"error":"message"}.
void send_error(httplib::Response& res, api a, int status, const std::string& message,
                const std::string& param = {}, const std::string& code = {});
nlohmann::json error_body(api a, int status, const std::string& message,
                          const std::string& param = {}, const std::string& code = {});

// Runs a handler body, turning api_error, engine::error and other exceptions into error replies.
void guarded(httplib::Response& res, server_state& st, api a, const std::function<void()>& body);

// Queues `j` (503 in the API's shape when the queue is full) and answers through a chunked
// content provider: `on_text(piece)` gives the bytes to send for a token's text ("" for none) and
// `on_end()` the bytes that end the reply (called when the job is over). Non-streamed replies
// send nothing before on_end() but a space every second (JSON allows leading whitespace), which
// is how a client that went away is seen. A failed write cancels the job.
void answer_job(httplib::Response& res, server_state& st, api a, std::shared_ptr<job> j,
                const char* content_type, std::function<std::string(const std::string&)> on_text,
                std::function<std::string()> on_end, bool heartbeat);

// Route registration per API.
void add_openai_routes(httplib::Server& svr, server_state& st);
void add_ollama_routes(httplib::Server& svr, server_state& st);
void add_admin_routes(httplib::Server& svr, server_state& st);

// Unix seconds now.
int64_t unix_now();

}  // namespace engine::serve
