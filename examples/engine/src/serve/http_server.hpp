// engine::serve::http_server -- strata-server's HTTP front: the OpenAI and Ollama endpoints,
// /health, /metrics and /slots on cpp-httplib (Debian's libcpp-httplib), in front of a
// scheduler. The HTTP library stays inside the .cpp files (serve/http_routes.hpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "serve/metrics.hpp"
#include "serve/request.hpp"
#include "serve/scheduler.hpp"

namespace engine::serve {

struct http_options {
  std::string host = "127.0.0.1";
  int port = 8080;
  std::string api_key;                // when set: "Authorization: Bearer KEY" on every endpoint
                                      // but /health and /
  int timeout_s = 600;                // socket read/write timeout
  std::string slot_save_path;         // POST /slots/{id}?action=save|restore: files go here
  std::string cors;                   // Access-Control-Allow-Origin value; empty: no CORS headers
  size_t max_body = size_t(8) << 20;  // larger bodies: 413
  int threads = 8;                    // HTTP worker threads
};

class http_server {
 public:
  http_server(model_context& mc, scheduler& sched, server_metrics& metrics, http_options o);
  ~http_server();
  // Binds the socket; returns the port (useful with port 0), or throws engine::error.
  int bind();
  // Serves until stop(); returns when every request taken has been answered.
  void listen();
  // Stops accepting connections (safe from another thread).
  void stop();

 private:
  struct impl;
  std::unique_ptr<impl> p_;
};

}  // namespace engine::serve
