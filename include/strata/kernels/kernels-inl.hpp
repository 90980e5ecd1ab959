// Highway kernels for every codec: compiled once per SIMD target. Included by
// strata/kernels/kernels.hpp through hwy/foreach_target.h; do not include directly.
// No include guard on purpose: the per-target toggle below lets foreach_target re-include it.

#if defined(STRATA_KERNELS_INL_HPP_) == defined(HWY_TARGET_TOGGLE)
#ifdef STRATA_KERNELS_INL_HPP_
#undef STRATA_KERNELS_INL_HPP_
#else
#define STRATA_KERNELS_INL_HPP_
#endif

#include <cstddef>
#include <cstdint>
#include <bit>
#include <cstring>
#include <type_traits>
#include <vector>

#include <hwy/highway.h>
#include <strata/kernels/codec_traits.hpp>
#include <strata/kernels/int8_dot.hpp>
#include <strata/kernels/scalar.hpp>

HWY_BEFORE_NAMESPACE();
namespace strata::kernels::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

#if HWY_TARGET == HWY_SCALAR
inline constexpr bool kScalarTarget = true;
#else
inline constexpr bool kScalarTarget = false;
#endif

template <class D, class V>
HWY_INLINE float reduce_sum(D d, V v) {
  return hn::GetLane(hn::SumOfLanes(d, v));
}

// ============================ f32 / f16 / bf16 =================================================
// io<Codec>: load N values of a row as f32, store N f32 values encoded.
template <class Codec> struct float_io;

template <> struct float_io<f32> {
  using elem = float;
  template <class D> static HWY_INLINE hn::Vec<D> load(D d, const elem* p) { return hn::LoadU(d, p); }
  template <class D> static HWY_INLINE void store(D d, hn::Vec<D> v, elem* p) { hn::StoreU(v, d, p); }
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

template <class Codec>
HWY_INLINE void float_encode(const float* x, std::size_t n, void* out) {
  using io = float_io<Codec>;
  auto* o = static_cast<typename io::elem*>(out);
  const hn::ScalableTag<float> d;
  const std::size_t N = hn::Lanes(d);
  std::size_t i = 0;
  for (; i + N <= n; i += N) io::store(d, hn::LoadU(d, x + i), o + i);
  for (; i < n; ++i) o[i] = io::encode_scalar(x[i]);
}

template <class Codec>
HWY_INLINE void float_decode(const void* in, std::size_t n, float* x) {
  using io = float_io<Codec>;
  const auto* p = static_cast<const typename io::elem*>(in);
  const hn::ScalableTag<float> d;
  const std::size_t N = hn::Lanes(d);
  std::size_t i = 0;
  for (; i + N <= n; i += N) hn::StoreU(io::load(d, p + i), d, x + i);
  for (; i < n; ++i) x[i] = io::scalar(p[i]);
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
    float s0 = reduce_sum(d, hn::Add(a0, b0)), s1 = 0, s2 = 0, s3 = 0;
    if constexpr (QT > 1) s1 = reduce_sum(d, hn::Add(a1, b1));
    if constexpr (QT > 2) s2 = reduce_sum(d, a2);
    if constexpr (QT > 3) s3 = reduce_sum(d, a3);
    for (; c < dim; ++c) {
      const float k = io::scalar(row[c]);
      s0 += q0[c] * k;
      if constexpr (QT > 1) s1 += q1[c] * k;
      if constexpr (QT > 2) s2 += q2[c] * k;
      if constexpr (QT > 3) s3 += q3[c] * k;
    }
    scores[j] = s0;
    if constexpr (QT > 1) scores[score_stride + j] = s1;
    if constexpr (QT > 2) scores[2 * score_stride + j] = s2;
    if constexpr (QT > 3) scores[3 * score_stride + j] = s3;
  }
}

// Splits n_q queries into tiles of 4, 2 and 1 (GQA: n_q is the group size, usually <= 8).
template <class Tile>
HWY_INLINE void for_query_tiles(std::size_t n_q, Tile&& tile) {
  std::size_t i = 0;
  for (; i + 4 <= n_q; i += 4) tile(i, std::integral_constant<std::size_t, 4>{});
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
// Up to 32 int8 lanes (256 bits on AVX2/AVX3, 128 on SSE4/SSSE3/NEON).
using D8 = hn::CappedTag<std::int8_t, 32>;
using DU8 = hn::RebindToUnsigned<D8>;
using D32 = hn::Repartition<std::int32_t, D8>;
using DF = hn::Repartition<float, D8>;

// sum of k[i] * q[i] over the lanes, as int32 lanes. |k|, |q| <= 127: no saturation.
HWY_INLINE hn::Vec<D32> dot_i8(hn::Vec<D8> k, hn::Vec<D8> q) {
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
  // pmaddubsw needs one unsigned operand: |k| and q with k's sign (ggml's trick).
  const __m256i p16 = _mm256_maddubs_epi16(hn::Abs(k).raw, _mm256_sign_epi8(q.raw, k.raw));
  return hn::Vec<D32>{_mm256_madd_epi16(p16, _mm256_set1_epi16(1))};
#elif HWY_ARCH_X86
  const __m128i p16 = _mm_maddubs_epi16(hn::Abs(k).raw, _mm_sign_epi8(q.raw, k.raw));
  return hn::Vec<D32>{_mm_madd_epi16(p16, _mm_set1_epi16(1))};
#else
  const D8 d8;
  const hn::Repartition<std::int16_t, D8> d16;
  const hn::Half<D8> dh;
  const hn::Rebind<std::int16_t, decltype(dh)> d16h;
  const D32 d32;
  const auto klo = hn::PromoteTo(d16h, hn::LowerHalf(dh, k));
  const auto khi = hn::PromoteTo(d16h, hn::UpperHalf(dh, k));
  const auto qlo = hn::PromoteTo(d16h, hn::LowerHalf(dh, q));
  const auto qhi = hn::PromoteTo(d16h, hn::UpperHalf(dh, q));
  const auto k16 = hn::Combine(d16, khi, klo);
  const auto q16 = hn::Combine(d16, qhi, qlo);
  auto s1 = hn::Zero(d32);
  const auto s0 = hn::ReorderWidenMulAccumulate(d32, k16, q16, hn::Zero(d32), s1);
  (void)d8;
  return hn::Add(s0, s1);
#endif
}

// ============================ int8 dot: q8_0 / q4_0 / turbo ===================================
// Key reader policies: for each key block, blocks_i8 calls f(k, offset) for each run of
// Lanes(D8) int8 values starting at element `offset` of the block, and returns dk.
template <class Codec> struct i8_reader;

template <> struct i8_reader<q8_0> {
  struct state {};
  template <class F>
  static HWY_INLINE float block(const state&, const q8_0::block& b, F&& f) {
    const D8 d8;
    const std::size_t L = hn::Lanes(d8);
    for (std::size_t o = 0; o < 32; o += L) f(hn::LoadU(d8, b.qs + o), o);
    return f16_to_f32(b.d);
  }
};

template <> struct i8_reader<q4_0> {
  struct state {};
  template <class F>
  static HWY_INLINE float block(const state&, const q4_0::block& b, F&& f) {
    const D8 d8;
    const hn::Full128<std::uint8_t> d16;
    const auto v = hn::LoadU(d16, b.qs);
    const auto lo = hn::And(v, hn::Set(d16, 0x0F));
    const auto hi = hn::ShiftRight<4>(v);
    const hn::Full128<std::int8_t> di16;
    const auto eight = hn::Set(di16, 8);
    const auto klo = hn::Sub(hn::BitCast(di16, lo), eight);
    const auto khi = hn::Sub(hn::BitCast(di16, hi), eight);
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
    f(hn::Combine(d8, khi, klo), 0);
#else
    (void)d8;
    f(klo, 0);
    f(khi, 16);
#endif
    return f16_to_f32(b.d);
  }
};

// turbo index planes: for_each(state, block, f) calls f(ix, offset) with a vector ix of
// Lanes(DU) uint8 codebook indices of elements offset .. offset + Lanes(DU) - 1 of the group.
// Needs plane bytes >= Lanes(DU) (see turbo_simd_ok).
template <class Codec, class DU> struct turbo_planes {
  using traits = turbo_traits<Codec>;
  static constexpr int B = traits::bits;
  static constexpr std::size_t kLanes = hn::MaxLanes(DU());
  static constexpr std::size_t kPlane = std::size_t(traits::plane_bytes);
  static constexpr bool ok = kPlane >= kLanes;
  static constexpr std::size_t kSegs = ok ? kPlane / kLanes : 1;
  // B = 3: per segment, where each lane finds its high bit (a byte index into the G/8 high
  // bytes, and a bit mask per low plane).
  struct state {
    HWY_ALIGN std::uint8_t pattern[kSegs][kLanes];
    HWY_ALIGN std::uint8_t mask[kSegs][4][kLanes];
    state() {
      constexpr int hb = traits::high_bytes;
      for (std::size_t s = 0; s < kSegs; ++s)
        for (std::size_t l = 0; l < kLanes; ++l) {
          const int e = int(s * kLanes + l);  // element within a low plane
          pattern[s][l] = std::uint8_t(e % hb);
          for (int k = 0; k < 4; ++k) mask[s][k][l] = std::uint8_t(1u << ((2 * k + e / hb) & 7));
        }
    }
  };
  template <class F>
  static HWY_INLINE void for_each(const state& st, const std::uint8_t* idx, F&& f) {
    const DU du;
    for (std::size_t s = 0; s < kSegs; ++s) {
      const auto v = hn::LoadU(du, idx + s * kLanes);
      if constexpr (B == 4) {
        f(hn::And(v, hn::Set(du, 0x0F)), s * kLanes);
        f(hn::ShiftRight<4>(v), s * kLanes + kPlane);
      } else {
        [[maybe_unused]] hn::Vec<DU> high = hn::Zero(du);
        if constexpr (B == 3)
          high = hn::TableLookupBytes(load_high(du, idx + traits::high_offset),
                                      hn::Load(du, st.pattern[s]));
        const auto three = hn::Set(du, 3);
        for (int k = 0; k < 4; ++k) {
          auto ix = hn::And(hn::ShiftRightSame(v, 2 * k), three);
          if constexpr (B == 3) {
            const auto m = hn::Load(du, st.mask[s][k]);
            ix = hn::Or(ix, hn::And(hn::VecFromMask(du, hn::TestBit(high, m)), hn::Set(du, 4)));
          }
          f(ix, std::size_t(k) * kPlane + s * kLanes);
        }
      }
    }
  }
  // The G/8 high-bit bytes, in every 128-bit block of the vector (never reads past them).
  static HWY_INLINE hn::Vec<DU> load_high(DU du, const std::uint8_t* p) {
    constexpr int hb = traits::high_bytes;
    if constexpr (hb >= 16) {
      return hn::LoadDup128(du, p);
    } else {
      HWY_ALIGN std::uint8_t tmp[16] = {};
      std::memcpy(tmp, p, hb);
      return hn::LoadDup128(du, tmp);
    }
  }
};

template <int B, int G, class CB> struct i8_reader<turbo<B, G, CB>> {
  using codec = turbo<B, G, CB>;
  using traits = turbo_traits<codec>;
  using planes = turbo_planes<codec, DU8>;
  using state = typename planes::state;
  template <class F>
  static HWY_INLINE float block(const state& st, const typename codec::block& b, F&& f) {
    const D8 d8;
    HWY_ALIGN static constexpr auto kCb = traits::codebook_i8();
    const auto table = hn::LoadDup128(d8, kCb.data());
    planes::for_each(st, b.idx, [&](hn::Vec<DU8> ix, std::size_t o) {
      f(hn::TableLookupBytes(table, hn::BitCast(d8, ix)), o);
    });
    return f16_to_f32(b.scale) * traits::unit;
  }
};

// Scores of QT queries (already quantized) against n_keys keys.
template <std::size_t QT, class Codec>
HWY_INLINE void i8_dot_tile(const quantized_queries& qq, std::size_t i0, std::size_t dim,
                            const char* keys, std::size_t key_stride, std::size_t n_keys,
                            float* scores, std::size_t score_stride,
                            const typename i8_reader<Codec>::state& st) {
  constexpr std::size_t V = Codec::block_values;
  const std::size_t nb = dim / V;
  const D8 d8;
  const D32 d32;
  const DF df;
  const std::int8_t* q0 = qq.q.data() + i0 * dim;
  const float* dq0 = qq.d.data() + i0 * nb;
  for (std::size_t j = 0; j < n_keys; ++j) {
    const auto* row = reinterpret_cast<const typename Codec::block*>(keys + j * key_stride);
    auto f0 = hn::Zero(df), f1 = hn::Zero(df), f2 = hn::Zero(df), f3 = hn::Zero(df);
    for (std::size_t b = 0; b < nb; ++b) {
      auto s0 = hn::Zero(d32), s1 = hn::Zero(d32), s2 = hn::Zero(d32), s3 = hn::Zero(d32);
      const std::int8_t* qb = q0 + b * V;
      const float dk = i8_reader<Codec>::block(st, row[b], [&](hn::Vec<D8> k, std::size_t o) {
        s0 = hn::Add(s0, dot_i8(k, hn::LoadU(d8, qb + o)));
        if constexpr (QT > 1) s1 = hn::Add(s1, dot_i8(k, hn::LoadU(d8, qb + dim + o)));
        if constexpr (QT > 2) s2 = hn::Add(s2, dot_i8(k, hn::LoadU(d8, qb + 2 * dim + o)));
        if constexpr (QT > 3) s3 = hn::Add(s3, dot_i8(k, hn::LoadU(d8, qb + 3 * dim + o)));
      });
      f0 = hn::MulAdd(hn::ConvertTo(df, s0), hn::Set(df, dk * dq0[b]), f0);
      if constexpr (QT > 1) f1 = hn::MulAdd(hn::ConvertTo(df, s1), hn::Set(df, dk * dq0[nb + b]), f1);
      if constexpr (QT > 2)
        f2 = hn::MulAdd(hn::ConvertTo(df, s2), hn::Set(df, dk * dq0[2 * nb + b]), f2);
      if constexpr (QT > 3)
        f3 = hn::MulAdd(hn::ConvertTo(df, s3), hn::Set(df, dk * dq0[3 * nb + b]), f3);
    }
    scores[j] = reduce_sum(df, f0);
    if constexpr (QT > 1) scores[score_stride + j] = reduce_sum(df, f1);
    if constexpr (QT > 2) scores[2 * score_stride + j] = reduce_sum(df, f2);
    if constexpr (QT > 3) scores[3 * score_stride + j] = reduce_sum(df, f3);
  }
}

template <class Codec>
HWY_INLINE void i8_dot(const float* q, std::size_t n_q, std::size_t dim, const void* keys,
                       std::size_t key_stride, std::size_t n_keys, float* scores,
                       std::size_t score_stride) {
  const quantized_queries qq(q, n_q, dim, Codec::block_values);
  const typename i8_reader<Codec>::state st;
  const char* k = static_cast<const char*>(keys);
  for_query_tiles(n_q, [&](std::size_t i, auto qt) {
    i8_dot_tile<decltype(qt)::value, Codec>(qq, i, dim, k, key_stride, n_keys,
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
      hn::StoreU(hn::Mul(scale, hn::ConvertTo(df, hn::PromoteTo(di, hn::LoadU(d8, b.qs + o)))),
                 df, x + o);
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

// Whether this target runs the SIMD path of a block codec (else: the scalar reference path).
template <class Codec>
inline constexpr bool simd_ok = [] {
  if constexpr (std::is_same_v<family_t<Codec>, turbo_family>)
    return turbo_planes<Codec, DU8>::ok && turbo_planes<Codec, hn::Full128<std::uint8_t>>::ok;
  else
    return true;
}();

template <class Codec>
HWY_INLINE void block_decode(const void* in, std::size_t n, float* x) {
  const typename block_decoder<Codec>::state st;
  const auto* blocks = static_cast<const typename Codec::block*>(in);
  for (std::size_t b = 0; b < n / Codec::block_values; ++b)
    block_decoder<Codec>::block(st, blocks[b], x + b * Codec::block_values);
}

// Values are decoded one row at a time (into L1), then accumulated two rows at a time.
template <class Codec>
HWY_INLINE void block_axpy(const float* w, std::size_t n_q, std::size_t w_stride,
                           const void* values, std::size_t value_stride, std::size_t n_values,
                           std::size_t dim, float* out) {
  const typename block_decoder<Codec>::state st;
  const std::size_t nb = dim / Codec::block_values;
  std::vector<float> rows(2 * dim + 16);
  float* r = rows.data();
  const char* base = static_cast<const char*>(values);
  for (std::size_t j = 0; j < n_values; j += 2) {
    const std::size_t m = n_values - j < 2 ? n_values - j : 2;
    for (std::size_t t = 0; t < m; ++t) {
      const auto* row = reinterpret_cast<const typename Codec::block*>(base + (j + t) * value_stride);
      for (std::size_t b = 0; b < nb; ++b)
        block_decoder<Codec>::block(st, row[b], r + t * dim + b * Codec::block_values);
    }
    float_axpy<f32>(w + j, n_q, w_stride, r, dim * sizeof(float), m, dim, out);
  }
}
#endif  // HWY_TARGET != HWY_SCALAR


// ============================ entry points (one per codec and kernel) =========================
template <class Codec> struct codec_kernels {
  using fam = family_t<Codec>;
  static constexpr bool is_float = std::is_same_v<fam, float_family>;

  static void encode(const float* x, std::size_t n, void* out) {
    if constexpr (is_float) float_encode<Codec>(x, n, out);
    else scalar_encode<Codec>(x, n, out);
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
      if constexpr (simd_ok<Codec>)
        return i8_dot<Codec>(q, n_q, dim, keys, key_stride, n_keys, scores, score_stride);
#endif
      int8_dot_reference<Codec>(q, n_q, dim, keys, key_stride, n_keys, scores, score_stride);
    }
  }
  static void axpy(const float* w, std::size_t n_q, std::size_t w_stride, const void* values,
                   std::size_t value_stride, std::size_t n_values, std::size_t dim, float* out) {
    if constexpr (is_float) {
      float_axpy<Codec>(w, n_q, w_stride, values, value_stride, n_values, dim, out);
    } else {
#if HWY_TARGET != HWY_SCALAR
      if constexpr (simd_ok<Codec>)
        return block_axpy<Codec>(w, n_q, w_stride, values, value_stride, n_values, dim, out);
#endif
      scalar_axpy<Codec>(w, n_q, w_stride, values, value_stride, n_values, dim, out);
    }
  }
};

}  // namespace strata::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // STRATA_KERNELS_INL_HPP_ toggle
