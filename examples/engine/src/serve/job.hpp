// engine::serve::job -- one generation request as the scheduler and the HTTP handler that waits
// for it share it: the settings (gen_params), the text made so far, and how it ended.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "run/sampler.hpp"

namespace engine::serve {

// A request's generation settings, parsed and validated (serve/request.hpp).
struct gen_params {
  std::vector<int32_t> prompt;  // tokens, BOS and template included
  int max_tokens = -1;          // < 0: until the slot's context is full (or, with context
                                // shift, until end of generation)
  int n_keep = 0;               // context shift: tokens kept at the start (-1: the prompt)
  int n_discard = 0;            // context shift: tokens dropped after them (0: half the rest)
  sampler_params sp;
  std::vector<std::string> stop;
  std::string kv_policy;  // empty: the server's policy
};

enum class finish_reason { none, stop, length, cancelled, error };
const char* finish_name(finish_reason r);  // "stop", "length", ...

class job {
 public:
  explicit job(gen_params p) : params(std::move(p)) {}

  const gen_params params;
  std::atomic<bool> cancelled{false};  // set by the handler when the client is gone

  // What the handler takes: the pieces of text made since the last take (one per token that
  // released text), and whether the job is over.
  struct update {
    std::vector<std::string> pieces;
    bool done = false;
  };
  // Waits up to `timeout` for new text or the end.
  update wait(std::chrono::milliseconds timeout);

  // Scheduler side.
  void emit(const std::string& text);
  void end(finish_reason r, std::string error = {});

  // Read after wait() returned done (set before end() wakes the handler).
  finish_reason reason = finish_reason::none;
  std::string error;                                         // reason == error: the message
  int slot = -1;                                             // the slot that ran it
  int n_prompt = 0;                                          // prompt tokens
  int n_reused = 0;                                          // of which already in the slot's cache
  int n_gen = 0;                                             // tokens generated
  int n_shifted = 0;                                         // tokens dropped by context shifts
  double t_submit = 0, t_start = 0, t_first = 0, t_end = 0;  // cli::now_s() seconds
  std::vector<int32_t> generated;

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> pending_;
  bool done_ = false;
};

}  // namespace engine::serve
