// engine::session -- a conversation's state over one KV cache: the tokens in the cache, prompt
// prefill that reuses the common prefix, and token-by-token generation with a sampler.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "kv/kv.hpp"
#include "model/model.hpp"
#include "run/sampler.hpp"
#include "text/tokenizer.hpp"

namespace engine {

class thread_pool;

struct generation_stats {
  int n_prompt = 0;     // tokens prefilled (after the reused prefix)
  int n_reused = 0;     // prefix tokens already in the cache
  int n_gen = 0;        // tokens generated
  double prompt_s = 0;  // prefill seconds
  double gen_s = 0;     // generation seconds
  bool stopped_eog = false;
  int n_shifted = 0;     // tokens dropped by context shifts
  int n_recomputed = 0;  // tokens re-run by context shifts (caches that cannot erase)
};

class session {
 public:
  session(model& m, const tokenizer& tok, kv_store& kv, thread_pool& pool, forward_options fwd);

  // When the cache is full: shift = drop the oldest half of the history (keeping the first
  // n_keep tokens) and re-prefill the rest; otherwise generation stops with an error.
  void set_context_shift(bool on, int n_keep) {
    shift_ = on;
    n_keep_ = n_keep;
  }

  // Makes the cache hold `tokens` (reusing the longest common prefix with what it holds) and
  // returns the logits after the last one (n_vocab floats).
  const std::vector<float>& prefill(const std::vector<int32_t>& tokens, generation_stats& st);

  // Samples up to n_predict tokens after prefill(); on_piece gets each token's text as it is
  // made (return false to stop). Stops at an end-of-generation token (not emitted).
  std::vector<int32_t> generate(sampler& smp, int n_predict,
                                const std::function<bool(const std::string&)>& on_piece,
                                generation_stats& st);

  const std::vector<int32_t>& tokens() const { return tokens_; }

 private:
  void ensure_room(int n, generation_stats& st);

  model& m_;
  const tokenizer& tok_;
  kv_store& kv_;
  thread_pool& pool_;
  forward_options fwd_;
  std::vector<int32_t> tokens_;  // what the cache holds, in order
  std::vector<float> logits_;
  bool shift_ = false;
  int n_keep_ = 0;
};

}  // namespace engine
