#pragma once
// The K side's transform, in one place: a key is stored as (k - m) / s and restored as
// stored * s + m, where m is the per-channel K mean (cache_options::subtract_k_mean, fixed
// from the first batch of an empty layer) and s the per-channel balance scales
// (k_balance.hpp); queries score with q * s. Each part is optional, per layer; all vectors are
// [kv_head][head_dim].

#include <cmath>
#include <cstddef>
#include <vector>

namespace strata::detail {

struct k_transform {
  std::vector<float> mean;        // empty: no mean subtracted
  std::vector<float> scale, inv;  // balance scales and their reciprocals; empty: none

  bool identity() const noexcept { return mean.empty() && scale.empty(); }

  // Per-value mean of n rows of `row` floats (the mean append takes from a batch).
  static std::vector<float> batch_mean(const float* x, std::size_t n, std::size_t row) {
    std::vector<double> m(row, 0.0);
    for (std::size_t t = 0; t < n; ++t)
      for (std::size_t i = 0; i < row; ++i) m[i] += x[t * row + i];
    std::vector<float> out(row);
    for (std::size_t i = 0; i < row; ++i) out[i] = float(m[i] / double(n));
    return out;
  }

  // s: n finite positive scales, or nullptr for none.
  void set_scales(const float* s, std::size_t n) {
    scale.clear();
    inv.clear();
    if (!s) return;
    scale.assign(s, s + n);
    for (const float x : scale) inv.push_back(1.0f / x);
  }

  // The stored form of key row x of KV head h (d floats): x itself when nothing applies, else
  // written to out.
  const float* forward(std::size_t h, const float* x, std::size_t d, float* out) const {
    if (identity()) return x;
    for (std::size_t c = 0; c < d; ++c) {
      float v = x[c];
      if (!mean.empty()) v -= mean[h * d + c];
      if (!inv.empty()) v *= inv[h * d + c];
      out[c] = v;
    }
    return out;
  }
  // A decoded, unrotated stored row back to the key the caller appended (in place).
  void inverse(std::size_t h, float* x, std::size_t d) const {
    if (!scale.empty())
      for (std::size_t c = 0; c < d; ++c) x[c] *= scale[h * d + c];
    if (!mean.empty())
      for (std::size_t c = 0; c < d; ++c) x[c] += mean[h * d + c];
  }
  // r = q * score_scale (* s): a query row of KV head h as the stored keys score it.
  void query(std::size_t h, const float* q, float score_scale, std::size_t d, float* r) const {
    if (scale.empty())
      for (std::size_t c = 0; c < d; ++c) r[c] = q[c] * score_scale;
    else
      for (std::size_t c = 0; c < d; ++c) r[c] = q[c] * score_scale * scale[h * d + c];
  }
};

}  // namespace strata::detail
