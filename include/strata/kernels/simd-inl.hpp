// Shared SIMD helpers of the kernels, per Highway target: lane sums, the split of query rows
// into tiles, prefetch, fp16 scales, int8 products. A fragment of kernels-inl.hpp (the first:
// `hn` below serves them all).

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

#if HWY_TARGET != HWY_SCALAR
// The N bytes at p repeated over the lanes of du (N < Lanes, a power of two: one broadcast
// load; the packed high bits of turbo5 and turbo6 blocks).
template <std::size_t N, class DU>
HWY_INLINE hn::Vec<DU> repeat_bytes(DU du, const std::uint8_t* p) {
  constexpr std::size_t kL = hn::MaxLanes(DU());
  static_assert(N < kL && kL % N == 0);
  if constexpr (N == 16) {
    return hn::LoadDup128(du, p);
  } else if constexpr (N == 32) {  // L = 64 (AVX3): the 32 bytes twice
    static_assert(kL == 64);
    const hn::Half<DU> dh;
    const auto x = hn::LoadU(dh, p);
    return hn::Combine(du, x, x);
  } else {
    using W = std::conditional_t<
        N == 8, std::uint64_t,
        std::conditional_t<N == 4, std::uint32_t,
                           std::conditional_t<N == 2, std::uint16_t, std::uint8_t>>>;
    static_assert(sizeof(W) == N);
    W w;
    std::memcpy(&w, p, sizeof w);
    return hn::BitCast(du, hn::Set(hn::Repartition<W, DU>(), w));
  }
}
#endif

#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
// The transpose-add tree of four keys' int32 lane sums (the 4-key integer dot): zip_add(a, b)
// adds the interleaved lanes of two vectors (per 128-bit block: a0 + a2, b0 + b2, a1 + a3,
// b1 + b3), sum_zipped(zip_add(a, b), zip_add(c, d)) gives {sum a, sum b, sum c, sum d}: 3 + 3
// operations per 128-bit block width for four vectors, plus 2 per halving above 128 bits.
HWY_INLINE __m128i zip_add(__m128i a, __m128i b) {
  return _mm_add_epi32(_mm_unpacklo_epi32(a, b), _mm_unpackhi_epi32(a, b));
}
HWY_INLINE __m256i zip_add(__m256i a, __m256i b) {
  return _mm256_add_epi32(_mm256_unpacklo_epi32(a, b), _mm256_unpackhi_epi32(a, b));
}
HWY_INLINE __m128i sum_zipped(__m128i ab, __m128i cd) {
  return _mm_add_epi32(_mm_unpacklo_epi64(ab, cd), _mm_unpackhi_epi64(ab, cd));
}
HWY_INLINE __m128i sum_zipped(__m256i ab, __m256i cd) {
  const __m256i s = _mm256_add_epi32(_mm256_unpacklo_epi64(ab, cd), _mm256_unpackhi_epi64(ab, cd));
  return _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
}
#if HWY_TARGET <= HWY_AVX3
HWY_INLINE __m512i zip_add(__m512i a, __m512i b) {
  return _mm512_add_epi32(_mm512_unpacklo_epi32(a, b), _mm512_unpackhi_epi32(a, b));
}
HWY_INLINE __m128i sum_zipped(__m512i ab, __m512i cd) {
  const __m512i s = _mm512_add_epi32(_mm512_unpacklo_epi64(ab, cd), _mm512_unpackhi_epi64(ab, cd));
  const __m256i t = _mm256_add_epi32(_mm512_castsi512_si256(s), _mm512_extracti64x4_epi64(s, 1));
  return _mm_add_epi32(_mm256_castsi256_si128(t), _mm256_extracti128_si256(t, 1));
}
#endif
#endif

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

// Splits n_q query rows into tiles of 4, then one of 3, 2 or 1 (GQA: n_q is the group size,
// usually <= 8; a group of 3 is one pass over the keys, not 2 + 1): tile(i, QT) for rows
// i .. i + QT - 1, QT an integral_constant. Every kernel's row tail goes through here.
// kMax = 3: no tiles of 4 (for callers that never pass 4 rows; not instantiating them keeps
// the caller small enough for the compiler to inline what it calls).
template <std::size_t kMax = 4, class Tile>
HWY_INLINE void for_query_tiles(std::size_t n_q, Tile&& tile) {
  static_assert(kMax == 3 || kMax == 4);
  std::size_t i = 0;
  if constexpr (kMax == 4)
    for (; i + 4 <= n_q; i += 4) tile(i, std::integral_constant<std::size_t, 4>{});
  if (n_q - i == 3) return tile(i, std::integral_constant<std::size_t, 3>{});
  for (; i + 2 <= n_q; i += 2) tile(i, std::integral_constant<std::size_t, 2>{});
  for (; i < n_q; ++i) tile(i, std::integral_constant<std::size_t, 1>{});
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

// Software prefetch of the rows j .. j + count - 1 below n (`bytes` each, stride apart): every
// cache line they touch. For drivers that take several rows per step: where the rows are
// contiguous (stride == bytes, as a cache's rows of one head are) one walk over their span,
// a few prefetches per step where one loop per row cost 10-14 instructions per row
// (docs/kernels.md, "Prefetch per row").
HWY_INLINE void prefetch_rows(const char* base, std::size_t j, std::size_t count, std::size_t n,
                              std::size_t stride, std::size_t bytes) {
  if (j >= n || bytes == 0) return;
  count = std::min(count, n - j);
  const char* p = base + j * stride;
  if (stride == bytes) {
    const std::size_t span = count * bytes;
    for (std::size_t o = 0; o < span; o += 64) hwy::Prefetch(p + o);
    hwy::Prefetch(p + span - 1);
    return;
  }
  for (std::size_t k = 0; k < count; ++k, p += stride) {
    for (std::size_t o = 0; o < bytes; o += 64) hwy::Prefetch(p + o);
    hwy::Prefetch(p + bytes - 1);
  }
}

#if HWY_TARGET != HWY_SCALAR
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

// The encoders' f32 vectors (lanes divide 32), and the reference's input cleaning: NaN -> 0,
// +-inf -> +-FLT_MAX.
using DE = hn::CappedTag<float, 16>;
template <class D> HWY_INLINE hn::Vec<D> clean_f(D d, hn::Vec<D> x) {
  const auto big = hn::Set(d, 3.40282347e38f);
  return hn::Min(hn::Max(hn::IfThenZeroElse(hn::IsNaN(x), x), hn::Neg(big)), big);
}

#if HWY_ARCH_X86 && HWY_TARGET <= HWY_SSSE3
HWY_INLINE __m128i maddubs(__m128i u, __m128i s) { return _mm_maddubs_epi16(u, s); }
HWY_INLINE __m128i madd1(__m128i p) { return _mm_madd_epi16(p, _mm_set1_epi16(1)); }
#if HWY_TARGET <= HWY_AVX2
HWY_INLINE __m256i maddubs(__m256i u, __m256i s) { return _mm256_maddubs_epi16(u, s); }
HWY_INLINE __m256i madd1(__m256i p) { return _mm256_madd_epi16(p, _mm256_set1_epi16(1)); }
// The largest of the 8 lanes (max is exact in any order).
HWY_INLINE float max_of_lanes(__m256 v) {
  __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
  return _mm_cvtss_f32(_mm_max_ss(m4, _mm_movehdup_ps(m4)));
}
// Four vectors of 8 int32 (each within int8's range) -> their 32 bytes in element order.
HWY_INLINE __m256i pack_i32_to_i8(const __m256i* v) {
  // the packs work per 128-bit lane: dwords (v0 lo, v1 lo, v2 lo, v3 lo | v0 hi, ...)
  const __m256i b =
      _mm256_packs_epi16(_mm256_packs_epi32(v[0], v[1]), _mm256_packs_epi32(v[2], v[3]));
  return _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}
// 8 bytes, zero-extended to 8 x int32.
HWY_INLINE __m256i load8_u8(const std::uint8_t* p) {
  return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
}
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

// acc + the int32 lane sums of u[i] * q[i] (u unsigned, q signed, as dot_u8i8). AVX3_DL: one
// vpdpbusd (AVX-512 VNNI, which that target's run-time check proves). It must be the EVEX
// encoding: the VEX one (for 128/256-bit vectors) is AVX-VNNI, a separate CPUID feature that no
// check proves (Zen 4 has AVX-512 VNNI but not AVX-VNNI) and that Highway 1.0.3's AVX3_DL target
// string nevertheless enables, so g++ would pick VEX for the intrinsic: inline assembly with the
// {evex} prefix fixes it (tests/isa/isa_gate.py checks every binary). The target string does
// not name avx512vnni, so the 512-bit intrinsic is refused too: inline assembly as well (only
// EVEX encodes zmm registers; clang included); clang keeps pmaddubsw + pmaddwd below 512 bits.
// No saturation either way: vpdpbusd adds exact 4-byte sums, pmaddubsw's pair sums stay below
// 2^15 for the readers' ranges (u <= 127).
#if HWY_TARGET == HWY_AVX3_DL
HWY_INLINE __m512i dpbusd(__m512i acc, __m512i u, __m512i q) {
  asm("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(u), "vm"(q));
  return acc;
}
#if defined(__GNUC__) && !defined(__clang__)
HWY_INLINE __m256i dpbusd(__m256i acc, __m256i u, __m256i q) {
  asm("%{evex%} vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(u), "vm"(q));
  return acc;
}
HWY_INLINE __m128i dpbusd(__m128i acc, __m128i u, __m128i q) {
  asm("%{evex%} vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(u), "vm"(q));
  return acc;
}
#endif
#endif
// AVX3_DL (VBMI): vpermb, byte i of the result = table[ix[i] % lanes] (the whole vector).
#if HWY_TARGET == HWY_AVX3_DL
HWY_INLINE __m512i permute_bytes(__m512i ix, __m512i table) {
  return _mm512_permutexvar_epi8(ix, table);
}
HWY_INLINE __m256i permute_bytes(__m256i ix, __m256i table) {
  return _mm256_permutexvar_epi8(ix, table);
}
HWY_INLINE __m128i permute_bytes(__m128i ix, __m128i table) {
  return _mm_permutexvar_epi8(ix, table);
}
#endif
template <class D8>
HWY_INLINE hn::Vec<hn::Repartition<std::int32_t, D8>> dot_acc_u8i8(
    D8 d8, hn::Vec<hn::Repartition<std::int32_t, D8>> acc, hn::Vec<hn::RebindToUnsigned<D8>> u,
    hn::Vec<D8> q) {
#if HWY_TARGET == HWY_AVX3_DL
  if constexpr (requires { dpbusd(acc.raw, u.raw, q.raw); })
    return hn::Vec<hn::Repartition<std::int32_t, D8>>{dpbusd(acc.raw, u.raw, q.raw)};
#endif
  return hn::Add(acc, dot_u8i8(d8, u, q));
}

// Int8 values -> f32 lanes of DF (DF's lanes of int8 at p converted exactly).
template <class DF> HWY_INLINE hn::Vec<DF> i8_to_f32(DF df, const std::int8_t* p) {
  const hn::Rebind<std::int32_t, DF> di;
  const hn::Rebind<std::int8_t, DF> d8;
  return hn::ConvertTo(df, hn::PromoteTo(di, hn::LoadU(d8, p)));
}
#endif  // HWY_TARGET != HWY_SCALAR

}  // namespace strata::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();
