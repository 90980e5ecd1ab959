// engine::sampler -- greedy or temperature / top-k / top-p sampling with a seed.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

namespace engine {

struct sampler_params {
  float temp = 0.8f;    // <= 0: greedy (argmax)
  int top_k = 40;       // <= 0: whole vocabulary
  float top_p = 0.95f;  // >= 1: off
  uint64_t seed = 0;    // the same seed gives the same tokens
};

class sampler {
 public:
  explicit sampler(const sampler_params& p);
  // Picks a token from logits[0..n_vocab). Order as llama.cpp: top-k, top-p, temperature.
  int32_t sample(const float* logits, int n_vocab);
  const sampler_params& params() const { return p_; }

 private:
  sampler_params p_;
  std::mt19937_64 rng_;
  std::vector<std::pair<float, int32_t>> cand_;
};

int32_t argmax(const float* logits, int n);

}  // namespace engine
