#pragma once
// Per-channel K balancing: scales s (one per KV head and channel) such that the cache stores
// k / s and scores with q * s. Exact for attention (q.k = (q*s).(k/s)); what changes is where
// a compressed K's error lands. A codec's error on a row is roughly proportional to the row's
// norm and spread evenly over the channels after the rotation, so the score error of a query
// has a variance proportional to sum_c s_c^2 Q_c * sum_c K_c / s_c^2 (Q_c, K_c: the mean
// squares of channel c over the queries and keys). By Cauchy-Schwarz the product is smallest at
// s_c^2 = sqrt(K_c / Q_c), where it equals (sum_c sqrt(Q_c K_c))^2: the channels where the keys
// are large and the queries small give up precision to those where the queries are large.
// With RoPE, pass the rotary pairs (below): per-channel scales fitted on one position range
// mislead at others. docs/policies.md and docs/results.md have the measured effect (Gemma 3
// turbo4 KLD 0.24x at the same bits; SmolLM2 0.92x - 1.01x).
//
// The scales come from a sample (the first batch a layer sees), are normalized to a geometric
// mean of 1 and clamped to [1 / max_ratio, max_ratio] around it, so that a channel that is
// nearly silent in the sample cannot blow up.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

namespace strata {

// Rotary pairs. Keys and queries that carry RoPE rotate channel pairs by a position-dependent
// angle, which moves energy between the two channels of a pair: statistics of one position
// range (the first batch) then mislead at others. A scale shared by both channels of a pair
// commutes with the rotation, and the pair's summed energy does not depend on the position;
// so with pairs given, both channels get the scale of their summed mean squares.
// adjacent: (2i, 2i+1) ("normal" RoPE); halves: (i, i + n_rot/2) ("neox"); the first n_rot
// channels rotate (0: all of them).
struct rotary_pairs {
  enum kind_t : unsigned char { none, adjacent, halves } kind = none;
  std::size_t n_rot = 0;
};

// Fewest keys a balance is estimated from: a smaller sample leaves the cache unbalanced.
inline constexpr std::size_t k_balance_min_keys = 8;

// q: [n_q][n_heads][d], k: [n_k][n_kv_heads][d] (query head j belongs to KV head j / (n_heads /
// n_kv_heads)). k_mean: [n_kv_heads][d] subtracted from the keys first (nullptr: none).
// Returns [n_kv_heads][d] scales; empty when n_q == 0 or n_k < k_balance_min_keys.
inline std::vector<float> k_balance_scales(const float* q, std::size_t n_q, std::size_t n_heads,
                                           const float* k, std::size_t n_k, std::size_t n_kv_heads,
                                           std::size_t d, const float* k_mean = nullptr,
                                           rotary_pairs pairs = {}, double max_ratio = 16.0) {
  std::vector<float> s;
  if (n_q == 0 || n_k < k_balance_min_keys || n_kv_heads == 0 || d == 0 ||
      n_heads % n_kv_heads != 0)
    return s;
  const std::size_t g = n_heads / n_kv_heads;
  std::vector<double> q2(n_kv_heads * d, 0.0), k2(n_kv_heads * d, 0.0);
  for (std::size_t t = 0; t < n_q; ++t)
    for (std::size_t j = 0; j < n_heads; ++j)
      for (std::size_t c = 0; c < d; ++c) {
        const double x = q[(t * n_heads + j) * d + c];
        q2[(j / g) * d + c] += x * x;
      }
  for (std::size_t t = 0; t < n_k; ++t)
    for (std::size_t i = 0; i < n_kv_heads * d; ++i) {
      const double x = double(k[t * n_kv_heads * d + i]) - (k_mean ? double(k_mean[i]) : 0.0);
      k2[i] += x * x;
    }
  s.resize(n_kv_heads * d);
  const std::size_t nr = std::min(d, pairs.n_rot == 0 ? d : pairs.n_rot) & ~std::size_t(1);
  for (std::size_t h = 0; h < n_kv_heads; ++h) {
    double* qh = q2.data() + h * d;
    double* kh = k2.data() + h * d;
    if (pairs.kind != rotary_pairs::none)
      for (std::size_t i = 0; i < nr / 2; ++i) {
        const std::size_t a = pairs.kind == rotary_pairs::adjacent ? 2 * i : i;
        const std::size_t b = pairs.kind == rotary_pairs::adjacent ? 2 * i + 1 : i + nr / 2;
        qh[a] = qh[b] = qh[a] + qh[b];
        kh[a] = kh[b] = kh[a] + kh[b];
      }
    // Floors: a channel silent in the sample is treated as 1e-6 of the head's loudest.
    const double qf = 1e-6 * *std::max_element(qh, qh + d) + 1e-30;
    const double kf = 1e-6 * *std::max_element(kh, kh + d) + 1e-30;
    double log_sum = 0;
    for (std::size_t c = 0; c < d; ++c) {
      const double l = 0.25 * (std::log(std::max(kh[c], kf)) - std::log(std::max(qh[c], qf)));
      kh[c] = l;  // log s_c before normalization
      log_sum += l;
    }
    const double mean = log_sum / double(d), lim = std::log(max_ratio);
    for (std::size_t c = 0; c < d; ++c)
      s[h * d + c] = float(std::exp(std::clamp(kh[c] - mean, -lim, lim)));
  }
  return s;
}

}  // namespace strata
