#pragma once
// Test helpers: an f64 reference attention (causal, GQA, sliding window) on f32 inputs, data
// generators (Gaussian, the TurboQuant fork's outlier-K generator) and cosine similarity.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

namespace strata_test {

// keys/values: [n_keys][n_kv_heads][d] at positions key_pos0 + j; q, out: [n_q][n_heads][d] at
// positions q_pos0 + t. window == 0: global.
inline std::vector<double> reference_attention(const std::vector<float>& q, std::size_t n_q,
                                               std::int64_t q_pos0, const std::vector<float>& k,
                                               const std::vector<float>& v, std::size_t n_keys,
                                               std::int64_t key_pos0, std::size_t n_heads,
                                               std::size_t n_kv_heads, std::size_t d, double scale,
                                               std::size_t window = 0, double softcap = 0) {
  std::vector<double> out(n_q * n_heads * d, 0.0);
  const std::size_t g = n_heads / n_kv_heads;
  std::vector<double> s(n_keys);
  for (std::size_t t = 0; t < n_q; ++t) {
    const std::int64_t pq = q_pos0 + std::int64_t(t);
    for (std::size_t hq = 0; hq < n_heads; ++hq) {
      const std::size_t h = hq / g;
      double m = -std::numeric_limits<double>::infinity();
      for (std::size_t j = 0; j < n_keys; ++j) {
        const std::int64_t pk = key_pos0 + std::int64_t(j);
        const bool visible = pk <= pq && (window == 0 || pq - pk < std::int64_t(window));
        if (!visible) {
          s[j] = -std::numeric_limits<double>::infinity();
          continue;
        }
        double x = 0;
        for (std::size_t c = 0; c < d; ++c)
          x += double(q[(t * n_heads + hq) * d + c]) * double(k[(j * n_kv_heads + h) * d + c]);
        x *= scale;
        if (softcap > 0) x = softcap * std::tanh(x / softcap);
        s[j] = x;
        m = std::max(m, x);
      }
      if (m == -std::numeric_limits<double>::infinity()) continue;
      double l = 0;
      for (std::size_t j = 0; j < n_keys; ++j) {
        s[j] = std::isinf(s[j]) ? 0.0 : std::exp(s[j] - m);
        l += s[j];
      }
      double* o = out.data() + (t * n_heads + hq) * d;
      for (std::size_t j = 0; j < n_keys; ++j) {
        if (s[j] == 0.0) continue;
        for (std::size_t c = 0; c < d; ++c)
          o[c] += s[j] / l * double(v[(j * n_kv_heads + h) * d + c]);
      }
    }
  }
  return out;
}

inline std::vector<float> gaussian(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> x(n);
  for (auto& e : x) e = nd(rng);
  return x;
}

// The TurboQuant fork's outlier-heavy K: standard normal, every channel c with c % 17 == 0
// multiplied by 6 and every channel with c % 29 == 0 shifted by +3.
inline std::vector<float> outlier_keys(std::size_t n_rows, std::size_t d, std::uint64_t seed) {
  std::vector<float> k = gaussian(n_rows * d, seed);
  for (std::size_t r = 0; r < n_rows; ++r)
    for (std::size_t c = 0; c < d; ++c) {
      float& x = k[r * d + c];
      if (c % 17 == 0) x *= 6.0f;
      if (c % 29 == 0) x += 3.0f;
    }
  return k;
}

template <class A, class B> double cosine(const A& a, const B& b) {
  double ab = 0, aa = 0, bb = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    ab += double(a[i]) * double(b[i]);
    aa += double(a[i]) * double(a[i]);
    bb += double(b[i]) * double(b[i]);
  }
  return ab / std::sqrt(aa * bb);
}

template <class A, class B> double max_abs_diff(const A& a, const B& b) {
  double m = 0;
  for (std::size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(double(a[i]) - double(b[i])));
  return m;
}

}  // namespace strata_test
