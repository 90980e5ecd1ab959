// engine::serve::server_metrics -- the server's counters and their Prometheus text exposition
// (GET /metrics).
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

namespace engine::serve {

struct slot_info;

struct server_metrics {
  std::atomic<uint64_t> requests{0};        // generation requests that got a slot or the queue
  std::atomic<uint64_t> rejected{0};        // refused with 503 (queue full, shutting down)
  std::atomic<uint64_t> errors{0};          // answered with a 4xx/5xx status
  std::atomic<uint64_t> prompt_tokens{0};   // prompt tokens computed (not reused)
  std::atomic<uint64_t> reused_tokens{0};   // prompt tokens found in a slot's cache
  std::atomic<uint64_t> gen_tokens{0};      // tokens generated
  std::atomic<uint64_t> shifted_tokens{0};  // tokens dropped by context shifts
  std::atomic<uint64_t> prompt_us{0};       // microseconds spent in prefill
  std::atomic<uint64_t> step_us{0};         // microseconds spent in generation steps
};

// The Prometheus text format (version 0.0.4): counters, the per-slot KV gauges, totals, bits per
// value and the process RSS. `queued`: requests waiting now.
std::string prometheus_text(const server_metrics& m, const std::vector<slot_info>& slots,
                            int queued);

}  // namespace engine::serve
