#pragma once
// Scalar reference of the integer dot product that the SIMD kernels use for q8_0, q4_0 and
// turbo keys, with exactly their arithmetic:
//   1. each query is quantized once per call, per block of Codec::block_values values (32 for
//      q8_0/q4_0, the group G for turbo): dq = max|x| / 127, qi = nearbyint(x / dq) in int8;
//   2. each key block is read as int8 values k with one float factor dk (q8_0: qs and d,
//      q4_0: nibble - 8 and d, turbo: the int8 codebook image cb_i8[index] and
//      scale * max|codebook| / 127; vq2: the codes' odd integers k and scale / 2);
//   3. score = sum over blocks of (dk * dq) * sum_i qi * k_i, the inner sum exact in int32.
// The SIMD kernels differ only in the order of the float additions across blocks. The error
// against the exact product (strata::reference::dot) is bounded in docs/kernels.md and tested.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include <strata/codec/d8_codebook.hpp>
#include <strata/kernels/codec_traits.hpp>

namespace strata::kernels {

// Quantizes n values to int8 with one scale (step 1 above).
inline float quantize_block_i8(const float* x, std::size_t n, std::int8_t* q) {
  float amax = 0.0f;
  for (std::size_t i = 0; i < n; ++i) amax = std::max(amax, std::fabs(x[i]));
  const float d = amax / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  // nearbyint (round half to even in the default rounding mode) without a libm call, so the
  // loop vectorizes: adding and subtracting 1.5 * 2^23 rounds |v| < 2^22 to an integer
  // (here |v| <= 127). Needs IEEE arithmetic as written (no -ffast-math reassociation).
  constexpr float m = 12582912.0f;
  for (std::size_t i = 0; i < n; ++i) q[i] = std::int8_t(int((x[i] * id + m) - m));
  return d;
}

// All n_q queries of one call: q[i * dim + c] and one scale per query block.
struct quantized_queries {
  std::vector<std::int8_t> q;
  std::vector<float> d;
  std::vector<std::int16_t> q16;  // q widened, for kernels that multiply in int16 (widen())
  quantized_queries(const float* x, std::size_t n_q, std::size_t dim, std::size_t block)
      : q(n_q * dim), d(n_q * (dim / block)) {
    const std::size_t nb = dim / block;
    for (std::size_t i = 0; i < n_q; ++i)
      for (std::size_t b = 0; b < nb; ++b)
        d[i * nb + b] = quantize_block_i8(x + i * dim + b * block, block, &q[i * dim + b * block]);
  }
  void widen() { q16.assign(q.begin(), q.end()); }
  template <class T> const T* data() const {
    if constexpr (sizeof(T) == 2)
      return q16.data();
    else
      return q.data();
  }
};

// Step 2: the int8 values and the factor of one key block.
template <class Codec> struct int8_block;

template <> struct int8_block<q8_0> {
  static float unpack(const q8_0::block& b, std::int8_t* k) {
    std::copy(b.qs, b.qs + 32, k);
    return f16_to_f32(b.d);
  }
};

template <> struct int8_block<q4_0> {
  static float unpack(const q4_0::block& b, std::int8_t* k) {
    for (int j = 0; j < 16; ++j) {
      k[j] = std::int8_t((b.qs[j] & 0xF) - 8);
      k[j + 16] = std::int8_t((b.qs[j] >> 4) - 8);
    }
    return f16_to_f32(b.d);
  }
};

template <int B, int G, class CB> struct int8_block<turbo<B, G, CB>> {
  using traits = turbo_traits<turbo<B, G, CB>>;
  static float unpack(const typename turbo<B, G, CB>::block& b, std::int8_t* k) {
    constexpr auto cb = traits::codebook_i8();
    std::uint8_t q[G];
    turbo_unpack<B, G>(b.idx, q);
    for (int e = 0; e < G; ++e) k[e] = cb[q[e]];
    return f16_to_f32(b.scale) * traits::unit;
  }
};

template <int G> struct int8_block<vq2<G>> {
  static float unpack(const typename vq2<G>::block& b, std::int8_t* k) {
    for (int c = 0; c < G / 8; ++c) d8::decode_chunk(b.code[c], k + 8 * c);
    return 0.5f * f16_to_f32(b.scale);
  }
};

// An alias (q8_0r, turbo4g32) reads as its storage codec.
template <aliased_codec C> struct int8_block<C> : int8_block<typename C::storage> {};

// The reference int8 dot, same signature as strata::dot.
template <class Codec>
void int8_dot_reference(const float* q, std::size_t n_q, std::size_t dim, const void* keys,
                        std::size_t key_stride, std::size_t n_keys, float* scores,
                        std::size_t score_stride) {
  constexpr std::size_t V = Codec::block_values;
  const std::size_t nb = dim / V;
  const quantized_queries qq(q, n_q, dim, V);
  std::int8_t k[V];
  for (std::size_t j = 0; j < n_keys; ++j) {
    const auto* row = reinterpret_cast<const typename Codec::block*>(
        static_cast<const char*>(keys) + j * key_stride);
    std::vector<float> s(n_q, 0.0f);
    for (std::size_t b = 0; b < nb; ++b) {
      const float dk = int8_block<Codec>::unpack(row[b], k);
      for (std::size_t i = 0; i < n_q; ++i) {
        const std::int8_t* qi = &qq.q[i * dim + b * V];
        std::int32_t acc = 0;
        for (std::size_t e = 0; e < V; ++e) acc += std::int32_t(qi[e]) * std::int32_t(k[e]);
        s[i] += (dk * qq.d[i * nb + b]) * float(acc);
      }
    }
    for (std::size_t i = 0; i < n_q; ++i) scores[i * score_stride + j] = s[i];
  }
}

}  // namespace strata::kernels
