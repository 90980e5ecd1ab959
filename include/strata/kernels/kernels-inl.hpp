// Highway kernels for every codec: compiled once per SIMD target. Included by
// strata/kernels/kernels.hpp through hwy/foreach_target.h; do not include directly.
// No include guard on purpose: the per-target toggle below lets foreach_target re-include it.
//
// Sections: f32/f16/bf16 (float_*), int8 building blocks, integer dot (i8_reader, i8_dot),
// block decode (block_decoder), block encode (q8_0/q4_0, turbo), fused axpy (f32_reader),
// entry points (codec_kernels<Codec>: what kernels.hpp's dispatch tables point at).

#if defined(STRATA_KERNELS_INL_HPP_) == defined(HWY_TARGET_TOGGLE)
#ifdef STRATA_KERNELS_INL_HPP_
#undef STRATA_KERNELS_INL_HPP_
#else
#define STRATA_KERNELS_INL_HPP_
#endif

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
#include <utility>
#include <vector>

#include <hwy/aligned_allocator.h>
#include <hwy/cache_control.h>
#include <hwy/highway.h>
#include <strata/kernels/codec_traits.hpp>
#include <strata/kernels/int8_dot.hpp>
#include <strata/kernels/scalar.hpp>

HWY_BEFORE_NAMESPACE();
namespace strata::kernels::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

template <class D, class V> HWY_INLINE float reduce_sum(D d, V v) {
  return hn::GetLane(hn::SumOfLanes(d, v));
}

// The lane sums of four f32 vectors, stored to out[0..4). x86: a horizontal-add tree (one
// tree for all four instead of four separate reductions).
template <class D, class V> HWY_INLINE void reduce_sum4(D d, V a, V b, V c, V e, float* out) {
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_SSSE3
  constexpr std::size_t kBytes = hn::MaxLanes(D()) * sizeof(float);
  if constexpr (kBytes == 16) {
    _mm_storeu_ps(out, _mm_hadd_ps(_mm_hadd_ps(a.raw, b.raw), _mm_hadd_ps(c.raw, e.raw)));
    return;
  }
#if HWY_TARGET <= HWY_AVX2
  if constexpr (kBytes >= 32) {
    __m256 a8, b8, c8, e8;
    if constexpr (kBytes == 64) {
#if HWY_TARGET <= HWY_AVX3
      a8 = _mm256_add_ps(_mm512_castps512_ps256(a.raw), _mm512_extractf32x8_ps(a.raw, 1));
      b8 = _mm256_add_ps(_mm512_castps512_ps256(b.raw), _mm512_extractf32x8_ps(b.raw, 1));
      c8 = _mm256_add_ps(_mm512_castps512_ps256(c.raw), _mm512_extractf32x8_ps(c.raw, 1));
      e8 = _mm256_add_ps(_mm512_castps512_ps256(e.raw), _mm512_extractf32x8_ps(e.raw, 1));
#endif
    } else {
      a8 = a.raw, b8 = b.raw, c8 = c.raw, e8 = e.raw;
    }
    const __m256 t = _mm256_hadd_ps(_mm256_hadd_ps(a8, b8), _mm256_hadd_ps(c8, e8));
    _mm_storeu_ps(out, _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1)));
    return;
  }
#endif
#endif
  out[0] = reduce_sum(d, a);
  out[1] = reduce_sum(d, b);
  out[2] = reduce_sum(d, c);
  out[3] = reduce_sum(d, e);
}

// Stores the QT lane sums of f0..f3 (QT <= 4) to scores[i * stride + j].
template <std::size_t QT, class D, class V>
HWY_INLINE void store_scores(D d, V f0, V f1, V f2, V f3, float* scores, std::size_t stride,
                             std::size_t j) {
  if constexpr (QT >= 3) {
    HWY_ALIGN float s[4];
    reduce_sum4(d, f0, f1, f2, f3, s);
    for (std::size_t i = 0; i < QT; ++i) scores[i * stride + j] = s[i];
  } else {
    scores[j] = reduce_sum(d, f0);
    if constexpr (QT > 1) scores[stride + j] = reduce_sum(d, f1);
    if constexpr (QT > 2) scores[2 * stride + j] = reduce_sum(d, f2);
  }
}

// ============================ f32 / f16 / bf16 =================================================
// io<Codec>: load N values of a row as f32, store N f32 values encoded.
template <class Codec> struct float_io;

template <> struct float_io<f32> {
  using elem = float;
  template <class D> static HWY_INLINE hn::Vec<D> load(D d, const elem* p) {
    return hn::LoadU(d, p);
  }
  template <class D> static HWY_INLINE void store(D d, hn::Vec<D> v, elem* p) {
    hn::StoreU(v, d, p);
  }
  static float scalar(elem v) { return v; }
  static elem encode_scalar(float v) { return v; }
};

template <> struct float_io<f16> {
  using elem = std::uint16_t;
  template <class D> static HWY_INLINE hn::Vec<D> load(D d, const elem* p) {
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
    const hn::Rebind<hwy::float16_t, D> dh;  // F16C
    return hn::PromoteTo(d, hn::LoadU(dh, reinterpret_cast<const hwy::float16_t*>(p)));
#else
    // Highway's emulated conversion maps inf/NaN to finite values: exact integer version.
    // |h| << 13 read as f32 and times 2^112 is the value for normals and subnormals alike.
    const hn::RebindToUnsigned<D> du;
    const hn::RebindToSigned<D> di;
    const hn::Rebind<std::uint16_t, D> du16;
    const auto h = hn::PromoteTo(du, hn::LoadU(du16, p));
    const auto em = hn::And(h, hn::Set(du, 0x7fffu));
    const auto sign = hn::BitCast(d, hn::ShiftLeft<16>(hn::And(h, hn::Set(du, 0x8000u))));
    const auto finite = hn::Mul(hn::BitCast(d, hn::ShiftLeft<13>(em)), hn::Set(d, 0x1p112f));
    const auto infnan = hn::BitCast(d, hn::Or(hn::ShiftLeft<13>(em), hn::Set(du, 0x7f800000u)));
    const auto is_special = hn::RebindMask(d, hn::Gt(hn::BitCast(di, em), hn::Set(di, 0x7bff)));
    return hn::Or(hn::IfThenElse(is_special, infnan, finite), sign);
#endif
  }
  template <class D> static HWY_INLINE void store(D d, hn::Vec<D> v, elem* p) {
#if HWY_TARGET == HWY_AVX2 || HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
    // F16C rounds to nearest even, like the reference.
    const hn::Rebind<hwy::float16_t, D> dh;
    hn::StoreU(hn::DemoteTo(dh, v), dh, reinterpret_cast<hwy::float16_t*>(p));
#else
    // Other targets emulate the conversion without correct rounding: use the reference.
    HWY_ALIGN float tmp[hn::MaxLanes(d)];
    hn::Store(v, d, tmp);
    for (std::size_t i = 0; i < hn::Lanes(d); ++i) p[i] = f32_to_f16(tmp[i]);
#endif
  }
  static float scalar(elem v) { return f16_to_f32(v); }
  static elem encode_scalar(float v) { return f32_to_f16(v); }
};

template <> struct float_io<bf16> {
  using elem = std::uint16_t;
  template <class D> static HWY_INLINE hn::Vec<D> load(D d, const elem* p) {
    const hn::RebindToUnsigned<D> du;
    const hn::Rebind<std::uint16_t, D> du16;
    return hn::BitCast(d, hn::ShiftLeft<16>(hn::PromoteTo(du, hn::LoadU(du16, p))));
  }
  template <class D> static HWY_INLINE void store(D d, hn::Vec<D> v, elem* p) {
    HWY_ALIGN float tmp[hn::MaxLanes(d)];
    hn::Store(v, d, tmp);
    for (std::size_t i = 0; i < hn::Lanes(d); ++i) p[i] = encode_scalar(tmp[i]);
  }
  static float scalar(elem v) { return bf16_to_f32(v); }
  static elem encode_scalar(float v) { return f32_to_bf16(v); }
};

template <class Codec> HWY_INLINE void float_encode(const float* x, std::size_t n, void* out) {
  using io = float_io<Codec>;
  auto* o = static_cast<typename io::elem*>(out);
  const hn::ScalableTag<float> d;
  const std::size_t N = hn::Lanes(d);
  std::size_t i = 0;
  for (; i + N <= n; i += N) io::store(d, hn::LoadU(d, x + i), o + i);
  for (; i < n; ++i) o[i] = io::encode_scalar(x[i]);
}

template <class Codec> HWY_INLINE void float_decode(const void* in, std::size_t n, float* x) {
  using io = float_io<Codec>;
  const auto* p = static_cast<const typename io::elem*>(in);
  const hn::ScalableTag<float> d;
  const std::size_t N = hn::Lanes(d);
  std::size_t i = 0;
  for (; i + N <= n; i += N) hn::StoreU(io::load(d, p + i), d, x + i);
  for (; i < n; ++i) x[i] = io::scalar(p[i]);
}

// Software prefetch of row j + kPrefetchRows (its first `bytes` bytes, every cache line), for
// loops that visit rows j = 0, 1, ...: at 16K+ tokens a head's rows come from beyond L2, and
// on the VMs measured here the hardware prefetcher alone left the dot/axpy loops waiting on
// memory (docs/kernels.md).
inline constexpr std::size_t kPrefetchRows = 8;
HWY_INLINE void prefetch_ahead(const char* base, std::size_t j, std::size_t n, std::size_t stride,
                               std::size_t bytes) {
  if (j + kPrefetchRows >= n) return;
  const char* p = base + (j + kPrefetchRows) * stride;
  for (std::size_t o = 0; o < bytes; o += 64) hwy::Prefetch(p + o);
}

// Scores of QT (1, 2 or 4) queries against n_keys keys: each key chunk is converted to f32
// once and used for all QT queries; QT <= 2 runs two accumulator chains per query.
template <std::size_t QT, class Codec>
HWY_INLINE void float_dot_tile(const float* q, std::size_t dim, const char* keys,
                               std::size_t key_stride, std::size_t n_keys, float* scores,
                               std::size_t score_stride) {
  using io = float_io<Codec>;
  const hn::ScalableTag<float> d;
  const std::size_t N = hn::Lanes(d);
  const float* q0 = q;
  const float* q1 = q + (QT > 1 ? dim : 0);
  const float* q2 = q + (QT > 2 ? 2 * dim : 0);
  const float* q3 = q + (QT > 3 ? 3 * dim : 0);
  for (std::size_t j = 0; j < n_keys; ++j) {
    const auto* row = reinterpret_cast<const typename io::elem*>(keys + j * key_stride);
    prefetch_ahead(keys, j, n_keys, key_stride, dim * sizeof(typename io::elem));
    auto a0 = hn::Zero(d), a1 = hn::Zero(d), a2 = hn::Zero(d), a3 = hn::Zero(d);
    auto b0 = hn::Zero(d), b1 = hn::Zero(d);
    std::size_t c = 0;
    if constexpr (QT <= 2) {
      for (; c + 2 * N <= dim; c += 2 * N) {
        const auto k0 = io::load(d, row + c);
        const auto k1 = io::load(d, row + c + N);
        a0 = hn::MulAdd(hn::LoadU(d, q0 + c), k0, a0);
        b0 = hn::MulAdd(hn::LoadU(d, q0 + c + N), k1, b0);
        if constexpr (QT > 1) {
          a1 = hn::MulAdd(hn::LoadU(d, q1 + c), k0, a1);
          b1 = hn::MulAdd(hn::LoadU(d, q1 + c + N), k1, b1);
        }
      }
    }
    for (; c + N <= dim; c += N) {
      const auto k0 = io::load(d, row + c);
      a0 = hn::MulAdd(hn::LoadU(d, q0 + c), k0, a0);
      if constexpr (QT > 1) a1 = hn::MulAdd(hn::LoadU(d, q1 + c), k0, a1);
      if constexpr (QT > 2) a2 = hn::MulAdd(hn::LoadU(d, q2 + c), k0, a2);
      if constexpr (QT > 3) a3 = hn::MulAdd(hn::LoadU(d, q3 + c), k0, a3);
    }
    store_scores<QT>(d, hn::Add(a0, b0), hn::Add(a1, b1), a2, a3, scores, score_stride, j);
    for (; c < dim; ++c) {  // tail: dim % Lanes values
      const float k = io::scalar(row[c]);
      scores[j] += q0[c] * k;
      if constexpr (QT > 1) scores[score_stride + j] += q1[c] * k;
      if constexpr (QT > 2) scores[2 * score_stride + j] += q2[c] * k;
      if constexpr (QT > 3) scores[3 * score_stride + j] += q3[c] * k;
    }
  }
}

// Splits n_q queries into tiles of 4, then one of 3, 2 or 1 (GQA: n_q is the group size,
// usually <= 8; a group of 3 is one pass over the keys, not 2 + 1).
template <class Tile> HWY_INLINE void for_query_tiles(std::size_t n_q, Tile&& tile) {
  std::size_t i = 0;
  for (; i + 4 <= n_q; i += 4) tile(i, std::integral_constant<std::size_t, 4>{});
  if (n_q - i == 3) return tile(i, std::integral_constant<std::size_t, 3>{});
  for (; i + 2 <= n_q; i += 2) tile(i, std::integral_constant<std::size_t, 2>{});
  for (; i < n_q; ++i) tile(i, std::integral_constant<std::size_t, 1>{});
}

template <class Codec>
HWY_INLINE void float_dot(const float* q, std::size_t n_q, std::size_t dim, const void* keys,
                          std::size_t key_stride, std::size_t n_keys, float* scores,
                          std::size_t score_stride) {
  const char* k = static_cast<const char*>(keys);
  for_query_tiles(n_q, [&](std::size_t i, auto qt) {
    float_dot_tile<decltype(qt)::value, Codec>(q + i * dim, dim, k, key_stride, n_keys,
                                               scores + i * score_stride, score_stride);
  });
}

// out_i += w_ij * v_j for two value rows at a time: each out chunk is loaded and stored once
// per two rows, each value chunk is converted once for all queries.
template <class Codec>
HWY_INLINE void float_axpy(const float* w, std::size_t n_q, std::size_t w_stride,
                           const void* values, std::size_t value_stride, std::size_t n_values,
                           std::size_t dim, float* out) {
  using io = float_io<Codec>;
  const hn::ScalableTag<float> d;
  const std::size_t N = hn::Lanes(d);
  const char* base = static_cast<const char*>(values);
  std::size_t j = 0;
  for (; j + 2 <= n_values; j += 2) {
    const auto* r0 = reinterpret_cast<const typename io::elem*>(base + j * value_stride);
    const auto* r1 = reinterpret_cast<const typename io::elem*>(base + (j + 1) * value_stride);
    prefetch_ahead(base, j, n_values, value_stride, dim * sizeof(typename io::elem));
    prefetch_ahead(base, j + 1, n_values, value_stride, dim * sizeof(typename io::elem));
    std::size_t c = 0;
    for (; c + N <= dim; c += N) {
      const auto v0 = io::load(d, r0 + c);
      const auto v1 = io::load(d, r1 + c);
      for (std::size_t i = 0; i < n_q; ++i) {
        float* o = out + i * dim + c;
        auto acc = hn::LoadU(d, o);
        acc = hn::MulAdd(hn::Set(d, w[i * w_stride + j]), v0, acc);
        acc = hn::MulAdd(hn::Set(d, w[i * w_stride + j + 1]), v1, acc);
        hn::StoreU(acc, d, o);
      }
    }
    for (; c < dim; ++c) {
      const float v0 = io::scalar(r0[c]), v1 = io::scalar(r1[c]);
      for (std::size_t i = 0; i < n_q; ++i) {
        out[i * dim + c] += w[i * w_stride + j] * v0;
        out[i * dim + c] += w[i * w_stride + j + 1] * v1;
      }
    }
  }
  for (; j < n_values; ++j) {
    const auto* r0 = reinterpret_cast<const typename io::elem*>(base + j * value_stride);
    std::size_t c = 0;
    for (; c + N <= dim; c += N) {
      const auto v0 = io::load(d, r0 + c);
      for (std::size_t i = 0; i < n_q; ++i) {
        float* o = out + i * dim + c;
        hn::StoreU(hn::MulAdd(hn::Set(d, w[i * w_stride + j]), v0, hn::LoadU(d, o)), d, o);
      }
    }
    for (; c < dim; ++c) {
      const float v0 = io::scalar(r0[c]);
      for (std::size_t i = 0; i < n_q; ++i) out[i * dim + c] += w[i * w_stride + j] * v0;
    }
  }
}

#if HWY_TARGET != HWY_SCALAR
// ============================ int8 building blocks ============================================
// The widest int8 vector the dot kernels use: 64 bytes on AVX3, else up to 32 (CappedTag
// gives 16 on SSE4/SSSE3/NEON).
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
inline constexpr std::size_t kMaxBytes = 64;
#elif HWY_HAVE_SCALABLE
// Scalable SVE/SVE2: the kernels size their planes with MaxLanes, which must equal the lanes
// the hardware really has; 16 bytes is SVE's minimum vector length, so it always does (a cap
// of 32 broke turbo dot/axpy on 128-bit SVE: caught under qemu with sve-default-vector-length=16).
inline constexpr std::size_t kMaxBytes = 16;
#else
inline constexpr std::size_t kMaxBytes = 32;
#endif

// fp16 scale -> f32 (exact): one vcvtph2ps where F16C exists.
HWY_INLINE float scale_f32(std::uint16_t h) {
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
  return _cvtsh_ss(h);
#else
  return f16_to_f32(h);
#endif
}

// f32 -> fp16 scale, round to nearest even (finite inputs): one vcvtps2ph where F16C exists.
HWY_INLINE std::uint16_t scale_f16(float v) {
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
  return std::uint16_t(_cvtss_sh(v, 0));
#else
  return f32_to_f16(v);
#endif
}

#if HWY_ARCH_X86 && HWY_TARGET <= HWY_SSSE3
HWY_INLINE __m128i maddubs(__m128i u, __m128i s) { return _mm_maddubs_epi16(u, s); }
HWY_INLINE __m128i madd1(__m128i p) { return _mm_madd_epi16(p, _mm_set1_epi16(1)); }
HWY_INLINE __m128i sign8(__m128i a, __m128i b) { return _mm_sign_epi8(a, b); }
#if HWY_TARGET <= HWY_AVX2
HWY_INLINE __m256i maddubs(__m256i u, __m256i s) { return _mm256_maddubs_epi16(u, s); }
HWY_INLINE __m256i madd1(__m256i p) { return _mm256_madd_epi16(p, _mm256_set1_epi16(1)); }
HWY_INLINE __m256i sign8(__m256i a, __m256i b) { return _mm256_sign_epi8(a, b); }
#endif
#if HWY_TARGET <= HWY_AVX3
HWY_INLINE __m512i maddubs(__m512i u, __m512i s) { return _mm512_maddubs_epi16(u, s); }
HWY_INLINE __m512i madd1(__m512i p) { return _mm512_madd_epi16(p, _mm512_set1_epi16(1)); }
#endif
#endif

// Generic (non-x86) widening multiply-add of int8 lanes into int32 lanes.
template <class D8, class V16>
HWY_INLINE hn::Vec<hn::Repartition<std::int32_t, D8>> widen_madd(D8, V16 alo, V16 ahi, V16 blo,
                                                                 V16 bhi) {
  const hn::Repartition<std::int32_t, D8> d32;
  auto s1 = hn::Zero(d32);
  auto s0 = hn::ReorderWidenMulAccumulate(d32, alo, blo, hn::Zero(d32), s1);
  s0 = hn::ReorderWidenMulAccumulate(d32, ahi, bhi, s0, s1);
  return hn::Add(s0, s1);
}

// sum of u[i] * q[i] (u unsigned <= 127, q signed): pmaddubsw + pmaddwd, no saturation.
template <class D8>
HWY_INLINE hn::Vec<hn::Repartition<std::int32_t, D8>> dot_u8i8(D8 d8,
                                                               hn::Vec<hn::RebindToUnsigned<D8>> u,
                                                               hn::Vec<D8> q) {
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_SSSE3
  (void)d8;
  return hn::Vec<hn::Repartition<std::int32_t, D8>>{madd1(maddubs(u.raw, q.raw))};
#else
  const hn::RebindToUnsigned<D8> du;
  const hn::Half<D8> dh;
  const hn::Half<decltype(du)> duh;
  const hn::Rebind<std::int16_t, decltype(dh)> d16h;
  return widen_madd(
      d8, hn::PromoteTo(d16h, hn::LowerHalf(duh, u)), hn::PromoteTo(d16h, hn::UpperHalf(duh, u)),
      hn::PromoteTo(d16h, hn::LowerHalf(dh, q)), hn::PromoteTo(d16h, hn::UpperHalf(dh, q)));
#endif
}

// sum of k[i] * q[i], both signed with |k|, |q| <= 127 (at most 32 lanes on x86).
template <class D8>
HWY_INLINE hn::Vec<hn::Repartition<std::int32_t, D8>> dot_i8i8(D8 d8, hn::Vec<D8> k,
                                                               hn::Vec<D8> q) {
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_SSSE3
  // pmaddubsw needs one unsigned operand: |k| and q with k's sign (ggml's trick).
  (void)d8;
  return hn::Vec<hn::Repartition<std::int32_t, D8>>{
      madd1(maddubs(hn::Abs(k).raw, sign8(q.raw, k.raw)))};
#else
  const hn::Half<D8> dh;
  const hn::Rebind<std::int16_t, decltype(dh)> d16h;
  return widen_madd(
      d8, hn::PromoteTo(d16h, hn::LowerHalf(dh, k)), hn::PromoteTo(d16h, hn::UpperHalf(dh, k)),
      hn::PromoteTo(d16h, hn::LowerHalf(dh, q)), hn::PromoteTo(d16h, hn::UpperHalf(dh, q)));
#endif
}

// ============================ int8 dot: q8_0 / q4_0 / turbo ===================================
// Key readers: block(state, key block, f) calls f(k, offset) for each run of Lanes(D) int8
// key values starting at element `offset` of the block and returns the block's factor dk.
// product(k, q) is the int32 lane sums of k * q. Readers with kOffset != 0 hand out unsigned
// values u = k + kOffset; the kernel subtracts kOffset * sum(q) (computed once per call).
template <class Codec> struct i8_reader;

// q8_0: keys widened to int16 (vpmovsxbw), queries stored as int16 once per call, one
// pmaddwd per 32 (AVX3) or 16 values per query: exact, no saturation.
template <> struct i8_reader<q8_0> {
  using D16 = hn::CappedTag<std::int16_t, 32>;
  using D = hn::Repartition<std::int8_t, D16>;  // only for the D32/DF derived from it
  using query_t = std::int16_t;
  static constexpr int kOffset = 0;
  struct state {};
  template <class F> static HWY_INLINE float block(const state&, const q8_0::block& b, F&& f) {
    const D16 d16;
    const hn::Rebind<std::int8_t, D16> d8;
    for (std::size_t o = 0; o < 32; o += hn::Lanes(d16))
      f(hn::PromoteTo(d16, hn::LoadU(d8, b.qs + o)), o);
    return scale_f32(b.d);
  }
  static HWY_INLINE auto product(hn::Vec<D16> k, const query_t* q) {
    const hn::Repartition<std::int32_t, D16> d32;
    auto s1 = hn::Zero(d32);
    const auto s0 = hn::ReorderWidenMulAccumulate(d32, k, hn::LoadU(D16(), q), hn::Zero(d32), s1);
    return hn::Add(s0, s1);
  }
};

template <> struct i8_reader<q4_0> {
  using D = hn::CappedTag<std::int8_t, 32>;
  using DU = hn::RebindToUnsigned<D>;
  static constexpr int kOffset = 8;  // the stored nibble is k + 8
  struct state {};
  template <class F> static HWY_INLINE float block(const state&, const q4_0::block& b, F&& f) {
    const hn::Full128<std::uint8_t> d16;
    const auto v = hn::LoadU(d16, b.qs);
    const auto lo = hn::And(v, hn::Set(d16, 0x0F));
    const auto hi = hn::ShiftRight<4>(v);
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
    f(hn::Combine(DU(), hi, lo), 0);
#else
    f(lo, 0);
    f(hi, 16);
#endif
    return scale_f32(b.d);
  }
  using query_t = std::int8_t;
  static HWY_INLINE auto product(hn::Vec<DU> u, const query_t* q) {
    return dot_u8i8(D(), u, hn::LoadU(D(), q));
  }
};

// turbo index planes: for_each(state, block, f) calls f(ix, offset) with a vector ix of
// Lanes(DU) uint8 codebook indices of elements offset .. offset + Lanes(DU) - 1 of the group.
// Needs plane bytes >= Lanes(DU).
//
// B = 3 (docs/formats.md): bit 2 of element e sits in high byte e % E, bit e / E (E = G / 8).
// Lane l of low plane k holds element k * 2E + l: its high bit is bit 2k + l / E of byte l % E.
// So per segment one vector h with lane l = (byte l % E) >> (l / E) (a load, and for a segment
// as wide as the plane the high bytes twice, the upper copy shifted by one) carries the high
// bits of all four planes at bits 0, 2, 4, 6; plane k shifts bit 2k to bit 2 and masks it.
// (16-bit shifts: the bits they carry across bytes are masked off.)
template <class Codec, class DU> struct turbo_planes {
  using traits = turbo_traits<Codec>;
  static constexpr int B = traits::bits;
  static constexpr std::size_t kLanes = hn::MaxLanes(DU());
  static constexpr std::size_t kPlane = std::size_t(traits::plane_bytes);
  static constexpr std::size_t kHigh = std::size_t(traits::high_bytes);
  static constexpr bool ok = kPlane >= kLanes;
  static constexpr std::size_t kSegs = ok ? kPlane / kLanes : 1;
  struct state {};
  template <int K, class V>
  static HWY_INLINE V bits_of_plane(V v, int mask) {  // (v >> 2K) & mask, per byte
    const DU du;
    const hn::Repartition<std::uint16_t, DU> d16;
    if constexpr (K == 0)
      return hn::And(v, hn::Set(du, std::uint8_t(mask)));
    else
      return hn::And(hn::BitCast(du, hn::ShiftRight<2 * K>(hn::BitCast(d16, v))),
                     hn::Set(du, std::uint8_t(mask)));
  }
  template <int K, class V>
  static HWY_INLINE V high_bit(V h) {  // bit 2K of h moved to bit 2, per byte
    const DU du;
    const hn::Repartition<std::uint16_t, DU> d16;
    const auto w = hn::BitCast(d16, h);
    V r;
    if constexpr (K == 0)
      r = hn::BitCast(du, hn::ShiftLeft<2>(w));
    else if constexpr (K == 1)
      r = h;
    else
      r = hn::BitCast(du, hn::ShiftRight<2 * K - 2>(w));
    return hn::And(r, hn::Set(du, 4));
  }
  // Segment s's high-bit vector (see above); never reads past the G/8 high bytes.
  static HWY_INLINE hn::Vec<DU> load_high(const std::uint8_t* p, std::size_t s) {
    const DU du;
    const hn::Repartition<std::uint16_t, DU> d16;
    if constexpr (kLanes == 2 * kHigh) {
      const hn::Half<DU> dh;
      const hn::Repartition<std::uint16_t, hn::Half<DU>> dh16;
      const auto lo = hn::LoadU(dh, p);
      const auto hi = hn::BitCast(dh, hn::ShiftRight<1>(hn::BitCast(dh16, lo)));
      return hn::Combine(du, hi, lo);
    } else {
      static_assert(kLanes <= kHigh, "turbo3 planes: segment wider than the plane");
      const auto h = hn::LoadU(du, p + (s * kLanes) % kHigh);
      if ((s * kLanes) / kHigh == 0) return h;
      return hn::BitCast(du, hn::ShiftRight<1>(hn::BitCast(d16, h)));
    }
  }
  template <class F> static HWY_INLINE void for_each(const state&, const std::uint8_t* idx, F&& f) {
    const DU du;
    for (std::size_t s = 0; s < kSegs; ++s) {
      const auto v = hn::LoadU(du, idx + s * kLanes);
      if constexpr (B == 4) {
        f(hn::And(v, hn::Set(du, 0x0F)), s * kLanes);
        f(hn::ShiftRight<4>(v), s * kLanes + kPlane);
      } else if constexpr (B == 2) {
        f(bits_of_plane<0>(v, 3), s * kLanes);
        f(bits_of_plane<1>(v, 3), kPlane + s * kLanes);
        f(bits_of_plane<2>(v, 3), 2 * kPlane + s * kLanes);
        f(bits_of_plane<3>(v, 3), 3 * kPlane + s * kLanes);
      } else {
        const auto h = load_high(idx + traits::high_offset, s);
        f(hn::Or(bits_of_plane<0>(v, 3), high_bit<0>(h)), s * kLanes);
        f(hn::Or(bits_of_plane<1>(v, 3), high_bit<1>(h)), kPlane + s * kLanes);
        f(hn::Or(bits_of_plane<2>(v, 3), high_bit<2>(h)), 2 * kPlane + s * kLanes);
        f(hn::Or(bits_of_plane<3>(v, 3), high_bit<3>(h)), 3 * kPlane + s * kLanes);
      }
    }
  }
};

template <int B, int G, class CB> struct i8_reader<turbo<B, G, CB>> {
  using codec = turbo<B, G, CB>;
  using traits = turbo_traits<codec>;
  static constexpr std::size_t kBytes =
      kMaxBytes < std::size_t(traits::plane_bytes) ? kMaxBytes : std::size_t(traits::plane_bytes);
  using D = hn::CappedTag<std::int8_t, kBytes>;
  using DU = hn::RebindToUnsigned<D>;
  using planes = turbo_planes<codec, DU>;
  using state = typename planes::state;
  static constexpr int kOffset = traits::codebook_offset;
  template <class F>
  static HWY_INLINE float block(const state& st, const typename codec::block& b, F&& f) {
    // All 16 table bytes in every 128-bit block, also when DU is narrower than 128 bits.
    using DT = std::conditional_t<(hn::MaxLanes(DU()) < 16), hn::Full128<std::uint8_t>, DU>;
    HWY_ALIGN static constexpr auto kCb = traits::codebook_u8();
    const auto table = hn::LoadDup128(DT(), kCb.data());
    planes::for_each(st, b.idx,
                     [&](hn::Vec<DU> ix, std::size_t o) { f(hn::TableLookupBytes(table, ix), o); });
    return scale_f32(b.scale) * traits::unit;
  }
  using query_t = std::int8_t;
  static HWY_INLINE auto product(hn::Vec<DU> u, const query_t* q) {
    return dot_u8i8(D(), u, hn::LoadU(D(), q));
  }
};

// vq2: the G / 8 codes of a group to G int8 values k (+ offset), in element order. Per code
// two table reads (the pattern's base vector b, the flip mask of its 7 sign bits, both 8
// bytes); then per vector k = (b ^ m) - m negates the flipped bytes.
template <int G, int kOff = 0>
HWY_INLINE void vq2_unpack(const typename vq2<G>::block& b, std::int8_t* k) {
  HWY_ALIGN std::uint64_t w[G / 8], m[G / 8];
  for (int c = 0; c < G / 8; ++c) {
    const unsigned code = b.code[c];
    std::memcpy(&w[c], d8::book.base[code & 511u].data(), 8);
    m[c] = d8::book.flip[code >> 9];
  }
  const hn::CappedTag<std::int8_t, std::size_t(G)> d8t;
  const auto* wb = reinterpret_cast<const std::int8_t*>(w);
  const auto* mb = reinterpret_cast<const std::int8_t*>(m);
  for (std::size_t o = 0; o < std::size_t(G); o += hn::Lanes(d8t)) {
    const auto mm = hn::Load(d8t, mb + o);
    auto v = hn::Sub(hn::Xor(hn::Load(d8t, wb + o), mm), mm);
    if constexpr (kOff != 0) v = hn::Add(v, hn::Set(d8t, std::int8_t(kOff)));
    hn::Store(v, d8t, k + o);
  }
}

// vq2 keys: the unpacked odd integers k + 8 (1..15, unsigned for pmaddubsw), factor scale / 2.
template <int G> struct i8_reader<vq2<G>> {
  using codec = vq2<G>;
  static constexpr std::size_t kBytes = kMaxBytes < std::size_t(G) ? kMaxBytes : std::size_t(G);
  using D = hn::CappedTag<std::int8_t, kBytes>;
  using DU = hn::RebindToUnsigned<D>;
  static constexpr int kOffset = 8;
  struct state {};
  template <class F>
  static HWY_INLINE float block(const state&, const typename codec::block& b, F&& f) {
    HWY_ALIGN std::int8_t k[G];
    vq2_unpack<G, kOffset>(b, k);
    const DU du;
    for (std::size_t o = 0; o < std::size_t(G); o += hn::Lanes(du))
      f(hn::Load(du, reinterpret_cast<const std::uint8_t*>(k) + o), o);
    return 0.5f * scale_f32(b.scale);
  }
  using query_t = std::int8_t;
  static HWY_INLINE auto product(hn::Vec<DU> u, const query_t* q) {
    return dot_u8i8(D(), u, hn::LoadU(D(), q));
  }
};

// Scores of QT queries (already quantized) against n_keys keys. corr[(i * nb + b) * L32]
// holds, in lane 0, -kOffset * sum(q) of query i's block b (the other lanes are zero).
template <std::size_t QT, class Codec>
HWY_INLINE void i8_dot_tile(const quantized_queries& qq, const std::int32_t* corr, std::size_t i0,
                            std::size_t dim, const char* keys, std::size_t key_stride,
                            std::size_t n_keys, float* scores, std::size_t score_stride,
                            const typename i8_reader<Codec>::state& st) {
  using reader = i8_reader<Codec>;
  using D32 = hn::Repartition<std::int32_t, typename reader::D>;
  using DF = hn::Repartition<float, D32>;
  constexpr std::size_t V = Codec::block_values;
  constexpr std::size_t L32 = hn::MaxLanes(D32());
  const std::size_t nb = dim / V;
  const D32 d32;
  const DF df;
  const auto* q0 = qq.template data<typename reader::query_t>() + i0 * dim;
  const float* dq0 = qq.d.data() + i0 * nb;
  const std::int32_t* c0 = corr + i0 * nb * L32;
  const auto init = [&](std::size_t i, std::size_t b) {
    if constexpr (reader::kOffset == 0)
      return hn::Zero(d32);
    else
      return hn::Load(d32, c0 + (i * nb + b) * L32);
  };
  for (std::size_t j = 0; j < n_keys; ++j) {
    const auto* row = reinterpret_cast<const typename Codec::block*>(keys + j * key_stride);
    prefetch_ahead(keys, j, n_keys, key_stride, nb * sizeof(typename Codec::block));
    auto f0 = hn::Zero(df), f1 = hn::Zero(df), f2 = hn::Zero(df), f3 = hn::Zero(df);
    for (std::size_t b = 0; b < nb; ++b) {
      auto s0 = init(0, b);
      [[maybe_unused]] auto s1 = QT > 1 ? init(1, b) : s0;
      [[maybe_unused]] auto s2 = QT > 2 ? init(2, b) : s0;
      [[maybe_unused]] auto s3 = QT > 3 ? init(3, b) : s0;
      const auto* qb = q0 + b * V;
      const float dk = reader::block(st, row[b], [&](auto k, std::size_t o) {
        s0 = hn::Add(s0, reader::product(k, qb + o));
        if constexpr (QT > 1) s1 = hn::Add(s1, reader::product(k, qb + dim + o));
        if constexpr (QT > 2) s2 = hn::Add(s2, reader::product(k, qb + 2 * dim + o));
        if constexpr (QT > 3) s3 = hn::Add(s3, reader::product(k, qb + 3 * dim + o));
      });
      // Factor dk * dq as in the reference (one f32 rounding), then one FMA per block.
      const auto dkv = hn::Set(df, dk);
      f0 = hn::MulAdd(hn::ConvertTo(df, s0), hn::Mul(dkv, hn::Set(df, dq0[b])), f0);
      if constexpr (QT > 1)
        f1 = hn::MulAdd(hn::ConvertTo(df, s1), hn::Mul(dkv, hn::Set(df, dq0[nb + b])), f1);
      if constexpr (QT > 2)
        f2 = hn::MulAdd(hn::ConvertTo(df, s2), hn::Mul(dkv, hn::Set(df, dq0[2 * nb + b])), f2);
      if constexpr (QT > 3)
        f3 = hn::MulAdd(hn::ConvertTo(df, s3), hn::Mul(dkv, hn::Set(df, dq0[3 * nb + b])), f3);
    }
    store_scores<QT>(df, f0, f1, f2, f3, scores, score_stride, j);
  }
}

template <class Codec>
HWY_INLINE void i8_dot(const float* q, std::size_t n_q, std::size_t dim, const void* keys,
                       std::size_t key_stride, std::size_t n_keys, float* scores,
                       std::size_t score_stride) {
  using reader = i8_reader<Codec>;
  constexpr std::size_t V = Codec::block_values;
  constexpr std::size_t L32 = hn::MaxLanes(hn::Repartition<std::int32_t, typename reader::D>());
  const std::size_t nb = dim / V;
  quantized_queries qq(q, n_q, dim, V);
  if constexpr (std::is_same_v<typename reader::query_t, std::int16_t>) qq.widen();
  hwy::AlignedFreeUniquePtr<std::int32_t[]> corr;
  if constexpr (reader::kOffset != 0) {
    corr = hwy::AllocateAligned<std::int32_t>(n_q * nb * L32);
    for (std::size_t i = 0; i < n_q; ++i)
      for (std::size_t b = 0; b < nb; ++b) {
        std::int32_t sum = 0;
        for (std::size_t e = 0; e < V; ++e) sum += qq.q[i * dim + b * V + e];
        std::int32_t* c = &corr[(i * nb + b) * L32];
        c[0] = -reader::kOffset * sum;
        for (std::size_t l = 1; l < L32; ++l) c[l] = 0;
      }
  }
  const typename reader::state st;
  const char* k = static_cast<const char*>(keys);
  for_query_tiles(n_q, [&](std::size_t i, auto qt) {
    i8_dot_tile<decltype(qt)::value, Codec>(qq, corr.get(), i, dim, k, key_stride, n_keys,
                                            scores + i * score_stride, score_stride, st);
  });
}

// ============================ decode of q8_0 / q4_0 / turbo blocks ============================
template <class Codec> struct block_decoder;

template <> struct block_decoder<q8_0> {
  struct state {};
  static HWY_INLINE void block(const state&, const q8_0::block& b, float* x) {
    const hn::CappedTag<float, 8> df;
    const hn::Rebind<std::int32_t, decltype(df)> di;
    const hn::Rebind<std::int8_t, decltype(df)> d8;
    const auto scale = hn::Set(df, f16_to_f32(b.d));
    for (std::size_t o = 0; o < 32; o += hn::Lanes(df))
      hn::StoreU(hn::Mul(scale, hn::ConvertTo(df, hn::PromoteTo(di, hn::LoadU(d8, b.qs + o)))), df,
                 x + o);
  }
};

template <> struct block_decoder<q4_0> {
  struct state {};
  static HWY_INLINE void block(const state&, const q4_0::block& b, float* x) {
    const hn::Full128<std::uint8_t> du;
    const hn::Full128<std::int8_t> d8;
    const hn::Full128<float> df;
    const hn::Rebind<std::int32_t, decltype(df)> di;
    const hn::Rebind<std::int8_t, decltype(df)> d8q;
    const auto v = hn::LoadU(du, b.qs);
    const auto eight = hn::Set(d8, 8);
    HWY_ALIGN std::int8_t k[32];
    hn::Store(hn::Sub(hn::BitCast(d8, hn::And(v, hn::Set(du, 0x0F))), eight), d8, k);
    hn::Store(hn::Sub(hn::BitCast(d8, hn::ShiftRight<4>(v)), eight), d8, k + 16);
    const auto scale = hn::Set(df, f16_to_f32(b.d));
    for (std::size_t o = 0; o < 32; o += 4)
      hn::StoreU(hn::Mul(scale, hn::ConvertTo(df, hn::PromoteTo(di, hn::LoadU(d8q, k + o)))), df,
                 x + o);
  }
};

// turbo: the f32 codebook split into four byte tables; TableLookupBytes (pshufb/tbl) on the
// packed indices gives the four bytes of each value, two zips put them together. Exact:
// value = scale * codebook[index], the same float multiply as the reference.
template <int B, int G, class CB> struct block_decoder<turbo<B, G, CB>> {
  using codec = turbo<B, G, CB>;
  using traits = turbo_traits<codec>;
  using DU = hn::Full128<std::uint8_t>;
  using planes = turbo_planes<codec, DU>;
  using state = typename planes::state;
  struct byte_tables {
    std::uint8_t t[4][16];
  };
  static constexpr byte_tables tables() {
    byte_tables bt{};
    const auto cb = traits::codebook();
    for (int i = 0; i < traits::levels; ++i) {
      const auto bits = std::bit_cast<std::uint32_t>(cb[std::size_t(i)]);
      for (int k = 0; k < 4; ++k) bt.t[k][i] = std::uint8_t(bits >> (8 * k));
    }
    return bt;
  }
  static HWY_INLINE void block(const state& st, const typename codec::block& b, float* x) {
    const DU du;
    const hn::Full128<float> df;
    const hn::Full128<std::uint16_t> du16;
    const hn::Full128<std::uint32_t> du32;
    HWY_ALIGN static constexpr byte_tables kT = tables();
    const auto t0 = hn::Load(du, kT.t[0]), t1 = hn::Load(du, kT.t[1]);
    const auto t2 = hn::Load(du, kT.t[2]), t3 = hn::Load(du, kT.t[3]);
    const auto scale = hn::Set(df, f16_to_f32(b.scale));
    planes::for_each(st, b.idx, [&](hn::Vec<DU> ix, std::size_t o) {
      const auto p0 = hn::TableLookupBytes(t0, ix), p1 = hn::TableLookupBytes(t1, ix);
      const auto p2 = hn::TableLookupBytes(t2, ix), p3 = hn::TableLookupBytes(t3, ix);
      const auto lo01 = hn::ZipLower(du16, p0, p1), hi01 = hn::ZipUpper(du16, p0, p1);
      const auto lo23 = hn::ZipLower(du16, p2, p3), hi23 = hn::ZipUpper(du16, p2, p3);
      float* out = x + o;
      hn::StoreU(hn::Mul(scale, hn::BitCast(df, hn::ZipLower(du32, lo01, lo23))), df, out);
      hn::StoreU(hn::Mul(scale, hn::BitCast(df, hn::ZipUpper(du32, lo01, lo23))), df, out + 4);
      hn::StoreU(hn::Mul(scale, hn::BitCast(df, hn::ZipLower(du32, hi01, hi23))), df, out + 8);
      hn::StoreU(hn::Mul(scale, hn::BitCast(df, hn::ZipUpper(du32, hi01, hi23))), df, out + 12);
    });
  }
};

template <int G> struct block_decoder<vq2<G>> {
  struct state {};
  static HWY_INLINE void block(const state&, const typename vq2<G>::block& b, float* x) {
    const hn::CappedTag<float, 8> df;
    const hn::Rebind<std::int32_t, decltype(df)> di;
    const hn::Rebind<std::int8_t, decltype(df)> d8q;
    HWY_ALIGN std::int8_t k[G];
    vq2_unpack<G>(b, k);
    const auto h = hn::Set(df, 0.5f * f16_to_f32(b.scale));  // exact: scale * (k / 2)
    for (std::size_t o = 0; o < std::size_t(G); o += hn::Lanes(df))
      hn::StoreU(hn::Mul(h, hn::ConvertTo(df, hn::PromoteTo(di, hn::LoadU(d8q, k + o)))), df,
                 x + o);
  }
};

// ============================ encode of vq2 groups ==========================================
// The reference's encoder (reference::detail::encode_vq2_block, d8::encode_chunk_with) with
// the search outside the ball in SIMD lanes: the same int32 costs as d8::detail::best_pattern,
// one pattern per lane, and its choice (the lowest pattern of least cost): the reference's bytes.
// Not inlined (inline for the ODR only): it is called from d8::encode_chunk_with, which has no
// target attributes.
inline HWY_NOINLINE int vq2_best_pattern(const std::int32_t* u, unsigned neg) {
  const hn::CappedTag<std::int32_t, 16> d;
  const hn::Rebind<std::int16_t, decltype(d)> d16;
  const hn::Rebind<std::uint8_t, decltype(d)> d8;
  const auto nv = hn::Set(d, std::int32_t(strata::d8::parity8(neg)));
  const auto one = hn::Set(d, 1);
  const auto big = hn::Set(d, std::numeric_limits<std::int32_t>::max());
  const std::size_t N = hn::Lanes(d);
  auto least = big, at = hn::Zero(d);  // per lane: least cost so far and its (first) pattern
  auto idx = hn::Iota(d, 0);
  for (std::size_t p = 0; p < std::size_t(d8::patterns); p += N) {
    auto s = hn::Zero(d), m = big;
    for (std::size_t i = 0; i < 8; ++i) {
      const auto a = hn::PromoteTo(d, hn::LoadU(d16, d8::book.abs_by_coord[i].data() + p));
      const auto x = hn::Mul(a, hn::Set(d, u[i]));
      s = hn::Add(s, x);
      m = hn::Min(m, x);
    }
    const auto par = hn::PromoteTo(d, hn::LoadU(d8, d8::book.parity.data() + p));
    const auto flip =
        hn::IfThenElseZero(hn::Eq(hn::And(hn::Xor(par, nv), one), one), hn::Add(m, m));
    const auto n2 = hn::ShiftLeft<6>(hn::LoadU(d, d8::book.norm2.data() + p));
    const auto cost = hn::Sub(hn::Add(n2, flip), s);
    const auto better = hn::Lt(cost, least);
    least = hn::IfThenElse(better, cost, least);
    at = hn::IfThenElse(better, idx, at);
    idx = hn::Add(idx, hn::Set(d, std::int32_t(N)));
  }
  // Across lanes: the least cost, then the lowest pattern having it.
  HWY_ALIGN std::int32_t lc[16], li[16];
  hn::Store(least, d, lc);
  hn::Store(at, d, li);
  int best = li[0];
  std::int32_t c = lc[0];
  for (std::size_t l = 1; l < N; ++l)
    if (lc[l] < c || (lc[l] == c && li[l] < best)) c = lc[l], best = li[l];
  return best;
}

template <class Codec> HWY_INLINE void vq2_encode(const float* x, std::size_t n, void* out) {
  constexpr int G = Codec::group;
  auto* dst = static_cast<unsigned char*>(out);
  for (std::size_t i = 0; i < n / std::size_t(G); ++i) {
    typename Codec::block b{};
    reference::detail::encode_vq2_block<G>(x + i * std::size_t(G), b, [](const float* v) {
      return d8::encode_chunk_with(v, vq2_best_pattern);
    });
    std::memcpy(dst + i * sizeof b, &b, sizeof b);
  }
}

// ============================ encode of q8_0 / q4_0 blocks ====================================
// Exactly the reference's arithmetic (strata/reference/block.hpp): clean (NaN -> 0,
// +-inf -> +-FLT_MAX), scale from the block's maximum (order-independent), element-wise
// rounding (nearbyint = round-half-even = NearestInt; floor(x * id + 8.5) for q4_0).
using DE = hn::CappedTag<float, 16>;  // lanes divide 32

template <class D> HWY_INLINE hn::Vec<D> clean_f(D d, hn::Vec<D> x) {
  const auto big = hn::Set(d, 3.40282347e38f);
  return hn::Min(hn::Max(hn::IfThenZeroElse(hn::IsNaN(x), x), hn::Neg(big)), big);
}

HWY_INLINE void encode_q8_0_block(const float* x, unsigned char* out) {
  const DE d;
  const std::size_t N = hn::Lanes(d);
  auto amax = hn::Zero(d);
  for (std::size_t i = 0; i < 32; i += N)
    amax = hn::Max(amax, hn::Abs(clean_f(d, hn::LoadU(d, x + i))));
  const float dm = std::min(hn::GetLane(hn::MaxOfLanes(d, amax)) / 127.0f, f16_max);
  const float id = dm != 0.0f ? 1.0f / dm : 0.0f;
  const std::uint16_t h = scale_f16(dm);
  std::memcpy(out, &h, 2);
  const hn::Rebind<std::int8_t, DE> d8;
  const auto lo = hn::Set(d, -127.0f), hi = hn::Set(d, 127.0f), vid = hn::Set(d, id);
  for (std::size_t i = 0; i < 32; i += N) {
    const auto v = hn::Min(hn::Max(hn::Mul(clean_f(d, hn::LoadU(d, x + i)), vid), lo), hi);
    hn::StoreU(hn::DemoteTo(d8, hn::NearestInt(v)), d8,
               reinterpret_cast<std::int8_t*>(out + 2 + i));
  }
}

HWY_INLINE void encode_q4_0_block(const float* x, unsigned char* out) {
  const DE d;
  const std::size_t N = hn::Lanes(d);
  HWY_ALIGN float c[32];
  auto amax = hn::Zero(d);
  for (std::size_t i = 0; i < 32; i += N) {
    const auto v = clean_f(d, hn::LoadU(d, x + i));
    hn::Store(v, d, c + i);
    amax = hn::Max(amax, hn::Abs(v));
  }
  // The first value of largest magnitude (0 when all are zero, as the reference).
  const float am = hn::GetLane(hn::MaxOfLanes(d, amax));
  float mx = 0.0f;
  if (am > 0.0f) {
    const auto vam = hn::Set(d, am);
    for (std::size_t i = 0; i < 32; i += N) {
      const intptr_t k = hn::FindFirstTrue(d, hn::Eq(hn::Abs(hn::Load(d, c + i)), vam));
      if (k >= 0) {
        mx = c[i + std::size_t(k)];
        break;
      }
    }
  }
  const float dm = std::clamp(mx / -8.0f, -f16_max, f16_max);
  const float id = dm != 0.0f ? 1.0f / dm : 0.0f;
  const std::uint16_t h = scale_f16(dm);
  std::memcpy(out, &h, 2);
  const hn::Rebind<std::int32_t, DE> di;
  const hn::Rebind<std::uint8_t, DE> du8;
  HWY_ALIGN std::uint8_t q[32];
  const auto zero = hn::Zero(d), fifteen = hn::Set(d, 15.0f), vid = hn::Set(d, id);
  const auto half8 = hn::Set(d, 8.5f);
  for (std::size_t i = 0; i < 32; i += N) {
    // x * id, then + 8.5: two roundings, as the reference (no FMA contraction there).
    const auto t = hn::Add(hn::Mul(hn::Load(d, c + i), vid), half8);
    const auto v = hn::Min(hn::Max(hn::Floor(t), zero), fifteen);
    hn::Store(hn::DemoteTo(du8, hn::ConvertTo(di, v)), du8, q + i);
  }
  const hn::Full128<std::uint8_t> d16;
  const auto packed = hn::Or(hn::Load(d16, q), hn::ShiftLeft<4>(hn::Load(d16, q + 16)));
  hn::StoreU(packed, d16, out + 2);
}

template <class Codec> HWY_INLINE void block_encode(const float* x, std::size_t n, void* out) {
  auto* o = static_cast<unsigned char*>(out);
  for (std::size_t b = 0; b < n / 32; ++b) {
    if constexpr (std::is_same_v<Codec, q8_0>)
      encode_q8_0_block(x + b * 32, o + b * q8_0::block_bytes);
    else
      encode_q4_0_block(x + b * 32, o + b * q4_0::block_bytes);
  }
}

// ============================ encode of turbo groups =========================================
// The reference's rule (strata/reference/block.hpp, norm_corrected): n = |x| in f64,
// v = x * float(sqrt(G) / n), index = number of thresholds below v, scale = n / |c| in f64.
// The f64 sums run in SIMD lanes (|x|^2) and per codebook entry (|c|^2 = sum of count * c^2)
// instead of element order: the same values up to f64 rounding (~1e-16 relative), which only
// changes the f32 inverse or the fp16 scale when a value lies within that distance of a
// rounding boundary (the tests compare bytes exactly).
template <class Codec> HWY_INLINE void turbo_encode(const float* x, std::size_t n, void* out) {
  using traits = turbo_traits<Codec>;
  using CB = typename Codec::codebook;
  constexpr int G = traits::group;
  const hn::ScalableTag<double> dd;
  const hn::Rebind<float, decltype(dd)> dfh;
  const DE df;
  const hn::Rebind<std::int32_t, DE> di;
  const hn::Rebind<std::uint8_t, DE> du8;
  auto* o = static_cast<unsigned char*>(out);
  for (std::size_t g = 0; g < n / G; ++g) {
    const float* xg = x + g * G;
    unsigned char* blk = o + g * Codec::block_bytes;
    auto acc = hn::Zero(dd);
    for (int i = 0; i < G; i += int(hn::Lanes(dd))) {
      const auto xd = hn::PromoteTo(dd, clean_f(dfh, hn::LoadU(dfh, xg + i)));
      acc = hn::Add(acc, hn::Mul(xd, xd));
    }
    const double ss = hn::GetLane(hn::SumOfLanes(dd, acc));
    if (ss == 0.0) {
      std::memset(blk, 0, Codec::block_bytes);
      continue;
    }
    const double norm = std::sqrt(ss);
    const auto inv = hn::Set(df, float(std::sqrt(double(G)) / norm));
    HWY_ALIGN std::uint8_t q[G];
    for (int i = 0; i < G; i += int(hn::Lanes(df))) {
      const auto v = hn::Mul(clean_f(df, hn::LoadU(df, xg + i)), inv);
      auto k = hn::Zero(di);
      for (float t : CB::thresholds)
        k = hn::Sub(k, hn::VecFromMask(di, hn::RebindMask(di, hn::Lt(hn::Set(df, t), v))));
      hn::Store(hn::DemoteTo(du8, k), du8, q + i);
    }
    int count[traits::levels] = {};
    for (int i = 0; i < G; ++i) ++count[q[i]];
    double cc = 0.0;
    for (int k = 0; k < traits::levels; ++k) {
      const double c = CB::centroids[std::size_t(k)];
      cc += double(count[k]) * (c * c);
    }
    const std::uint16_t h = f32_to_f16(float(std::min(norm / std::sqrt(cc), double(f16_max))));
    std::memcpy(blk, &h, 2);
    turbo_pack<traits::bits, G>(q, blk + 2);
  }
}

// ============================ axpy of q8_0 / q4_0 / turbo ====================================
// Value readers: visit(state, block, f) calls f(v, pos) with unscaled f32 vectors of the
// block's values at position pos of the block's accumulator layout, and returns the block's
// scale (folded into the weights). position(p) gives the element stored at position p.
// turbo's layout follows its byte-plane decode at full vector width: within a segment of L
// indices (L/16 128-bit blocks), f32 vector k holds, for block j, elements 16j + 4k .. + 3.
template <class Codec> struct f32_reader;

template <> struct f32_reader<q8_0> {
  using DF = hn::CappedTag<float, 16>;
  struct state {};
  static constexpr bool kNatural = true;
  template <class F> static HWY_INLINE float visit(const state&, const q8_0::block& b, F&& f) {
    const DF df;
    const hn::Rebind<std::int32_t, DF> di;
    const hn::Rebind<std::int8_t, DF> d8;
    for (std::size_t o = 0; o < 32; o += hn::Lanes(df))
      f(hn::ConvertTo(df, hn::PromoteTo(di, hn::LoadU(d8, b.qs + o))), o);
    return scale_f32(b.d);
  }
  static std::size_t position(std::size_t p) { return p; }
};

template <> struct f32_reader<q4_0> {
  using DF = hn::CappedTag<float, 16>;
  struct state {};
  static constexpr bool kNatural = true;
  template <class F> static HWY_INLINE float visit(const state&, const q4_0::block& b, F&& f) {
    const DF df;
    const hn::Rebind<std::int32_t, DF> di;
    const hn::Rebind<std::int8_t, DF> d8;
    const hn::Full128<std::uint8_t> du;
    const hn::Full128<std::int8_t> d16;
    const auto v = hn::LoadU(du, b.qs);
    const auto eight = hn::Set(d16, 8);
    HWY_ALIGN std::int8_t k[32];
    hn::Store(hn::Sub(hn::BitCast(d16, hn::And(v, hn::Set(du, 0x0F))), eight), d16, k);
    hn::Store(hn::Sub(hn::BitCast(d16, hn::ShiftRight<4>(v)), eight), d16, k + 16);
    for (std::size_t o = 0; o < 32; o += hn::Lanes(df))
      f(hn::ConvertTo(df, hn::PromoteTo(di, hn::Load(d8, k + o))), o);
    return scale_f32(b.d);
  }
  static std::size_t position(std::size_t p) { return p; }
};

template <int B, int G, class CB> struct f32_reader<turbo<B, G, CB>> {
  using codec = turbo<B, G, CB>;
  using traits = turbo_traits<codec>;
  static constexpr std::size_t kBytes =
      kMaxBytes < std::size_t(traits::plane_bytes) ? kMaxBytes : std::size_t(traits::plane_bytes);
  using DU = hn::CappedTag<std::uint8_t, kBytes>;  // >= 16 bytes (see kWide)
  using DF = hn::Repartition<float, DU>;
  using planes = turbo_planes<codec, DU>;
  using state = typename planes::state;
  static constexpr bool kWide = kBytes >= 16;
  static constexpr bool kNatural = hn::MaxLanes(DU()) == 16;
  template <class F>
  static HWY_INLINE float visit(const state& st, const typename codec::block& b, F&& f) {
    const DU du;
    const DF df;
    const hn::Repartition<std::uint16_t, DU> du16;
    const hn::Repartition<std::uint32_t, DU> du32;
    HWY_ALIGN static constexpr auto kT = block_decoder<codec>::tables();
    const auto t0 = hn::LoadDup128(du, kT.t[0]), t1 = hn::LoadDup128(du, kT.t[1]);
    const auto t2 = hn::LoadDup128(du, kT.t[2]), t3 = hn::LoadDup128(du, kT.t[3]);
    const std::size_t Lf = hn::Lanes(df);
    planes::for_each(st, b.idx, [&](hn::Vec<DU> ix, std::size_t o) {
      const auto p0 = hn::TableLookupBytes(t0, ix), p1 = hn::TableLookupBytes(t1, ix);
      const auto p2 = hn::TableLookupBytes(t2, ix), p3 = hn::TableLookupBytes(t3, ix);
      const auto lo01 = hn::ZipLower(du16, p0, p1), hi01 = hn::ZipUpper(du16, p0, p1);
      const auto lo23 = hn::ZipLower(du16, p2, p3), hi23 = hn::ZipUpper(du16, p2, p3);
      f(hn::BitCast(df, hn::ZipLower(du32, lo01, lo23)), o);
      f(hn::BitCast(df, hn::ZipUpper(du32, lo01, lo23)), o + Lf);
      f(hn::BitCast(df, hn::ZipLower(du32, hi01, hi23)), o + 2 * Lf);
      f(hn::BitCast(df, hn::ZipUpper(du32, hi01, hi23)), o + 3 * Lf);
    });
    return scale_f32(b.scale);
  }
  // Element of the group stored at position p.
  static std::size_t position(std::size_t p) {
    const std::size_t L = hn::MaxLanes(DU()), Lf = L / 4;
    const std::size_t seg = p - p % L, r = p % L, k = r / Lf, l = r % Lf;
    return seg + 16 * (l / 4) + 4 * k + l % 4;
  }
};

template <int G> struct f32_reader<vq2<G>> {
  using DF = hn::CappedTag<float, 16>;
  struct state {};
  static constexpr bool kNatural = true;
  template <class F>
  static HWY_INLINE float visit(const state&, const typename vq2<G>::block& b, F&& f) {
    const DF df;
    const hn::Rebind<std::int32_t, DF> di;
    const hn::Rebind<std::int8_t, DF> d8;
    HWY_ALIGN std::int8_t k[G];
    vq2_unpack<G>(b, k);
    for (std::size_t o = 0; o < std::size_t(G); o += hn::Lanes(df))
      f(hn::ConvertTo(df, hn::PromoteTo(di, hn::Load(d8, k + o))), o);
    return 0.5f * scale_f32(b.scale);
  }
  static std::size_t position(std::size_t p) { return p; }
};

template <class Codec> HWY_INLINE float block_scale(const typename Codec::block& blk) {
  if constexpr (std::is_same_v<Codec, q8_0> || std::is_same_v<Codec, q4_0>)
    return scale_f32(blk.d);
  else if constexpr (std::is_same_v<family_t<Codec>, vq_family>)
    return 0.5f * scale_f32(blk.scale);
  else
    return scale_f32(blk.scale);
}

// acc_i += sum_j w_ij * scale_j * value_j for QT (1, 2 or 4) queries: each value block is
// decoded once (to f32 vectors in registers). Two value rows at a time: row j + 1's block
// goes to buf (positions as in acc), then row j's block is visited and both are accumulated
// with one load/store of acc.
template <std::size_t QT, class Codec>
HWY_INLINE void fused_axpy_tile(const float* w, std::size_t w_stride, const char* base,
                                std::size_t value_stride, std::size_t n_values, std::size_t dim,
                                float* acc, const typename f32_reader<Codec>::state& st) {
  using reader = f32_reader<Codec>;
  using DF = typename reader::DF;
  using block = typename Codec::block;
  constexpr std::size_t V = Codec::block_values;
  const std::size_t nb = dim / V;
  const DF df;
  HWY_ALIGN float buf[V];
  const auto blocks = [&](std::size_t j) {
    return reinterpret_cast<const block*>(base + j * value_stride);
  };
  const auto wt = [&](std::size_t i, std::size_t j) { return i < QT ? w[i * w_stride + j] : 0.0f; };
  std::size_t j = 0;
  for (; j + 2 <= n_values; j += 2) {
    prefetch_ahead(base, j, n_values, value_stride, nb * sizeof(block));
    prefetch_ahead(base, j + 1, n_values, value_stride, nb * sizeof(block));
    for (std::size_t b = 0; b < nb; ++b) {
      float* a = acc + b * V;
      const block& b0 = blocks(j)[b];
      const block& b1 = blocks(j + 1)[b];
      const float s0 = block_scale<Codec>(b0), s1 = block_scale<Codec>(b1);
      const auto x0 = hn::Set(df, wt(0, j) * s0), y0 = hn::Set(df, wt(0, j + 1) * s1);
      const auto x1 = hn::Set(df, wt(1, j) * s0), y1 = hn::Set(df, wt(1, j + 1) * s1);
      const auto x2 = hn::Set(df, wt(2, j) * s0), y2 = hn::Set(df, wt(2, j + 1) * s1);
      const auto x3 = hn::Set(df, wt(3, j) * s0), y3 = hn::Set(df, wt(3, j + 1) * s1);
      reader::visit(st, b1, [&](hn::Vec<DF> v, std::size_t pos) { hn::Store(v, df, buf + pos); });
      reader::visit(st, b0, [&](hn::Vec<DF> v, std::size_t pos) {
        const auto u = hn::Load(df, buf + pos);
        const auto acc2 = [&](float* ai, hn::Vec<DF> x, hn::Vec<DF> y) {
          hn::StoreU(hn::MulAdd(y, u, hn::MulAdd(x, v, hn::LoadU(df, ai))), df, ai);
        };
        acc2(a + pos, x0, y0);
        if constexpr (QT > 1) acc2(a + dim + pos, x1, y1);
        if constexpr (QT > 2) acc2(a + 2 * dim + pos, x2, y2);
        if constexpr (QT > 3) acc2(a + 3 * dim + pos, x3, y3);
      });
    }
  }
  for (; j < n_values; ++j) {
    for (std::size_t b = 0; b < nb; ++b) {
      float* a = acc + b * V;
      const block& b0 = blocks(j)[b];
      const float s0 = block_scale<Codec>(b0);
      const auto x0 = hn::Set(df, wt(0, j) * s0), x1 = hn::Set(df, wt(1, j) * s0);
      const auto x2 = hn::Set(df, wt(2, j) * s0), x3 = hn::Set(df, wt(3, j) * s0);
      reader::visit(st, b0, [&](hn::Vec<DF> v, std::size_t pos) {
        const auto acc1 = [&](float* ai, hn::Vec<DF> x) {
          hn::StoreU(hn::MulAdd(x, v, hn::LoadU(df, ai)), df, ai);
        };
        acc1(a + pos, x0);
        if constexpr (QT > 1) acc1(a + dim + pos, x1);
        if constexpr (QT > 2) acc1(a + 2 * dim + pos, x2);
        if constexpr (QT > 3) acc1(a + 3 * dim + pos, x3);
      });
    }
  }
}

// out_i += sum_j w_ij * value_j (accumulated in acc, in the reader's layout, then added).
template <class Codec>
HWY_INLINE void fused_axpy(const float* w, std::size_t n_q, std::size_t w_stride,
                           const void* values, std::size_t value_stride, std::size_t n_values,
                           std::size_t dim, float* out) {
  using reader = f32_reader<Codec>;
  constexpr std::size_t V = Codec::block_values;
  const std::size_t nb = dim / V;
  const typename reader::state st;
  auto acc = hwy::AllocateAligned<float>(n_q * dim);
  std::memset(acc.get(), 0, n_q * dim * sizeof(float));
  const char* base = static_cast<const char*>(values);
  for_query_tiles(n_q, [&](std::size_t i, auto qt) {
    fused_axpy_tile<decltype(qt)::value, Codec>(w + i * w_stride, w_stride, base, value_stride,
                                                n_values, dim, acc.get() + i * dim, st);
  });
  for (std::size_t i = 0; i < n_q; ++i)
    for (std::size_t b = 0; b < nb; ++b)
      for (std::size_t p = 0; p < V; ++p) {
        const std::size_t e = reader::kNatural ? p : reader::position(p);
        out[i * dim + b * V + e] += acc[i * dim + b * V + p];
      }
}

// ============================ register-blocked axpy (x86 AVX2 / AVX3) ========================
// For decode attention the value rows of a key tile are many and the query rows few (a GQA
// group): acc_i += sum_j w_ij * value_j runs per pass over a slice of the block (4 chunks of 8
// values) with the accumulators of every query row of the tile in registers across all value
// rows, so out is loaded and stored once per 64 rows instead of once per row. Values are exact
// f32 (int8 values converted, or the f32 codebook looked up with vpermps: turbo2/3 one
// lookup per 8 values, turbo4 two and a blend), each chunk in natural element order.
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
// lane_reader<Codec>: kPasses passes of 4 chunks cover a block; chunk<C>(t, block, pass)
// returns the 8 unscaled values of elements pos(pass, C) .. + 7; scale(block) is folded into
// the weights.
template <class Codec> struct lane_reader { static constexpr bool ok = false; };

HWY_INLINE __m256i load8_u8(const std::uint8_t* p) {  // 8 bytes, zero-extended to 8 x int32
  return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
}

// q8_0 and q4_0: blocks of 32 values, one pass of 4 chunks in element order, scale d.
struct lane_reader_block32 {
  static constexpr bool ok = true;
  static constexpr std::size_t kPasses = 1;
  struct tables {};
  static constexpr std::size_t pos(std::size_t, std::size_t c) { return 8 * c; }
  template <class Block> static HWY_INLINE float scale(const Block& b) { return scale_f32(b.d); }
};

template <> struct lane_reader<q8_0> : lane_reader_block32 {
  template <std::size_t C>
  static HWY_INLINE __m256 chunk(const tables&, const q8_0::block& b, std::size_t) {
    const auto* p = reinterpret_cast<const __m128i*>(b.qs + 8 * C);
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(p)));
  }
};

// element e < 16: low nibble of byte e, else the high nibble of byte e - 16
template <> struct lane_reader<q4_0> : lane_reader_block32 {
  template <std::size_t C>
  static HWY_INLINE __m256 chunk(const tables&, const q4_0::block& b, std::size_t) {
    const __m256i x = load8_u8(b.qs + 8 * (C & 1));
    const __m256i n = C < 2 ? _mm256_and_si256(x, _mm256_set1_epi32(15)) : _mm256_srli_epi32(x, 4);
    return _mm256_cvtepi32_ps(_mm256_sub_epi32(n, _mm256_set1_epi32(8)));
  }
};

// turbo (docs/formats.md), groups of 64 or more. B = 4: pass p covers bytes 16p .. 16p + 15,
// chunks = low nibbles of bytes 16p and 16p + 8, then their high nibbles (elements + G/2).
// B = 2, 3: pass p covers bytes 8p .. 8p + 7 of the low planes, chunk C = plane C (elements
// C * G/4 + 8p + l); B = 3's high bit of lane l is bit 2C + 8p / E of high byte 8p % E + l.
template <int B, int G, class CB>
requires(G >= 64 && G % 32 == 0) struct lane_reader<turbo<B, G, CB>> {
  using codec = turbo<B, G, CB>;
  using traits = turbo_traits<codec>;
  static constexpr bool ok = true;
  static constexpr std::size_t kQ = std::size_t(G / 4), kE = std::size_t(G / 8);
  static constexpr std::size_t kPasses = std::size_t(G / 32);
  struct tables {
    __m256 lo, hi;  // codebook entries 0..7 and 8..15 (zero where the codebook has none)
    tables() {
      HWY_ALIGN float t[16] = {};
      const auto cb = traits::codebook();
      for (int i = 0; i < traits::levels; ++i) t[i] = cb[std::size_t(i)];
      lo = _mm256_load_ps(t);
      hi = _mm256_load_ps(t + 8);
    }
  };
  static constexpr std::size_t pos(std::size_t p, std::size_t c) {
    if constexpr (B == 4)
      return (c < 2 ? 0 : std::size_t(G / 2)) + 16 * p + 8 * (c & 1);
    else
      return c * kQ + 8 * p;
  }
  template <std::size_t C>
  static HWY_INLINE __m256 chunk(const tables& t, const typename codec::block& b, std::size_t p) {
    if constexpr (B == 4) {
      const __m256i x = load8_u8(b.idx + 16 * p + 8 * (C & 1));
      const __m256i i =
          C < 2 ? _mm256_and_si256(x, _mm256_set1_epi32(15)) : _mm256_srli_epi32(x, 4);
      const __m256 a = _mm256_permutevar8x32_ps(t.lo, i), c = _mm256_permutevar8x32_ps(t.hi, i);
      return _mm256_blendv_ps(a, c, _mm256_castsi256_ps(_mm256_slli_epi32(i, 28)));
    } else {
      const __m256i x = load8_u8(b.idx + 8 * p);
      __m256i i =
          _mm256_and_si256(C == 0 ? x : _mm256_srli_epi32(x, int(2 * C)), _mm256_set1_epi32(3));
      if constexpr (B == 3) {
        const __m256i h = _mm256_srl_epi32(load8_u8(b.idx + kQ + (8 * p) % kE),
                                           _mm_cvtsi32_si128(int((8 * p) / kE)));
        __m256i hb;
        if constexpr (C == 0)
          hb = _mm256_slli_epi32(h, 2);
        else if constexpr (C == 1)
          hb = h;
        else
          hb = _mm256_srli_epi32(h, int(2 * C - 2));
        i = _mm256_or_si256(i, _mm256_and_si256(hb, _mm256_set1_epi32(4)));
      }
      return _mm256_permutevar8x32_ps(t.lo, i);
    }
  }
  static HWY_INLINE float scale(const typename codec::block& b) { return scale_f32(b.scale); }
};

// vq2 (groups of 32 or more): chunk C of pass p is code 4p + C, elements 32p + 8C .. + 7; the
// two table reads give the base vector and the flip mask, (b ^ m) - m the signed odd values.
template <int G>
requires(G >= 32) struct lane_reader<vq2<G>> {
  static constexpr bool ok = true;
  static constexpr std::size_t kPasses = std::size_t(G / 32);
  struct tables {};
  static constexpr std::size_t pos(std::size_t p, std::size_t c) { return 32 * p + 8 * c; }
  template <std::size_t C>
  static HWY_INLINE __m256 chunk(const tables&, const typename vq2<G>::block& b, std::size_t p) {
    const unsigned code = b.code[4 * p + C];
    std::uint64_t w;
    std::memcpy(&w, d8::book.base[code & 511u].data(), 8);
    const __m128i m = _mm_cvtsi64_si128(static_cast<long long>(d8::book.flip[code >> 9]));
    const __m128i k =
        _mm_sub_epi8(_mm_xor_si128(_mm_cvtsi64_si128(static_cast<long long>(w)), m), m);
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(k));
  }
  static HWY_INLINE float scale(const typename vq2<G>::block& b) {
    return 0.5f * scale_f32(b.scale);
  }
};

// ws[r * kJ + j] = w[r * w_stride + j0 + j] * scale(block b of row j) for the nj rows of a
// 64-row tile (rows = its first row); at b == 0 it also prefetches the next tile's rows.
template <std::size_t QT, std::size_t kJ, class Codec, class Scale>
HWY_INLINE void tile_weights(const float* w, std::size_t w_stride, std::size_t j0, std::size_t nj,
                             std::size_t n_values, const char* rows, std::size_t value_stride,
                             std::size_t b, std::size_t nb, Scale&& scale, float* ws) {
  using block = typename Codec::block;
  for (std::size_t j = 0; j < nj; ++j) {
    if (b == 0)
      prefetch_ahead(rows, j + kJ - kPrefetchRows, n_values - j0, value_stride, nb * sizeof(block));
    const float s = scale(reinterpret_cast<const block*>(rows + j * value_stride)[b]);
    for (std::size_t r = 0; r < QT; ++r) ws[r * kJ + j] = w[r * w_stride + j0 + j] * s;
  }
}

// One pass of QT query rows over nj value rows: chunks C0 .. C0 + NC - 1 of pass p of block b.
// ws[r * kJ + j] = w_rj * scale_j.
template <std::size_t QT, std::size_t kJ, class Codec, std::size_t C0, std::size_t NC>
HWY_INLINE void lane_axpy_pass(const float* ws, std::size_t nj, const char* base,
                               std::size_t value_stride, std::size_t b, std::size_t p,
                               const typename lane_reader<Codec>::tables& t, float* out,
                               std::size_t dim) {
  using R = lane_reader<Codec>;
  using block = typename Codec::block;
  __m256 acc[QT][NC];
  for (std::size_t r = 0; r < QT; ++r)
    for (std::size_t c = 0; c < NC; ++c) acc[r][c] = _mm256_setzero_ps();
  for (std::size_t j = 0; j < nj; ++j) {
    const block& blk = reinterpret_cast<const block*>(base + j * value_stride)[b];
    [&]<std::size_t... Cs>(std::index_sequence<Cs...>) {
      (([&] {
         const __m256 v = R::template chunk<C0 + Cs>(t, blk, p);
         for (std::size_t r = 0; r < QT; ++r)
           acc[r][Cs] = _mm256_fmadd_ps(v, _mm256_broadcast_ss(ws + r * kJ + j), acc[r][Cs]);
       }()),
       ...);
    }
    (std::make_index_sequence<NC>{});
  }
  constexpr std::size_t V = Codec::block_values;
  for (std::size_t r = 0; r < QT; ++r)
    for (std::size_t c = 0; c < NC; ++c) {
      float* o = out + r * dim + b * V + R::pos(p, C0 + c);
      _mm256_storeu_ps(o, _mm256_add_ps(_mm256_loadu_ps(o), acc[r][c]));
    }
}

// Codecs whose groups of 4 query rows also take the register-blocked kernel: turbo2 on AVX2
// (one vpermps per 8 values; measured faster than the fused kernel there, docs/kernels.md). The
// others (turbo3/4's costlier lookups, q8_0, q4_0) and AVX3 keep the fused kernel for 4 rows.
template <class Codec>
inline constexpr bool lane_axpy4 = [] {
  if constexpr (HWY_TARGET == HWY_AVX2 && std::is_same_v<family_t<Codec>, turbo_family>)
    return turbo_traits<Codec>::bits == 2;
  else
    return false;
}();

template <class Codec>
HWY_INLINE void lane_axpy(const float* w, std::size_t n_q, std::size_t w_stride, const void* values,
                          std::size_t value_stride, std::size_t n_values, std::size_t dim,
                          float* out) {
  using R = lane_reader<Codec>;
  using block = typename Codec::block;
  constexpr std::size_t V = Codec::block_values, kJ = 64;
  const std::size_t nb = dim / V;
  const typename R::tables t;
  const char* base = static_cast<const char*>(values);
  HWY_ALIGN float ws[4 * kJ];
  // 1-3 rows: a pass holds QT x 4 chunks of accumulators (with the chunk temporaries, the 16
  // vector registers); 4 rows (lane_axpy4 codecs): two half passes of 2 chunks (4 x 2).
  const auto tile = [&](auto qt) {
    constexpr std::size_t QT = decltype(qt)::value;
    for (std::size_t j0 = 0; j0 < n_values; j0 += kJ) {
      const std::size_t nj = std::min(kJ, n_values - j0);
      const char* rows = base + j0 * value_stride;
      for (std::size_t b = 0; b < nb; ++b) {
        tile_weights<QT, kJ, Codec>(
            w, w_stride, j0, nj, n_values, rows, value_stride, b, nb,
            [](const block& x) { return R::scale(x); }, ws);
        for (std::size_t p = 0; p < R::kPasses; ++p) {
          if constexpr (QT == 4) {
            lane_axpy_pass<QT, kJ, Codec, 0, 2>(ws, nj, rows, value_stride, b, p, t, out, dim);
            lane_axpy_pass<QT, kJ, Codec, 2, 2>(ws, nj, rows, value_stride, b, p, t, out, dim);
          } else {
            lane_axpy_pass<QT, kJ, Codec, 0, 4>(ws, nj, rows, value_stride, b, p, t, out, dim);
          }
        }
      }
    }
  };
  if constexpr (lane_axpy4<Codec>) {
    if (n_q == 4) return tile(std::integral_constant<std::size_t, 4>{});
  }
  if (n_q == 3)
    tile(std::integral_constant<std::size_t, 3>{});
  else if (n_q == 2)
    tile(std::integral_constant<std::size_t, 2>{});
  else if (n_q == 1)
    tile(std::integral_constant<std::size_t, 1>{});
}

// turbo2/3 with groups of 128, by planes: the block's 32 low-plane bytes are read as 8 x u32
// (lane l = bytes 4l .. 4l + 3), so one load holds the 2-bit indices of all 128 values. For
// plane c, w_c = lo >> 2c (turbo3: the low two bits of each byte masked, bit 2 = the element's
// high bit); chunk k = w_c >> 8k looked up with vpermps (which reads bits 0-2 of each lane)
// holds elements 32c + 4l + k. A plane's 4 chunks are accumulated over the value rows of a
// tile and transposed (4 x 8) once per 64 rows into elements 32c .. 32c + 31. One vpermps per 8
// values as lane_reader, but the index extraction is shared by a plane's 4 chunks instead of
// done per chunk.
template <class Codec> inline constexpr bool plane_axpy_ok = false;
template <int B, class CB>
inline constexpr bool plane_axpy_ok<turbo<B, 128, CB>> = B == 2 || B == 3;

template <class Codec> struct plane_reader {
  static constexpr int kBits = turbo_traits<Codec>::bits;
  using block = typename Codec::block;
  struct tables {
    __m256 cb;   // turbo3: the 8 centroids; turbo2: the 4 centroids twice (bit 2 is ignored)
    __m256i sh;  // turbo3: the high-bit shift of lane l (bit 2c + l / 4 of its bytes -> bit 2)
    tables() {
      HWY_ALIGN float t[8];
      const auto c = turbo_traits<Codec>::codebook();
      for (std::size_t i = 0; i < 8; ++i) t[i] = c[i % c.size()];
      cb = _mm256_load_ps(t);
      sh = _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1);
    }
  };
  // The index word of plane C: byte k of lane l holds the index of element 32C + 4l + k.
  template <std::size_t C> static HWY_INLINE __m256i word(const tables& t, const block& blk) {
    const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk.idx));
    const __m256i x = C == 0 ? lo : _mm256_srli_epi32(lo, int(2 * C));
    if constexpr (kBits == 2) {
      return x;
    } else {
      // high byte (4l + k) % 16 = 4 (l % 4) + k, bit 2C + l / 4: one 16-byte load, broadcast
      const __m256i h = _mm256_broadcastsi128_si256(
          _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk.idx + 32)));
      const __m256i hs = _mm256_srlv_epi32(h, t.sh);
      __m256i hb;
      if constexpr (C == 0)
        hb = _mm256_slli_epi32(hs, 2);
      else if constexpr (C == 1)
        hb = hs;
      else
        hb = _mm256_srli_epi32(hs, int(2 * C - 2));
      return _mm256_or_si256(_mm256_and_si256(x, _mm256_set1_epi32(0x03030303)),
                             _mm256_and_si256(hb, _mm256_set1_epi32(0x04040404)));
    }
  }
  static HWY_INLINE __m256 chunk(const tables& t, __m256i w, std::size_t k) {
    return _mm256_permutevar8x32_ps(t.cb, k == 0 ? w : _mm256_srli_epi32(w, int(8 * k)));
  }
};

// Chunks K0 .. K0 + NK - 1 of plane C of block b, QT rows over nj value rows, added to
// acc_out[r][k] (8 floats each).
template <std::size_t QT, std::size_t kJ, class Codec, std::size_t C, std::size_t K0,
          std::size_t NK>
HWY_INLINE void plane_axpy_pass(const float* ws, std::size_t nj, const char* rows,
                                std::size_t value_stride, std::size_t b,
                                const typename plane_reader<Codec>::tables& t,
                                float (*acc_out)[4][8]) {
  using R = plane_reader<Codec>;
  using block = typename Codec::block;
  __m256 acc[QT][NK];
  for (std::size_t r = 0; r < QT; ++r)
    for (std::size_t k = 0; k < NK; ++k) acc[r][k] = _mm256_setzero_ps();
  for (std::size_t j = 0; j < nj; ++j) {
    const block& blk = reinterpret_cast<const block*>(rows + j * value_stride)[b];
    const __m256i w = R::template word<C>(t, blk);
    // plain unrolled loops (no lambdas): GCC 12 keeps the accumulators in registers then
#pragma GCC unroll 4
    for (std::size_t k = 0; k < NK; ++k) {
      const __m256 v = R::chunk(t, w, K0 + k);
#pragma GCC unroll 4
      for (std::size_t r = 0; r < QT; ++r)
        acc[r][k] = _mm256_fmadd_ps(v, _mm256_broadcast_ss(ws + r * kJ + j), acc[r][k]);
    }
  }
  for (std::size_t r = 0; r < QT; ++r)
    for (std::size_t k = 0; k < NK; ++k) _mm256_store_ps(acc_out[r][K0 + k], acc[r][k]);
}

// o[0 .. 32) += the 4 x 8 transpose of a[k][l] (element 4l + k).
HWY_INLINE void plane_store(const float (*a)[8], float* o) {
  const __m256 a0 = _mm256_load_ps(a[0]), a1 = _mm256_load_ps(a[1]);
  const __m256 a2 = _mm256_load_ps(a[2]), a3 = _mm256_load_ps(a[3]);
  const __m256 u0 = _mm256_unpacklo_ps(a0, a1), u1 = _mm256_unpackhi_ps(a0, a1);
  const __m256 u2 = _mm256_unpacklo_ps(a2, a3), u3 = _mm256_unpackhi_ps(a2, a3);
  const __m256 t0 = _mm256_shuffle_ps(u0, u2, 0x44), t1 = _mm256_shuffle_ps(u0, u2, 0xEE);
  const __m256 t2 = _mm256_shuffle_ps(u1, u3, 0x44), t3 = _mm256_shuffle_ps(u1, u3, 0xEE);
  const __m256 m[4] = {_mm256_permute2f128_ps(t0, t1, 0x20), _mm256_permute2f128_ps(t2, t3, 0x20),
                       _mm256_permute2f128_ps(t0, t1, 0x31), _mm256_permute2f128_ps(t2, t3, 0x31)};
  for (std::size_t i = 0; i < 4; ++i)
    _mm256_storeu_ps(o + 8 * i, _mm256_add_ps(_mm256_loadu_ps(o + 8 * i), m[i]));
}

template <class Codec>
HWY_INLINE void plane_axpy(const float* w, std::size_t n_q, std::size_t w_stride,
                           const void* values, std::size_t value_stride, std::size_t n_values,
                           std::size_t dim, float* out) {
  using block = typename Codec::block;
  constexpr std::size_t V = Codec::block_values, kJ = 64;
  const std::size_t nb = dim / V;
  const typename plane_reader<Codec>::tables t;
  const char* base = static_cast<const char*>(values);
  HWY_ALIGN float ws[4 * kJ];
  HWY_ALIGN float acc[4][4][8];
  // AVX2 (16 registers): 4 rows run each plane in two halves of 2 chunks (4 x 2 accumulators);
  // 1-3 rows, and AVX3 (32 registers), all 4 chunks at once.
  const auto tile = [&](auto qt, const float* wr, float* o) {
    constexpr std::size_t QT = decltype(qt)::value;
    constexpr bool halves = QT == 4 && HWY_TARGET == HWY_AVX2;
    for (std::size_t j0 = 0; j0 < n_values; j0 += kJ) {
      const std::size_t nj = std::min(kJ, n_values - j0);
      const char* rows = base + j0 * value_stride;
      for (std::size_t b = 0; b < nb; ++b) {
        tile_weights<QT, kJ, Codec>(
            wr, w_stride, j0, nj, n_values, rows, value_stride, b, nb,
            [](const block& x) { return scale_f32(x.scale); }, ws);
        [&]<std::size_t... Cs>(std::index_sequence<Cs...>) {
          (([&] {
             if constexpr (halves) {
               plane_axpy_pass<QT, kJ, Codec, Cs, 0, 2>(ws, nj, rows, value_stride, b, t, acc);
               // a compiler barrier: the first half's sums go to acc now instead of staying
               // in registers through the second half (where GCC 12 then spills in the loop)
               asm volatile("" : : "r"(&acc[0][0][0]) : "memory");
               plane_axpy_pass<QT, kJ, Codec, Cs, 2, 2>(ws, nj, rows, value_stride, b, t, acc);
             } else {
               plane_axpy_pass<QT, kJ, Codec, Cs, 0, 4>(ws, nj, rows, value_stride, b, t, acc);
             }
             for (std::size_t r = 0; r < QT; ++r)
               plane_store(acc[r], o + r * dim + b * V + 32 * Cs);
           }()),
           ...);
        }
        (std::make_index_sequence<4>{});
      }
    }
  };
  std::size_t i = 0;
  for (; i + 4 <= n_q; i += 4)
    tile(std::integral_constant<std::size_t, 4>{}, w + i * w_stride, out + i * dim);
  const std::size_t left = n_q - i;
  if (left == 3)
    tile(std::integral_constant<std::size_t, 3>{}, w + i * w_stride, out + i * dim);
  else if (left == 2)
    tile(std::integral_constant<std::size_t, 2>{}, w + i * w_stride, out + i * dim);
  else if (left == 1)
    tile(std::integral_constant<std::size_t, 1>{}, w + i * w_stride, out + i * dim);
}
#endif  // x86 AVX2 / AVX3

// Whether this target runs the SIMD path of a block codec (else: the scalar reference path).
template <class Codec>
inline constexpr bool simd_ok = [] {
  if constexpr (std::is_same_v<family_t<Codec>, turbo_family>)
    return turbo_planes<Codec, hn::Full128<std::uint8_t>>::ok;
  else
    return true;
}();

template <class Codec> HWY_INLINE void block_decode(const void* in, std::size_t n, float* x) {
  const typename block_decoder<Codec>::state st;
  const auto* blocks = static_cast<const typename Codec::block*>(in);
  for (std::size_t b = 0; b < n / Codec::block_values; ++b)
    block_decoder<Codec>::block(st, blocks[b], x + b * Codec::block_values);
}

#endif  // HWY_TARGET != HWY_SCALAR

// ============================ entry points (one per codec and kernel) =========================
template <class Codec> struct codec_kernels {
  using fam = family_t<Codec>;
  static constexpr bool is_float = std::is_same_v<fam, float_family>;

  static void encode(const float* x, std::size_t n, void* out) {
    if constexpr (is_float) {
      float_encode<Codec>(x, n, out);
    } else {
#if HWY_TARGET != HWY_SCALAR
      if constexpr (std::is_same_v<Codec, q8_0> || std::is_same_v<Codec, q4_0>)
        return block_encode<Codec>(x, n, out);
      else if constexpr (std::is_same_v<fam, turbo_family> &&
                         turbo_scale == turbo_scale_rule::norm_corrected)
        return turbo_encode<Codec>(x, n, out);
      else if constexpr (std::is_same_v<fam, vq_family>)
        return vq2_encode<Codec>(x, n, out);
#endif
      scalar_encode<Codec>(x, n, out);
    }
  }
  static void decode(const void* in, std::size_t n, float* x) {
    if constexpr (is_float) {
      float_decode<Codec>(in, n, x);
    } else {
#if HWY_TARGET != HWY_SCALAR
      if constexpr (simd_ok<Codec>) return block_decode<Codec>(in, n, x);
#endif
      scalar_decode<Codec>(in, n, x);
    }
  }
  static void dot(const float* q, std::size_t n_q, std::size_t dim, const void* keys,
                  std::size_t key_stride, std::size_t n_keys, float* scores,
                  std::size_t score_stride) {
    if constexpr (is_float) {
      float_dot<Codec>(q, n_q, dim, keys, key_stride, n_keys, scores, score_stride);
    } else {
#if HWY_TARGET != HWY_SCALAR
      return i8_dot<Codec>(q, n_q, dim, keys, key_stride, n_keys, scores, score_stride);
#else
      int8_dot_reference<Codec>(q, n_q, dim, keys, key_stride, n_keys, scores, score_stride);
#endif
    }
  }
  static void axpy(const float* w, std::size_t n_q, std::size_t w_stride, const void* values,
                   std::size_t value_stride, std::size_t n_values, std::size_t dim, float* out) {
    if constexpr (is_float) {
      float_axpy<Codec>(w, n_q, w_stride, values, value_stride, n_values, dim, out);
    } else {
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
      // Groups of 4 rows: the fused kernel (measured faster there), except for lane_axpy4
      // codecs; the last 1-3 rows (a GQA group of 3, or what is left of 5-7): the
      // register-blocked one (faster there).
      if constexpr (plane_axpy_ok<Codec>) {
        return plane_axpy<Codec>(w, n_q, w_stride, values, value_stride, n_values, dim, out);
      } else if constexpr (lane_reader<Codec>::ok && simd_ok<Codec>) {
        const std::size_t n4 = n_q - n_q % 4;
        if constexpr (lane_axpy4<Codec>) {
          for (std::size_t i = 0; i < n4; i += 4)
            lane_axpy<Codec>(w + i * w_stride, 4, w_stride, values, value_stride, n_values, dim,
                             out + i * dim);
        } else if (n4) {
          fused_axpy<Codec>(w, n4, w_stride, values, value_stride, n_values, dim, out);
        }
        if (n4 < n_q)
          lane_axpy<Codec>(w + n4 * w_stride, n_q - n4, w_stride, values, value_stride, n_values,
                           dim, out + n4 * dim);
        return;
      }
#endif
#if HWY_TARGET != HWY_SCALAR
      if constexpr (simd_ok<Codec>)
        return fused_axpy<Codec>(w, n_q, w_stride, values, value_stride, n_values, dim, out);
#endif
      scalar_axpy<Codec>(w, n_q, w_stride, values, value_stride, n_values, dim, out);
    }
  }
};

}  // namespace strata::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // STRATA_KERNELS_INL_HPP_ toggle
