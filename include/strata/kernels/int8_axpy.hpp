#pragma once
// Scalar reference of the integer V product (the attention's weighted sum of value rows) that
// the x86 AVX2/AVX3 kernels use for turbo2/3/4 values (int8_v_avx2 and int8_v_avx3 below say
// which groups on which target), with exactly their arithmetic:
//   1. each value block is read as unsigned 8-bit codes u with an offset o and one float
//      factor f: value = f * (u - o) up to the codec's int8 image (turbo: the 7-bit codebook
//      image cb_i8 + 64 of codec_traits.hpp, f = scale * unit; the same image as the K side);
//   2. per query row, value block b and group of kV8Group keys (the last one shorter), the
//      weights w_j * f_j are quantized to int8 with one scale: m = max |w_j * f_j|,
//      q_j = nearbyint(w_j * f_j * (127 / m)), d = m / 127 (q = 0, d = 0 when m = 0);
//   3. per element, acc = sum_j q_j * (u_j - o) exact in int32 (|q| <= 127, u <= 127: the
//      pmaddubsw pair sums stay below 2^15), then facc = fma(float(acc), d, facc) group after
//      group (facc starts at 0), and out += facc once at the end of the call.
// The SIMD kernels (axpy_i8-inl.hpp) perform the same operations in the same order per
// element, so they match this reference bit for bit. The error against the exact product is
// the weights' rounding (d / 2 per weight, relative to the group's largest) and the value
// image's (scale * unit / 2 per value): docs/kernels.md has the measured attention error.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include <hwy/detect_compiler_arch.h>
#include <hwy/detect_targets.h>

#include <strata/codec/codec_alias.hpp>
#include <strata/codec/half.hpp>
#include <strata/codec/turbo_pack.hpp>
#include <strata/kernels/codec_traits.hpp>

namespace strata::kernels {

// Keys per weight scale (a multiple of 4: the kernels take the keys four at a time).
inline constexpr std::size_t kV8Group = 32;
static_assert(kV8Group % 4 == 0);

// Which codecs take the integer V product on x86 (elsewhere, and for other codecs, strata::axpy
// stays within float rounding of strata::reference::axpy): on AVX3 and AVX3_DL int8_v_avx3,
// turbo2/4 with groups of 128+ and turbo3 with 128 (with 64, SmolLM2's head dim, the 16- and
// 32-byte planes made it slower than the 512-bit float driver); on AVX2 int8_v_avx2, turbo2
// with groups of 128+ and turbo4 with 64+ (turbo3's high bits, and turbo2's 16-byte planes at
// 64, made it no faster there than the float kernels). Measured: docs/kernels.md. int8_v: the
// codecs with a v8_reader (either target's).
template <class Codec> inline constexpr bool int8_v_avx3 = false;
template <int B, int G, class CB>
inline constexpr bool int8_v_avx3<turbo<B, G, CB>> = ((B == 2 || B == 4) && G >= 128) ||
                                                     (B == 3 && G == 128);
template <aliased_codec C> inline constexpr bool int8_v_avx3<C> = int8_v_avx3<typename C::storage>;
template <class Codec> inline constexpr bool int8_v_avx2 = false;
template <int B, int G, class CB>
inline constexpr bool int8_v_avx2<turbo<B, G, CB>> = (B == 2 && G >= 128) || (B == 4 && G >= 64);
template <aliased_codec C> inline constexpr bool int8_v_avx2<C> = int8_v_avx2<typename C::storage>;
template <class Codec> inline constexpr bool int8_v = int8_v_avx3<Codec> || int8_v_avx2<Codec>;

// Whether strata::axpy<Codec> runs the integer V product on Highway target `target` (a
// HWY_AVX2-style bit): what tests and tools ask to know which arithmetic a target performs.
template <class Codec> constexpr bool int8_v_on([[maybe_unused]] std::int64_t target) {
#if HWY_ARCH_X86
  if (target != 0 && target <= HWY_AVX3) return int8_v_avx3<Codec>;
  if (target == HWY_AVX2) return int8_v_avx2<Codec>;
#endif
  return false;
}

// Step 1: the unsigned codes of one value block, its offset and its factor.
template <class Codec> struct v8_block;
template <int B, int G, class CB> struct v8_block<turbo<B, G, CB>> {
  using traits = turbo_traits<turbo<B, G, CB>>;
  static constexpr int offset = traits::codebook_offset;
  static float unpack(const typename turbo<B, G, CB>::block& b, std::uint8_t* u) {
    constexpr auto cb = traits::codebook_u8();
    std::uint8_t q[G];
    turbo_unpack<B, G>(b.idx, q);
    for (int e = 0; e < G; ++e) u[e] = cb[q[e]];
    return f16_to_f32(b.scale) * traits::unit;
  }
};
template <aliased_codec C> struct v8_block<C> : v8_block<typename C::storage> {};

// Step 2 for one group of n <= kV8Group weights wf[j] = w_j * f_j: q[0..n) and the scale d.
inline float quantize_v8_weights(const float* wf, std::size_t n, std::int8_t* q) {
  float m = 0.0f;
  for (std::size_t j = 0; j < n; ++j) m = std::max(m, std::fabs(wf[j]));
  const float inv = m > 0.0f ? 127.0f / m : 0.0f;
  // (the product rounded to f32, then to the nearest integer, ties to even: cvtps2dq)
  for (std::size_t j = 0; j < n; ++j) q[j] = std::int8_t(std::nearbyint(wf[j] * inv));
  return m / 127.0f;
}

// The reference integer axpy, same signature as strata::axpy.
template <class Codec>
void int8_axpy_reference(const float* w, std::size_t n_q, std::size_t w_stride, const void* values,
                         std::size_t value_stride, std::size_t n_values, std::size_t dim,
                         float* out) {
  using S = storage_t<Codec>;
  constexpr std::size_t V = S::block_values;
  constexpr int o = v8_block<S>::offset;
  const std::size_t nb = dim / V;
  const char* base = static_cast<const char*>(values);
  std::vector<std::uint8_t> u(n_values * V);
  std::vector<float> f(n_values), facc(n_q * dim, 0.0f), wf(kV8Group);
  std::int8_t q[kV8Group];
  std::int32_t acc[V];
  for (std::size_t b = 0; b < nb; ++b) {
    for (std::size_t j = 0; j < n_values; ++j) {
      typename S::block blk;
      std::memcpy(&blk, base + j * value_stride + b * sizeof blk, sizeof blk);
      f[j] = v8_block<S>::unpack(blk, &u[j * V]);
    }
    for (std::size_t i = 0; i < n_q; ++i)
      for (std::size_t j0 = 0; j0 < n_values; j0 += kV8Group) {
        const std::size_t n = std::min(kV8Group, n_values - j0);
        for (std::size_t j = 0; j < n; ++j) wf[j] = w[i * w_stride + j0 + j] * f[j0 + j];
        const float d = quantize_v8_weights(wf.data(), n, q);
        std::fill(acc, acc + V, 0);
        for (std::size_t j = 0; j < n; ++j)
          for (std::size_t e = 0; e < V; ++e)
            acc[e] += std::int32_t(q[j]) * (std::int32_t(u[(j0 + j) * V + e]) - o);
        float* fa = &facc[i * dim + b * V];
        for (std::size_t e = 0; e < V; ++e) fa[e] = std::fma(float(acc[e]), d, fa[e]);
      }
  }
  for (std::size_t e = 0; e < n_q * dim; ++e) out[e] += facc[e];
}

}  // namespace strata::kernels
