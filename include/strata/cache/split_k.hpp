#pragma once
// Split-K: one layer's decode attention on several threads when it has fewer KV heads than
// threads (SmolLM2: 3, Gemma 3: 1), by splitting each head's keys into ranges as well.
//
//   const strata::key_range keys = cache.visible_keys(layer, pos, 1);
//   const std::size_t chunks = strata::key_chunks(n_kv_heads, threads, keys.size(), 1024);
//   // job (h, i): attention_params{.kv_head_begin = h, .kv_head_end = h + 1,
//   //   .key_begin = keys.chunk(chunks, i).begin, .key_end = ..., .lse = lse[i]} into out[i]
//   strata::merge_attention(parts, n_q * n_heads, head_dim, out[0]);
//
// Each call over a key range writes its rows normalized over that range (as a plain attend
// does over all keys) and their log-sum-exp; the merge weighs the parts by exp(lse_p - LSE),
// LSE = log sum_p exp(lse_p): exactly the attention over the union, up to f32 rounding (the
// int8 query of the compressed K codecs is the same in every part, so are the scores), except
// where the V product runs in 8-bit integers (strata/kernels/int8_axpy.hpp: turbo V at head dim
// 128+ on x86; turbo4's key tiles, strata/codec/key_tile.hpp): there each part quantizes its
// weights over its own groups of 32 keys, so the merged result is as accurate as one call's, not
// the same to f32 rounding; the key-tile dot's scores are the same in every part.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <numeric>
#include <span>

namespace strata {

// Key positions [begin, end).
struct key_range {
  std::int64_t begin = 0, end = 0;

  std::size_t size() const noexcept { return end > begin ? std::size_t(end - begin) : 0; }
  // Part i of n near-equal parts (in order; the parts cover the range exactly).
  key_range chunk(std::size_t n, std::size_t i) const noexcept {
    const std::int64_t len = std::int64_t(size()), parts = std::int64_t(n);
    return {begin + len * std::int64_t(i) / parts, begin + len * std::int64_t(i + 1) / parts};
  }
};

// Key chunks per KV head so that n_kv_heads x chunks jobs share out evenly over `threads`
// (threads / gcd(n_kv_heads, threads): 3 heads on 2 threads -> 2 chunks, 6 jobs; 8 heads -> 1),
// fewer when a chunk would hold fewer than min_keys of n_keys keys (a short context does not
// pay for the merge). 1: no split.
constexpr std::size_t key_chunks(std::size_t n_kv_heads, std::size_t threads, std::size_t n_keys,
                                 std::size_t min_keys) noexcept {
  if (n_kv_heads == 0 || threads <= 1) return 1;
  const std::size_t want = threads / std::gcd(n_kv_heads, threads);
  const std::size_t fit = n_keys / std::max<std::size_t>(min_keys, 1);
  return std::max<std::size_t>(1, std::min(want, fit));
}

// One partial result over a key range: out [rows][dim], normalized over the range (what attend
// writes), and lse [rows] (attention_params::lse).
struct attention_part {
  const float* out = nullptr;
  const float* lse = nullptr;
};

// The attention over the union of the parts' (disjoint) key ranges:
// out[r] = sum_p exp(lse_p[r] - LSE[r]) out_p[r], LSE[r] = log sum_p exp(lse_p[r]). A part that
// saw no key of row r (lse -inf) adds nothing; a row that no part saw gets zeros (as attend
// gives a query that sees no key) and LSE -inf. out may be one of the parts' out. lse, when
// given, gets LSE (so merged results can be merged again).
inline void merge_attention(std::span<const attention_part> parts, std::size_t rows,
                            std::size_t dim, float* out, float* lse = nullptr) {
  constexpr float ninf = -std::numeric_limits<float>::infinity();
  // The part written in place (out is its out), if any: scaled first, the others added to it.
  std::size_t self = parts.size();
  for (std::size_t p = 0; p < parts.size(); ++p)
    if (parts[p].out == out) self = p;
  for (std::size_t r = 0; r < rows; ++r) {
    float m = ninf;
    for (const attention_part& part : parts) m = std::max(m, part.lse[r]);
    float* o = out + r * dim;
    if (m == ninf) {
      std::fill(o, o + dim, 0.0f);
      if (lse) lse[r] = ninf;
      continue;
    }
    float sum = 0.0f;
    for (const attention_part& part : parts)
      if (part.lse[r] != ninf) sum += std::exp(part.lse[r] - m);
    const float inv = 1.0f / sum;
    auto weight = [&](std::size_t p) {
      const float l = parts[p].lse[r];
      return l == ninf ? 0.0f : std::exp(l - m) * inv;
    };
    if (self < parts.size()) {
      const float w = weight(self);
      if (w == 0.0f)
        std::fill(o, o + dim, 0.0f);
      else
        for (std::size_t c = 0; c < dim; ++c) o[c] *= w;
    } else {
      std::fill(o, o + dim, 0.0f);
    }
    for (std::size_t p = 0; p < parts.size(); ++p) {
      const float w = p == self ? 0.0f : weight(p);
      if (w == 0.0f) continue;
      const float* x = parts[p].out + r * dim;
      for (std::size_t c = 0; c < dim; ++c) o[c] += w * x[c];
    }
    if (lse) lse[r] = m + std::log(sum);
  }
}

}  // namespace strata
