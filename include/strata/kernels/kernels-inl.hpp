// Highway kernels for every codec, compiled once per SIMD target: strata/kernels/kernels.hpp
// re-includes this file through hwy/foreach_target.h; do not include it directly. The files
// below are fragments of this one: included here once per target, inside its per-target guard
// and after every header they use (listed here once), in this order, each in
// strata::kernels::HWY_NAMESPACE (where simd-inl.hpp declares `hn`).
//
//   simd-inl.hpp      shared SIMD helpers: lane sums, query-row tiles, prefetch, int8 products
//   roles-inl.hpp     the reader roles a codec family provides, each with its concept
//   float-inl.hpp     f32 / f16 / bf16: their io and the float encode, decode, dot, axpy
//   q8_0-inl.hpp, q4_0-inl.hpp, turbo-inl.hpp, turbo56-inl.hpp, vq2-inl.hpp:
//                     each family's readers and encoder
//   dot_i8-inl.hpp    the integer dot driver (int8_expander)
//   axpy-inl.hpp      the portable fused axpy and block decode drivers (f32_expander)
//   axpy_x86-inl.hpp  the register-blocked axpy drivers, AVX2 / AVX3 (lane / plane readers)
//   axpy_zmm-inl.hpp  the register-blocked axpy driver at 512 bits, AVX3 (zmm readers)
//   axpy_i8-inl.hpp   the integer axpy driver, AVX2 / AVX3 / AVX3_DL (v8 readers: turbo2/3/4)
//   tiled-inl.hpp     the key-tile scan kernels (turbo4 in 32-row tiles: tile_dot, tile_axpy)
//   softmax-inl.hpp   the softmax's maximum and exp-and-sum over a row of scores (no codec)
//   gemm-inl.hpp      the f32 matrix product of the attention loop's prefill path (no codec)
//
// codec_kernels<Codec> picks a driver by the roles the codec provides on this target (use_* in
// roles-inl.hpp) and names no codec: a family without a role there gets the scalar reference path
// (strata/kernels/ scalar.hpp, int8_dot.hpp), which is also the whole of Highway's SCALAR target
// for block codecs.

#if defined(STRATA_KERNELS_INL_HPP_) == defined(HWY_TARGET_TOGGLE)
#ifdef STRATA_KERNELS_INL_HPP_
#undef STRATA_KERNELS_INL_HPP_
#else
#define STRATA_KERNELS_INL_HPP_
#endif

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
#include <utility>

#include <hwy/aligned_allocator.h>
#include <hwy/cache_control.h>
#include <hwy/highway.h>
#include <strata/codec/codecs.hpp>
#include <strata/codec/d8_codebook.hpp>
#include <strata/codec/half.hpp>
#include <strata/codec/turbo_pack.hpp>
#include <strata/kernels/codec_traits.hpp>
#include <strata/kernels/int8_axpy.hpp>
#include <strata/kernels/int8_dot.hpp>
#include <strata/kernels/scalar.hpp>
#include <strata/kernels/tile_scan.hpp>
#include <strata/reference/block.hpp>
#include <strata/reference/gemm.hpp>
#include <strata/reference/softmax.hpp>
// Helpers and roles first, then the codec families, then the drivers.
// clang-format off
#include <strata/kernels/simd-inl.hpp>
#include <strata/kernels/roles-inl.hpp>
#include <strata/kernels/float-inl.hpp>
#include <strata/kernels/q8_0-inl.hpp>
#include <strata/kernels/q4_0-inl.hpp>
#include <strata/kernels/turbo-inl.hpp>
#include <strata/kernels/turbo56-inl.hpp>
#include <strata/kernels/vq2-inl.hpp>
#include <strata/kernels/dot_i8-inl.hpp>
#include <strata/kernels/axpy-inl.hpp>
#include <strata/kernels/axpy_x86-inl.hpp>
#include <strata/kernels/axpy_zmm-inl.hpp>
#include <strata/kernels/axpy_i8-inl.hpp>
#include <strata/kernels/tiled-inl.hpp>
#include <strata/kernels/softmax-inl.hpp>
#include <strata/kernels/gemm-inl.hpp>
// clang-format on

// AVX3_DL (compiled where HWY_WANT_AVX3_DL is defined: strata::kernels' units) differs from AVX3
// only in the integer dot and the integer V product (vpdpbusd, vpermb): its codec_kernels
// inherits AVX3's encode and decode (the same functions: nothing is compiled again) and
// compiles those two only.
#if HWY_TARGET == HWY_AVX3_DL && (HWY_TARGETS & HWY_AVX3)
#define STRATA_KERNELS_DL_ONLY_DOT 1
namespace strata::kernels::N_AVX3 {
template <class Codec> struct codec_kernels;
}  // namespace strata::kernels::N_AVX3
#else
#define STRATA_KERNELS_DL_ONLY_DOT 0
#endif

HWY_BEFORE_NAMESPACE();
namespace strata::kernels::HWY_NAMESPACE {

#if STRATA_KERNELS_DL_ONLY_DOT
template <class Codec> struct codec_kernels : N_AVX3::codec_kernels<Codec> {
  static void dot(const float* q, std::size_t n_q, std::size_t dim, const void* keys,
                  std::size_t key_stride, std::size_t n_keys, float* scores,
                  std::size_t score_stride) {
    if constexpr (!use_float_io<Codec> && use_i8_reader<Codec>)
      i8_dot<Codec>(q, n_q, dim, keys, key_stride, n_keys, scores, score_stride);
    else
      N_AVX3::codec_kernels<Codec>::dot(q, n_q, dim, keys, key_stride, n_keys, scores,
                                        score_stride);
  }
  // The integer V product with vpdpbusd and vpermb (the same int32 sums as AVX3's, so the
  // same results); AVX3's axpy for every other codec.
  static void axpy(const float* w, std::size_t n_q, std::size_t w_stride, const void* values,
                   std::size_t value_stride, std::size_t n_values, std::size_t dim, float* out) {
    if constexpr (use_v8_reader<Codec>)
      i8_axpy<Codec>(w, n_q, w_stride, values, value_stride, n_values, dim, out);
    else
      N_AVX3::codec_kernels<Codec>::axpy(w, n_q, w_stride, values, value_stride, n_values, dim,
                                         out);
  }
};
#else
template <class Codec> struct codec_kernels {
  static void encode(const float* x, std::size_t n, void* out) {
    if constexpr (use_float_io<Codec>)
      float_encode<Codec>(x, n, out);
    else if constexpr (use_block_encoder<Codec>)
      block_encoder<Codec>::encode(x, n, out);
    else
      scalar_encode<Codec>(x, n, out);
  }

  static void decode(const void* in, std::size_t n, float* x) {
    if constexpr (use_float_io<Codec>)
      float_decode<Codec>(in, n, x);
    else if constexpr (use_block_decoder<Codec>)
      block_decode<Codec>(in, n, x);
    else
      scalar_decode<Codec>(in, n, x);
  }

  // Not inlined: called through the dispatch tables only (and by AVX3_DL's forwarder above,
  // which must not compile it again).
  static HWY_NOINLINE void dot(const float* q, std::size_t n_q, std::size_t dim, const void* keys,
                               std::size_t key_stride, std::size_t n_keys, float* scores,
                               std::size_t score_stride) {
    if constexpr (use_float_io<Codec>)
      float_dot<Codec>(q, n_q, dim, keys, key_stride, n_keys, scores, score_stride);
    else if constexpr (use_i8_reader<Codec>)
      i8_dot<Codec>(q, n_q, dim, keys, key_stride, n_keys, scores, score_stride);
    else
      int8_dot_reference<Codec>(q, n_q, dim, keys, key_stride, n_keys, scores, score_stride);
  }

  // Key tiles (strata/codec/key_tile.hpp), for the codecs that have them.
  static void tile_dot(const float* q, std::size_t n_q, std::size_t dim, const void* tiles,
                       std::size_t first, std::size_t n_keys, float* scores,
                       std::size_t score_stride) {
    if constexpr (tiled_codec<Codec>)
      scan_dot<Codec>(q, n_q, dim, tiles, first, n_keys, scores, score_stride);
  }
  static void tile_axpy(const float* w, std::size_t n_q, std::size_t w_stride, const void* tiles,
                        std::size_t first, std::size_t n_values, std::size_t dim, float* out) {
    if constexpr (tiled_codec<Codec>)
      scan_axpy<Codec>(w, n_q, w_stride, tiles, first, n_values, dim, out);
  }

  static void axpy(const float* w, std::size_t n_q, std::size_t w_stride, const void* values,
                   std::size_t value_stride, std::size_t n_values, std::size_t dim, float* out) {
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
    // The integer V product (int8_axpy.hpp) where the codec has one (turbo2/3/4).
    if constexpr (use_v8_reader<Codec>)
      return i8_axpy<Codec>(w, n_q, w_stride, values, value_stride, n_values, dim, out);
#endif
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
    // 16-value chunks, each element summed in the order of the driver it replaces (so the
    // results are that driver's bits): float_axpy's chain on out, plane_axpy's and lane_axpy's
    // per-tile sums, fused_axpy's chain from zero (groups of 4 rows of lane readers; all rows
    // where there is none).
    if constexpr (use_zmm_reader<Codec>) {
      if constexpr (use_float_io<Codec>) {
        if (dim % 16 == 0)
          return zmm_axpy<Codec, false>(w, n_q, w_stride, values, value_stride, n_values, dim, out);
      } else if constexpr (use_plane_reader<Codec>) {
        return zmm_axpy<Codec, true>(w, n_q, w_stride, values, value_stride, n_values, dim, out);
      } else {
        const std::size_t n4 = use_lane_reader<Codec> ? n_q - n_q % 4 : n_q;
        if (n4) zmm_axpy_chain<Codec>(w, n4, w_stride, values, value_stride, n_values, dim, out);
        if (n4 < n_q)
          zmm_axpy<Codec, true>(w + n4 * w_stride, n_q - n4, w_stride, values, value_stride,
                                n_values, dim, out + n4 * dim);
        return;
      }
    }
#endif
    if constexpr (use_float_io<Codec>) {
      float_axpy<Codec>(w, n_q, w_stride, values, value_stride, n_values, dim, out);
      return;
    }
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
    if constexpr (use_plane_reader<Codec>) {
      plane_axpy<Codec>(w, n_q, w_stride, values, value_stride, n_values, dim, out);
      return;
    } else if constexpr (use_lane_reader<Codec>) {
      // Groups of 4 rows: the fused kernel (measured faster there) unless the reader says
      // four_rows; the last 1-3 rows (a GQA group of 3, or what is left of 5-7): the
      // register-blocked one (faster there).
      const std::size_t n4 = n_q - n_q % 4;
      if constexpr (lane_reader<Codec>::four_rows) {
        for (std::size_t i = 0; i < n4; i += 4)
          lane_axpy<Codec>(w + i * w_stride, 4, w_stride, values, value_stride, n_values, dim,
                           out + i * dim);
      } else if (n4) {
        fused_axpy<Codec>(w, n4, w_stride, values, value_stride, n_values, dim, out);
      }
      if (n4 < n_q)
        lane_axpy<Codec>(w + n4 * w_stride, n_q - n4, w_stride, values, value_stride, n_values, dim,
                         out + n4 * dim);
      return;
    }
#endif
    if constexpr (use_f32_reader<Codec>)
      fused_axpy<Codec>(w, n_q, w_stride, values, value_stride, n_values, dim, out);
    else if constexpr (!use_float_io<Codec>)
      scalar_axpy<Codec>(w, n_q, w_stride, values, value_stride, n_values, dim, out);
  }
};
#endif
#undef STRATA_KERNELS_DL_ONLY_DOT

}  // namespace strata::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // STRATA_KERNELS_INL_HPP_ toggle
