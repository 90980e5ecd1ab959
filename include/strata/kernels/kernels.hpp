#pragma once
// strata::encode / decode / dot / axpy for every codec (docs/formats.md), compiled for every
// SIMD target Highway generates and dispatched at run time (one dispatch per call). An alias
// codec (q8_0r, turbo4g32: strata/codec/codec_alias.hpp) runs the kernels of its storage type.
//
// Three ways to compile it, chosen per translation unit:
// - header-only (strata::strata): the per-target code (kernels-inl.hpp) is re-included once
//   per target through hwy/foreach_target.h in every unit that includes this header. The
//   dispatch tables are static members of class templates, so any number of units of one
//   program may do so (one definition each, merged by the linker); all of them must be compiled
//   with the same target flags. Highway 1.0.3 allows one foreach_target.h per unit: such a
//   unit cannot also run its own Highway dynamic dispatch. Link hwy::hwy.
// - compiled once (strata::kernels, which defines STRATA_KERNELS_PRECOMPILED): units see
//   declarations only and call into the library's one unit (strata/kernels/instantiate.hpp),
//   which holds every standard codec's kernels; no Highway header is included here.
// - both (strata::kernels linked, STRATA_KERNELS_DEFINE defined before the includes): the
//   standard codecs' calls go to the library as above, and this unit compiles, for every
//   target, the kernels of the codec types the library does not hold (a program's own).

#include <cstddef>
#include <stdexcept>
#include <string>
#include <type_traits>

#include <strata/codec/key_tile.hpp>
#include <strata/kernels/codec_traits.hpp>
#include <strata/kernels/precompiled.hpp>

// STRATA_KERNELS_PRECOMPILED (set by linking strata::kernels): this translation unit sees the
// kernels' declarations only; strata::kernels' units hold the instantiations for every standard
// codec and group (strata/kernels/precompiled.hpp). STRATA_KERNELS_DEFINE besides it (a program's
// own codec types, e.g. a turbo with another codebook) compiles here the kernels of the codec
// types strata::kernels does not hold, and only those (STRATA_KERNELS_OWN_TYPES): the standard
// ones still come from the library, so such a unit compiles its own types for every target and
// nothing else.
#if !defined(STRATA_KERNELS_PRECOMPILED) || defined(STRATA_KERNELS_DEFINE)
#define STRATA_KERNELS_HEADER_ONLY 1
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "strata/kernels/kernels-inl.hpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>
#include <strata/kernels/kernels-inl.hpp>
#else
#define STRATA_KERNELS_HEADER_ONLY 0
#endif
#if defined(STRATA_KERNELS_PRECOMPILED) && defined(STRATA_KERNELS_DEFINE)
#define STRATA_KERNELS_OWN_TYPES 1
#else
#define STRATA_KERNELS_OWN_TYPES 0
#endif

namespace strata::kernels::detail {

using encode_fn = void (*)(const float*, std::size_t, void*);
using decode_fn = void (*)(const void*, std::size_t, float*);
using dot_fn = void (*)(const float*, std::size_t, std::size_t, const void*, std::size_t,
                        std::size_t, float*, std::size_t);
using axpy_fn = void (*)(const float*, std::size_t, std::size_t, const void*, std::size_t,
                         std::size_t, std::size_t, float*);

using max_fn = float (*)(const float*, std::size_t);
using exp_sum_fn = float (*)(float*, std::size_t, float);
using gemm_fn = void (*)(const float*, std::size_t, const float*, std::size_t, float*, std::size_t,
                         std::size_t, std::size_t, std::size_t, bool);
using gemm_nt_fn = void (*)(const float*, std::size_t, const float*, std::size_t, float*,
                            std::size_t, std::size_t, std::size_t, std::size_t);

// The best compiled target's softmax loops (a template only so that its definitions, like
// dispatch<Codec>'s, may be in every translation unit).
template <class = void> struct softmax_dispatch {
  static max_fn max_of();
  static exp_sum_fn exp_sub_sum();
};

// The best compiled target's f32 matrix product (the attention loop's prefill path).
template <class = void> struct gemm_dispatch {
  static gemm_fn gemm();
  static gemm_nt_fn gemm_nt();
};

// The best compiled target's kernels of one codec type. Declared alike in every translation
// unit; the definitions below are compiled where STRATA_KERNELS_HEADER_ONLY is 1 and
// STRATA_KERNELS_OWN_TYPES is 0 (header-only units and strata::kernels' own).
template <class Codec> struct dispatch {
  static encode_fn encode();
  static decode_fn decode();
  static dot_fn dot();
  static axpy_fn axpy();
  // key tiles (tiled codecs only): key_stride / value_stride is the first row's index in the
  // tiled store
  static dot_fn tile_dot();
  static axpy_fn tile_axpy();
};

// The same for a codec type strata::kernels does not hold, compiled in a unit with
// STRATA_KERNELS_OWN_TYPES (another name than dispatch<Codec>, so that the standard types'
// definitions are never instantiated there).
template <class Codec> struct own_dispatch {
  static encode_fn encode();
  static decode_fn decode();
  static dot_fn dot();
  static axpy_fn axpy();
  static dot_fn tile_dot();
  static axpy_fn tile_axpy();
};

// Where a call for Codec goes in this unit.
template <class Codec>
using dispatch_of = std::conditional_t<STRATA_KERNELS_OWN_TYPES && !precompiled<Codec>,
                                       own_dispatch<Codec>, dispatch<Codec>>;

#if STRATA_KERNELS_HEADER_ONLY
#if STRATA_KERNELS_OWN_TYPES
#define STRATA_KERNELS_DISPATCH own_dispatch
#else
#define STRATA_KERNELS_DISPATCH dispatch
#endif
#if (HWY_TARGETS & (HWY_TARGETS - 1)) == 0
// One target compiled: call it directly.
template <class Codec> encode_fn STRATA_KERNELS_DISPATCH<Codec>::encode() {
  return &HWY_STATIC_DISPATCH(codec_kernels<Codec>)::encode;
}
template <class Codec> decode_fn STRATA_KERNELS_DISPATCH<Codec>::decode() {
  return &HWY_STATIC_DISPATCH(codec_kernels<Codec>)::decode;
}
template <class Codec> dot_fn STRATA_KERNELS_DISPATCH<Codec>::dot() {
  return &HWY_STATIC_DISPATCH(codec_kernels<Codec>)::dot;
}
template <class Codec> axpy_fn STRATA_KERNELS_DISPATCH<Codec>::axpy() {
  return &HWY_STATIC_DISPATCH(codec_kernels<Codec>)::axpy;
}
template <class Codec> dot_fn STRATA_KERNELS_DISPATCH<Codec>::tile_dot() {
  return &HWY_STATIC_DISPATCH(codec_kernels<Codec>)::tile_dot;
}
template <class Codec> axpy_fn STRATA_KERNELS_DISPATCH<Codec>::tile_axpy() {
  return &HWY_STATIC_DISPATCH(codec_kernels<Codec>)::tile_axpy;
}
#if !STRATA_KERNELS_OWN_TYPES  // (else strata::kernels' softmax loops)
template <class T> max_fn softmax_dispatch<T>::max_of() {
  return &HWY_STATIC_DISPATCH(softmax_kernels)::max_of;
}
template <class T> exp_sum_fn softmax_dispatch<T>::exp_sub_sum() {
  return &HWY_STATIC_DISPATCH(softmax_kernels)::exp_sub_sum;
}
template <class T> gemm_fn gemm_dispatch<T>::gemm() {
  return &HWY_STATIC_DISPATCH(gemm_kernels)::gemm;
}
template <class T> gemm_nt_fn gemm_dispatch<T>::gemm_nt() {
  return &HWY_STATIC_DISPATCH(gemm_kernels)::gemm_nt;
}
#endif
#else
// Like HWY_EXPORT, but the tables are static members of a class template (one definition
// per program, not one per translation unit): entry 0 picks the best target on the first
// call, then entry GetChosenTarget().GetIndex() is the chosen target's function.
inline constexpr std::size_t table_size = HWY_MAX_DYNAMIC_TARGETS + 2;
template <class Codec> struct tables {
  static const encode_fn encode[table_size];
  static const decode_fn decode[table_size];
  static const dot_fn dot[table_size];
  static const axpy_fn axpy[table_size];
  static const dot_fn tile_dot[table_size];
  static const axpy_fn tile_axpy[table_size];
};
#define STRATA_KERNELS_TABLE(FN, TYPE)                                             \
  template <class Codec>                                                           \
  const TYPE tables<Codec>::FN[table_size] = {                                     \
      &decltype(hwy::DeduceFunctionCache(                                          \
          static_cast<TYPE>(nullptr)))::template ChooseAndCall<tables<Codec>::FN>, \
      HWY_CHOOSE_TARGET_LIST(codec_kernels<Codec>::FN),                            \
      HWY_CHOOSE_FALLBACK(codec_kernels<Codec>::FN)};                              \
  template <class Codec> TYPE STRATA_KERNELS_DISPATCH<Codec>::FN() {               \
    return tables<Codec>::FN[hwy::GetChosenTarget().GetIndex()];                   \
  }
STRATA_KERNELS_TABLE(encode, encode_fn)
STRATA_KERNELS_TABLE(decode, decode_fn)
STRATA_KERNELS_TABLE(dot, dot_fn)
STRATA_KERNELS_TABLE(axpy, axpy_fn)
STRATA_KERNELS_TABLE(tile_dot, dot_fn)
STRATA_KERNELS_TABLE(tile_axpy, axpy_fn)
#undef STRATA_KERNELS_TABLE
#if !STRATA_KERNELS_OWN_TYPES
template <class T> struct softmax_tables {
  static const max_fn max_of[table_size];
  static const exp_sum_fn exp_sub_sum[table_size];
};
#define STRATA_SOFTMAX_TABLE(FN, TYPE)                                                        \
  template <class T>                                                                          \
  const TYPE softmax_tables<T>::FN[table_size] = {                                            \
      &decltype(hwy::DeduceFunctionCache(                                                     \
          static_cast<TYPE>(nullptr)))::template ChooseAndCall<softmax_tables<T>::FN>,        \
      HWY_CHOOSE_TARGET_LIST(softmax_kernels::FN), HWY_CHOOSE_FALLBACK(softmax_kernels::FN)}; \
  template <class T> TYPE softmax_dispatch<T>::FN() {                                         \
    return softmax_tables<T>::FN[hwy::GetChosenTarget().GetIndex()];                          \
  }
STRATA_SOFTMAX_TABLE(max_of, max_fn)
STRATA_SOFTMAX_TABLE(exp_sub_sum, exp_sum_fn)
#undef STRATA_SOFTMAX_TABLE
template <class T> struct gemm_tables {
  static const gemm_fn gemm[table_size];
  static const gemm_nt_fn gemm_nt[table_size];
};
#define STRATA_GEMM_TABLE(FN, TYPE)                                                     \
  template <class T>                                                                    \
  const TYPE gemm_tables<T>::FN[table_size] = {                                         \
      &decltype(hwy::DeduceFunctionCache(                                               \
          static_cast<TYPE>(nullptr)))::template ChooseAndCall<gemm_tables<T>::FN>,     \
      HWY_CHOOSE_TARGET_LIST(gemm_kernels::FN), HWY_CHOOSE_FALLBACK(gemm_kernels::FN)}; \
  template <class T> TYPE gemm_dispatch<T>::FN() {                                      \
    return gemm_tables<T>::FN[hwy::GetChosenTarget().GetIndex()];                       \
  }
STRATA_GEMM_TABLE(gemm, gemm_fn)
STRATA_GEMM_TABLE(gemm_nt, gemm_nt_fn)
#undef STRATA_GEMM_TABLE
#endif
#endif
#undef STRATA_KERNELS_DISPATCH
#endif  // STRATA_KERNELS_HEADER_ONLY

// Stops the build with a readable message where a translation unit that sees declarations
// only names a codec type strata::kernels does not hold.
template <class Codec> constexpr void require_compiled() {
  static_assert(STRATA_KERNELS_HEADER_ONLY || precompiled<Codec>,
                "strata: this codec type's kernels are not in strata::kernels (it holds the "
                "standard codecs with the groups of strata/codec/group.hpp); compile this "
                "translation unit with STRATA_KERNELS_DEFINE defined before its includes, or "
                "give the codec its own kernels");
}

[[noreturn]] inline void bad_length(const char* what, const char* codec, std::size_t n,
                                    std::size_t block) {
  throw std::invalid_argument(std::string("error: ") + what + " " + std::to_string(n) +
                              " is not a multiple of " + std::to_string(block) +
                              " values (strata::" + codec + ")");
}

}  // namespace strata::kernels::detail

namespace strata {

// x[0..n) -> n / block_values blocks at out. No rotation (the caller rotates).
template <kernels::kernel_codec Codec>
inline void encode(const float* x, std::size_t n, void* out) {
  if (n % Codec::block_values != 0)
    kernels::detail::bad_length("length", Codec::name, n, Codec::block_values);
  kernels::detail::require_compiled<storage_t<Codec>>();
  kernels::detail::dispatch_of<storage_t<Codec>>::encode()(x, n, out);
}

// n / block_values blocks at in -> x[0..n).
template <kernels::kernel_codec Codec> inline void decode(const void* in, std::size_t n, float* x) {
  if (n % Codec::block_values != 0)
    kernels::detail::bad_length("length", Codec::name, n, Codec::block_values);
  kernels::detail::require_compiled<storage_t<Codec>>();
  kernels::detail::dispatch_of<storage_t<Codec>>::decode()(in, n, x);
}

// scores[i * score_stride + j] = <q_i, key_j>, i < n_q, j < n_keys (docs/formats.md).
template <kernels::kernel_codec Codec>
inline void dot(const float* q, std::size_t n_q, std::size_t dim, const void* keys,
                std::size_t key_stride, std::size_t n_keys, float* scores,
                std::size_t score_stride) {
  if (dim % Codec::block_values != 0)
    kernels::detail::bad_length("head dim", Codec::name, dim, Codec::block_values);
  kernels::detail::require_compiled<storage_t<Codec>>();
  kernels::detail::dispatch_of<storage_t<Codec>>::dot()(q, n_q, dim, keys, key_stride, n_keys,
                                                        scores, score_stride);
}

// out[i * dim + c] += sum_j w[i * w_stride + j] * value_j[c] (docs/formats.md).
template <kernels::kernel_codec Codec>
inline void axpy(const float* w, std::size_t n_q, std::size_t w_stride, const void* values,
                 std::size_t value_stride, std::size_t n_values, std::size_t dim, float* out) {
  if (dim % Codec::block_values != 0)
    kernels::detail::bad_length("head dim", Codec::name, dim, Codec::block_values);
  kernels::detail::require_compiled<storage_t<Codec>>();
  kernels::detail::dispatch_of<storage_t<Codec>>::axpy()(w, n_q, w_stride, values, value_stride,
                                                         n_values, dim, out);
}

// Key tiles (strata/codec/key_tile.hpp, turbo4): scores[i * score_stride + k] = <q_i, key
// first + k> for k < n_keys, the keys in the tiled store at `tiles` (tile 0 holds keys 0..31);
// the fast-scan arithmetic of strata/kernels/tile_scan.hpp.
template <kernels::kernel_codec Codec>
requires tiled_codec<storage_t<Codec>>
inline void tile_dot(const float* q, std::size_t n_q, std::size_t dim, const void* tiles,
                     std::size_t first, std::size_t n_keys, float* scores,
                     std::size_t score_stride) {
  if (dim % Codec::block_values != 0)
    kernels::detail::bad_length("head dim", Codec::name, dim, Codec::block_values);
  kernels::detail::require_compiled<storage_t<Codec>>();
  kernels::detail::dispatch_of<storage_t<Codec>>::tile_dot()(q, n_q, dim, tiles, first, n_keys,
                                                             scores, score_stride);
}

// out[i * dim + c] += sum_k w[i * w_stride + k] * value_{first + k}[c] over the tiled store at
// `tiles` (tile_scan.hpp's integer arithmetic).
template <kernels::kernel_codec Codec>
requires tiled_codec<storage_t<Codec>>
inline void tile_axpy(const float* w, std::size_t n_q, std::size_t w_stride, const void* tiles,
                      std::size_t first, std::size_t n_values, std::size_t dim, float* out) {
  if (dim % Codec::block_values != 0)
    kernels::detail::bad_length("head dim", Codec::name, dim, Codec::block_values);
  kernels::detail::require_compiled<storage_t<Codec>>();
  kernels::detail::dispatch_of<storage_t<Codec>>::tile_axpy()(w, n_q, w_stride, tiles, first,
                                                              n_values, dim, out);
}

// The softmax's loops over a row of scores (reference/softmax.hpp has the definition; the
// kernels give its bits on x86): the maximum of x[0..n), n > 0 ...
inline float softmax_max(const float* x, std::size_t n) {
  return kernels::detail::softmax_dispatch<>::max_of()(x, n);
}

// ... and x[j] = exp(x[j] - m) for j < n, returning their sum.
inline float softmax_exp_sum(float* x, std::size_t n, float m) {
  return kernels::detail::softmax_dispatch<>::exp_sub_sum()(x, n, m);
}

// c[i * ldc + j] (+)= sum_p a[i * lda + p] * b[p * ldb + j] for i < m, j < n, p < k, in f32
// (reference/gemm.hpp has the definition and the order of the sums; where the target has FMA the
// kernel gives its bits). The attention loop's prefill path (cache/attend.hpp).
inline void gemm_f32(const float* a, std::size_t lda, const float* b, std::size_t ldb, float* c,
                     std::size_t ldc, std::size_t m, std::size_t n, std::size_t k,
                     bool accumulate) {
  kernels::detail::gemm_dispatch<>::gemm()(a, lda, b, ldb, c, ldc, m, n, k, accumulate);
}

// c[i * ldc + j] = sum_p a[i * lda + p] * b[j * ldb + p] for i < m, j < n, p < k, in f32 (b's
// rows as columns; within float rounding of reference/gemm.hpp's f64 sums, as the dot kernels).
// The prefill path's scores from decoded key rows.
inline void gemm_nt_f32(const float* a, std::size_t lda, const float* b, std::size_t ldb, float* c,
                        std::size_t ldc, std::size_t m, std::size_t n, std::size_t k) {
  kernels::detail::gemm_dispatch<>::gemm_nt()(a, lda, b, ldb, c, ldc, m, n, k);
}

}  // namespace strata
