#include "model/rope.hpp"

#include <cmath>

namespace engine {

rope_table::rope_table(const int* pos, int n_tokens, int n_rot, const layer_config& layer,
                       const std::vector<float>& freq_factors)
    : n_tokens_(n_tokens), half_(n_rot / 2), cs_(size_t(n_tokens) * (n_rot / 2) * 2) {
  std::vector<double> inv(half_);
  for (int i = 0; i < half_; ++i) {
    inv[i] = std::pow(double(layer.rope_base), -2.0 * i / n_rot);
    if (!freq_factors.empty()) inv[i] /= double(freq_factors[i]);
  }
  for (int t = 0; t < n_tokens; ++t) {
    const double p = double(pos[t]) * double(layer.rope_scale);
    for (int i = 0; i < half_; ++i) {
      const double th = p * inv[i];
      cs_[(size_t(t) * half_ + i) * 2] = float(std::cos(th));
      cs_[(size_t(t) * half_ + i) * 2 + 1] = float(std::sin(th));
    }
  }
}

void rope_table::apply(float* x, int n_heads, int head_dim, rope_style style) const {
  for (int t = 0; t < n_tokens_; ++t) {
    const float* cs = cs_.data() + size_t(t) * half_ * 2;
    for (int h = 0; h < n_heads; ++h) {
      float* v = x + (size_t(t) * n_heads + h) * head_dim;
      if (style == rope_style::normal) {
        for (int i = 0; i < half_; ++i) {
          const float c = cs[2 * i], s = cs[2 * i + 1];
          const float a = v[2 * i], b = v[2 * i + 1];
          v[2 * i] = a * c - b * s;
          v[2 * i + 1] = a * s + b * c;
        }
      } else {
        for (int i = 0; i < half_; ++i) {
          const float c = cs[2 * i], s = cs[2 * i + 1];
          const float a = v[i], b = v[i + half_];
          v[i] = a * c - b * s;
          v[i + half_] = a * s + b * c;
        }
      }
    }
  }
}

}  // namespace engine
