// engine::needle -- a needle-in-a-haystack (pass key retrieval) check: a random pass key is
// buried at a chosen depth of filler text; the model is asked for it and its answer is checked.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kv/kv_select.hpp"
#include "model/model.hpp"
#include "text/tokenizer.hpp"

namespace engine {

class thread_pool;

struct needle_options {
  int n_ctx = 2048;                              // prompt length to aim for (tokens), <= cache size
  std::vector<double> depths = {0.1, 0.5, 0.9};  // where the key sits (0 = start, 1 = end)
  std::vector<kv_options> caches = {kv_options{}};
  std::vector<std::string> cache_names = {"f16/f16"};
  bool use_template = true;  // wrap in the model's chat template when it has one
  int n_predict = 12;
  uint64_t seed = 42;  // picks the pass keys
  int trials = 1;      // keys per depth
  forward_options fwd;
};

struct needle_row {
  std::string cache;
  double depth = 0;
  int n_prompt = 0;
  int n_reused = 0;  // prompt tokens whose K/V came from the previous prompt
  std::string key;
  std::string answer;
  bool found = false;
  double seconds = 0;
};

// The prompt for a key at a depth (exposed for tests).
std::string needle_prompt(const model& m, const tokenizer& tok, const needle_options& opt,
                          double depth, const std::string& key, bool* templated);

std::vector<needle_row> run_needle(model& m, const tokenizer& tok, thread_pool& pool,
                                   const needle_options& opt);

}  // namespace engine
