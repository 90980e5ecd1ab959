// engine::rope -- rotary position embedding, "normal" (adjacent pairs) and "neox" (halves).
#pragma once

#include <vector>

#include "model/config.hpp"

namespace engine {

// cos/sin of every (token, frequency) pair of a batch, for one layer's RoPE parameters:
// theta(p, i) = p * scale * base^(-2i / n_rot) / freq_factor[i], computed in double.
class rope_table {
 public:
  // pos: the batch's positions; freq_factors: n_rot/2 divisors (Llama 3 "rope_freqs") or empty.
  rope_table(const int* pos, int n_tokens, int n_rot, const layer_config& layer,
             const std::vector<float>& freq_factors);

  // Rotates x: [n_tokens][n_heads][head_dim] in place (the first n_rot dims of each head).
  void apply(float* x, int n_heads, int head_dim, rope_style style) const;

 private:
  int n_tokens_;
  int half_;
  std::vector<float> cs_;  // [n_tokens][half][2]: cos, sin
};

}  // namespace engine
