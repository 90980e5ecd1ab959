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
//     v_i = x_i * float(sqrt(G) / n); index = number of thresholds t with t < v_i; the scale is
//     turbo_scale_rule (below), stored as fp16, clamped to 65504.
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
enum class turbo_scale_rule { plain, norm_corrected, least_squares, unbiased };

// The rule strata uses (measured in docs/codecs.md "Norm correction").
inline constexpr turbo_scale_rule turbo_scale = turbo_scale_rule::norm_corrected;

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

template <turbo_scale_rule Rule, int B, int G, class CB>
void encode_turbo_block(const float* x, typename turbo<B, G, CB>::block& b) {
  const double n = group_norm<G>(x);
  if (n == 0.0) {
    std::memset(&b, 0, sizeof b);
    return;
  }
  const float inv = float(std::sqrt(double(G)) / n);
  std::uint8_t q[G];
  double xc = 0.0, cc = 0.0;
  for (int i = 0; i < G; ++i) {
    const float v = clean(x[i]) * inv;
    std::uint8_t k = 0;
    for (float t : CB::thresholds) k = std::uint8_t(k + (t < v));
    q[i] = k;
    const double c = CB::centroids[k];
    xc += double(clean(x[i])) * c;
    cc += c * c;
  }
  double s = 0.0;
  if constexpr (Rule == turbo_scale_rule::plain)
    s = n / std::sqrt(double(G));
  else if constexpr (Rule == turbo_scale_rule::norm_corrected)
    s = n / std::sqrt(cc);
  else if constexpr (Rule == turbo_scale_rule::least_squares)
    s = xc / cc;
  else
    s = n * n / xc;
  b.scale = f32_to_f16(float(std::min(s, double(f16_max))));
  turbo_pack<B, G>(q, b.idx);
}

template <int B, int G, class CB>
void encode_block(turbo<B, G, CB>, const float* x, typename turbo<B, G, CB>::block& b) {
  encode_turbo_block<turbo_scale, B, G, CB>(x, b);
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
