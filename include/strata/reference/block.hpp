#pragma once
// Scalar encode and decode of ONE block of each codec: the arithmetic the SIMD kernels must
// reproduce. Rules (docs/codecs.md):
//   - f32/f16/bf16 are element-wise (round to nearest even); NaN and inf pass through.
//   - q8_0, q4_0 and turbo first replace NaN by 0 and +-inf by +-FLT_MAX (clean()), so one bad
//     input never poisons the rest of its block; the fp16 scale is clamped to +-65504, so
//     values beyond what the block can express saturate.
//   - q8_0: d = min(amax / 127, 65504); q = clamp(nearbyint(x / d), -127, 127), computed as
//     x * (1 / d) with round-half-even (nearbyint in the default rounding mode).
//   - q4_0: max = first signed value of largest magnitude; d = max / -8 (|d| clamped);
//     q = clamp(floor(x * (1 / d) + 8.5), 0, 15) (ggml's rule).
//   - an alias (q8_0r, turbo4g32, ...) encodes and decodes as its storage codec.
//   - turbo: n = |x| over the group (sum of squares in double); n == 0 gives an all-zero block.
//     v_i = x_i * inv; index = number of thresholds t with t < v_i, with inv = float(sqrt(G) / n)
//     (2 bits) or the best of a search around it (3 bits and up: turbo_index_rule, below); the
//     scale is turbo_scale_rule (below), stored as fp16, clamped to 65504.
//   - vq2: n as for turbo; each chunk of 8 values v = x * float(gain * sqrt(G) / n) is the
//     nearest d8 codeword (d8::encode_chunk); scale = n / |c| (norm corrected, c = k / 2),
//     fp16, clamped; value = (scale / 2) * k.

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>

#include <strata/codec/codec_alias.hpp>
#include <strata/codec/codecs.hpp>
#include <strata/codec/d8_codebook.hpp>
#include <strata/codec/half.hpp>
#include <strata/codec/turbo_pack.hpp>

namespace strata {

// How a turbo block's scale is chosen once the indices c_i = codebook[idx_i] are known:
//   plain           n / sqrt(G)            (each coordinate quantized for N(0, n^2/G))
//   norm_corrected  n / |c|                (the reconstruction has norm n; the fork's rule)
//   least_squares   <x, c> / |c|^2         (the scale minimising |x - s c|)
//   unbiased        |x|^2 / <x, c>         (<x_hat, x> = |x|^2: scores not shrunk on average)
//   absmax          max|x| / max|codebook| (iq4_nl's scale without its search)
enum class turbo_scale_rule { plain, norm_corrected, least_squares, unbiased, absmax };

// How a turbo block's indices are chosen: index_i = number of thresholds below x_i * inv, with
//   norm      inv = sqrt(G) / n            (each coordinate read as N(0, n^2 / G))
//   absmax    inv = max|codebook| / max|x| (the largest value on the outermost centroid)
//   searched  the best of: the norm inverse, it times each of turbo_search_factors, the absmax
//             inverse, then least-squares refits (inv = |c|^2 / <x, c>) while they improve;
//             "best" = the largest <x, c>^2 / |c|^2, i.e. the smallest |x - s c| at the
//             least-squares s (and the smallest at the norm-corrected s too).
enum class turbo_index_rule { norm, absmax, searched };

// The rules strata uses (measured in docs/codecs.md "Norm correction" and "Scale search"): the
// search from 3 bits up; at 2 bits it gains under 2% MSE and costs K's attention error a few %.
inline constexpr turbo_scale_rule turbo_scale = turbo_scale_rule::norm_corrected;
template <int Bits>
inline constexpr turbo_index_rule turbo_index =
    Bits >= 3 ? turbo_index_rule::searched : turbo_index_rule::norm;

// The factors of the norm inverse that the search tries (docs/codecs.md "Scale search").
// 0.70 .. 1.45 in steps of 0.05 (1.00 is the norm inverse itself): on Gaussian groups within 0.5%
// of the MSE of a 111-point grid (0.50 .. 1.60) at every width and group measured.
inline constexpr float turbo_search_factors[] = {0.70f, 0.75f, 0.80f, 0.85f, 0.90f,
                                                 0.95f, 1.05f, 1.10f, 1.15f, 1.20f,
                                                 1.25f, 1.30f, 1.35f, 1.40f, 1.45f};
inline constexpr int turbo_search_refits = 2;

namespace reference::detail {

inline float clean(float x) {
  if (std::isnan(x)) return 0.0f;
  if (std::isinf(x)) return std::copysign(FLT_MAX, x);
  return x;
}

// ---- encode one block ----
inline void encode_block(f32, const float* x, f32::block& b) { b = x[0]; }
inline void encode_block(f16, const float* x, f16::block& b) { b = f32_to_f16(x[0]); }
inline void encode_block(bf16, const float* x, bf16::block& b) { b = f32_to_bf16(x[0]); }

inline void encode_block(q8_0, const float* x, q8_0::block& b) {
  float amax = 0.0f;
  for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(clean(x[i])));
  const float d = std::min(amax / 127.0f, f16_max);
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  b.d = f32_to_f16(d);
  for (int i = 0; i < 32; ++i) {
    const float q = std::nearbyint(clean(x[i]) * id);
    b.qs[i] = std::int8_t(std::clamp(q, -127.0f, 127.0f));
  }
}

inline void encode_block(q4_0, const float* x, q4_0::block& b) {
  float amax = 0.0f, max = 0.0f;
  for (int i = 0; i < 32; ++i) {
    const float v = clean(x[i]);
    if (std::fabs(v) > amax) {
      amax = std::fabs(v);
      max = v;
    }
  }
  const float d = std::clamp(max / -8.0f, -f16_max, f16_max);
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  b.d = f32_to_f16(d);
  std::uint8_t q[32];
  for (int i = 0; i < 32; ++i)
    q[i] = std::uint8_t(std::clamp(std::floor(clean(x[i]) * id + 8.5f), 0.0f, 15.0f));
  for (int j = 0; j < 16; ++j) b.qs[j] = std::uint8_t(q[j] | (q[j + 16] << 4));
}

// |x| of one group of cleaned values (sum of squares in double), as turbo and vq2 scale by.
template <int G> double group_norm(const float* x) {
  double ss = 0.0;
  for (int i = 0; i < G; ++i) ss += double(clean(x[i])) * double(clean(x[i]));
  return std::sqrt(ss);
}

// <x, c> and |c|^2 of one turbo group for indices q, with c the f32 codebook the decoder reads
// (CB::centroids rounded to float). Each product of two f32 values is exact in f64; element i's
// products go to partial sum i % 8 in element order, and the 8 partials are added as
// ((p0 + p1) + (p2 + p3)) + ((p4 + p5) + (p6 + p7)). A SIMD kernel keeps the 8 partials in f64
// lanes (one vector of 8, or 2 x 4, 4 x 2) and adds them in this order, so the reference and
// every target compute the same bits whatever the vector width (and whether or not a compiler
// contracts the multiply-add: the product is exact either way).
struct turbo_fit {
  double xc = 0.0, cc = 0.0;
  // <x, c>^2 / |c|^2: larger is better (|x - s c|^2 = |x|^2 - this at s = <x, c> / |c|^2).
  double score() const { return xc > 0.0 ? (xc * xc) / cc : 0.0; }
};

inline constexpr int turbo_fit_lanes = 8;

inline double combine_fit_lanes(const double* p) {
  return ((p[0] + p[1]) + (p[2] + p[3])) + ((p[4] + p[5]) + (p[6] + p[7]));
}

template <int B, int G, class CB> turbo_fit fit_turbo_group(const float* x, const std::uint8_t* q) {
  static_assert(G % turbo_fit_lanes == 0);
  double xc[turbo_fit_lanes] = {}, cc[turbo_fit_lanes] = {};
  for (int i = 0; i < G; ++i) {
    const double c = double(float(CB::centroids[std::size_t(q[i])]));
    xc[i % turbo_fit_lanes] += c * double(clean(x[i]));
    cc[i % turbo_fit_lanes] += c * c;
  }
  return {combine_fit_lanes(xc), combine_fit_lanes(cc)};
}

// The encoder of one turbo group x, given its norm n (> 0; the caller zeroes the block when
// n == 0) and max|x| (cleaned), with an index assigner and a fitter that read x: assign(inv, q)
// sets q[i] = number of thresholds t with t < clean(x_i) * inv (a float multiply); fit(inv)
// returns fit_turbo_group of the indices assign(inv) gives. The reference does both in scalar code,
// a kernel in SIMD (the fit without storing indices); the rest (the attempts, the choice, the
// scale) is this one function, so they agree. The indices are assigned once, for the winner.
template <turbo_scale_rule Rule, turbo_index_rule Index, int B, int G, class CB, class Assign,
          class Fit>
void encode_turbo_group(double n, float amax, typename turbo<B, G, CB>::block& b, Assign&& assign,
                        Fit&& fit) {
  std::uint8_t q[G];
  const float inv0 = float(std::sqrt(double(G)) / n);
  const float inv_absmax = amax > 0.0f ? float(CB::centroids[CB::size - 1]) / amax : inv0;
  turbo_fit best;
  float best_inv = inv0;
  auto attempt = [&](float inv) {
    const turbo_fit f = fit(inv);
    if (f.score() <= best.score()) return false;
    best = f;
    best_inv = inv;
    return true;
  };
  if constexpr (Index == turbo_index_rule::absmax) {
    attempt(inv_absmax);
  } else {
    attempt(inv0);
    if constexpr (Index == turbo_index_rule::searched) {
      for (float f : turbo_search_factors) attempt(inv0 * f);
      attempt(inv_absmax);
      for (int r = 0; r < turbo_search_refits; ++r)
        if (!attempt(float(best.cc / best.xc))) break;
    }
  }
  if (best.score() == 0.0) {  // every attempt gave <x, c> <= 0 (values far below fp16's range)
    best_inv = inv0;
    best = fit(inv0);
  }
  assign(best_inv, q);
  double s = 0.0;
  if constexpr (Rule == turbo_scale_rule::plain)
    s = n / std::sqrt(double(G));
  else if constexpr (Rule == turbo_scale_rule::norm_corrected)
    s = n / std::sqrt(best.cc);
  else if constexpr (Rule == turbo_scale_rule::least_squares)
    s = best.xc / best.cc;
  else if constexpr (Rule == turbo_scale_rule::unbiased)
    s = n * n / best.xc;
  else
    s = double(amax) / double(CB::centroids[CB::size - 1]);
  b.scale = f32_to_f16(float(std::min(std::max(s, 0.0), double(f16_max))));
  turbo_pack<B, G>(q, b.idx);
}

template <turbo_scale_rule Rule, int B, int G, class CB,
          turbo_index_rule Index = turbo_index_rule::norm>
void encode_turbo_block(const float* x, typename turbo<B, G, CB>::block& b) {
  const double n = group_norm<G>(x);
  if (n == 0.0) {
    std::memset(&b, 0, sizeof b);
    return;
  }
  float amax = 0.0f;
  for (int i = 0; i < G; ++i) amax = std::max(amax, std::fabs(clean(x[i])));
  const auto assign = [x](float inv, std::uint8_t* q) {
    for (int i = 0; i < G; ++i) {
      const float v = clean(x[i]) * inv;
      std::uint8_t k = 0;
      for (float t : CB::thresholds) k = std::uint8_t(k + (t < v));
      q[i] = k;
    }
  };
  encode_turbo_group<Rule, Index, B, G, CB>(n, amax, b, assign, [&](float inv) {
    std::uint8_t q[G];
    assign(inv, q);
    return fit_turbo_group<B, G, CB>(x, q);
  });
}

template <int B, int G, class CB>
void encode_block(turbo<B, G, CB>, const float* x, typename turbo<B, G, CB>::block& b) {
  encode_turbo_block<turbo_scale, B, G, CB, turbo_index<B>>(x, b);
}

// One vq2 group with a chunk encoder (d8::encode_chunk, or a kernel's equal one).
template <int G, class Chunk>
void encode_vq2_block(const float* x, typename vq2<G>::block& b, Chunk&& chunk) {
  const double n = group_norm<G>(x);
  if (n == 0.0) {
    std::memset(&b, 0, sizeof b);
    return;
  }
  const float inv = float(double(vq2<G>::gain) * std::sqrt(double(G)) / n);
  std::int64_t kk = 0;  // |k|^2 = 4 |c|^2
  for (int c = 0; c < G / 8; ++c) {
    float v[8];
    for (int i = 0; i < 8; ++i) v[i] = clean(x[8 * c + i]) * inv;
    b.code[c] = chunk(v);
    std::int8_t k[8];
    d8::decode_chunk(b.code[c], k);
    for (int i = 0; i < 8; ++i) kk += k[i] * k[i];
  }
  const double s = 2.0 * n / std::sqrt(double(kk));
  b.scale = f32_to_f16(float(std::min(s, double(f16_max))));
}

template <int G> void encode_block(vq2<G>, const float* x, typename vq2<G>::block& b) {
  encode_vq2_block<G>(x, b, [](const float* v) { return d8::encode_chunk(v); });
}

// ---- decode one block ----
inline void decode_block(f32, const f32::block& b, float* x) { x[0] = b; }
inline void decode_block(f16, const f16::block& b, float* x) { x[0] = f16_to_f32(b); }
inline void decode_block(bf16, const bf16::block& b, float* x) { x[0] = bf16_to_f32(b); }

inline void decode_block(q8_0, const q8_0::block& b, float* x) {
  const float d = f16_to_f32(b.d);
  for (int i = 0; i < 32; ++i) x[i] = d * float(b.qs[i]);
}

inline void decode_block(q4_0, const q4_0::block& b, float* x) {
  const float d = f16_to_f32(b.d);
  for (int j = 0; j < 16; ++j) {
    x[j] = d * float((b.qs[j] & 0xf) - 8);
    x[j + 16] = d * float((b.qs[j] >> 4) - 8);
  }
}

template <int B, int G, class CB>
void decode_block(turbo<B, G, CB>, const typename turbo<B, G, CB>::block& b, float* x) {
  const float s = f16_to_f32(b.scale);
  std::uint8_t q[G];
  turbo_unpack<B, G>(b.idx, q);
  for (int i = 0; i < G; ++i) x[i] = s * CB::centroids[q[i]];
}

template <int G> void decode_block(vq2<G>, const typename vq2<G>::block& b, float* x) {
  const float h = 0.5f * f16_to_f32(b.scale);  // exact: scale * (k / 2) == (scale / 2) * k
  for (int c = 0; c < G / 8; ++c) {
    std::int8_t k[8];
    d8::decode_chunk(b.code[c], k);
    for (int i = 0; i < 8; ++i) x[8 * c + i] = h * float(k[i]);
  }
}

// ---- an alias (q8_0r, turbo4g32: strata/codec/codec_alias.hpp) is its storage codec ----
template <aliased_codec C> void encode_block(C, const float* x, typename C::block& b) {
  encode_block(typename C::storage{}, x, b);
}
template <aliased_codec C> void decode_block(C, const typename C::block& b, float* x) {
  decode_block(typename C::storage{}, b, x);
}

}  // namespace reference::detail
}  // namespace strata
