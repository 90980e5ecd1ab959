// Per Highway target, x86 AVX2/AVX3/AVX3_DL only: the driver that runs a quantized weight
// through its `bytes` reader (32 values per 256-bit register, u8 x i8 multiply-adds) for NT
// tokens at a time (rows_x86), with a lane per block, in one summation order for every NT, and
// the legacy formats' prefill driver for 8 tokens with a lane per token (rows_x86_t8, another
// order). Included by model/matmul.cpp only.
//
// y += scale * dot(u, qx) + m_lo * sum16_lo + m_hi * sum16_hi, where u are the values as bytes
// and m the terms that undo their unsigned offset. Formats with one scale per 16 values
// multiply the pair sums by an int16 vector of the two scales (madd) before the float
// conversion.

#if defined(ENGINE_MODEL_MATMUL_DOT_X86_INL_HPP_) == defined(HWY_TARGET_TOGGLE)
#ifdef ENGINE_MODEL_MATMUL_DOT_X86_INL_HPP_
#undef ENGINE_MODEL_MATMUL_DOT_X86_INL_HPP_
#else
#define ENGINE_MODEL_MATMUL_DOT_X86_INL_HPP_
#endif

#include <cmath>
#include <cstdint>
#include <cstring>

#include "model/matmul/common-inl.hpp"

#ifdef ENGINE_MATMUL_X86
HWY_BEFORE_NAMESPACE();
namespace engine {
namespace HWY_NAMESPACE {
namespace {

// With AVX-512 VNNI (the AVX3_DL target's run-time check proves it), vpdpbusd does u8 x i8
// products and their sums by four in one instruction. It must be the EVEX encoding: the VEX one
// is AVX-VNNI, a separate CPUID feature that no check proves (Zen 4 has AVX-512 VNNI but not
// AVX-VNNI) and that Highway 1.0.3's AVX3_DL target string nevertheless enables, so g++ picks
// VEX for the intrinsic. Inline assembly with the {evex} prefix fixes the encoding
// (tests/isa/isa_gate.py checks every binary for it). Clang keeps vpmaddubsw + vpmaddwd.
#if HWY_TARGET == HWY_AVX3_DL && defined(__GNUC__) && !defined(__clang__)
#define ENGINE_MATMUL_VNNI 1
// acc + per-lane sums of four u8 (u) x i8 (c) products, EVEX-encoded.
HWY_INLINE __m256i dpbusd_evex(__m256i acc, __m256i u, __m256i c) {
  asm("%{evex%} vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(u), "vm"(c));
  return acc;
}
#endif

// Eight int32 lanes whose total is the dot product of the 32 values u (unsigned, or signed when
// kSigned) with the block's 32 coarse int8 activations x. Split formats (one scale per 16
// values) pass their scales per pair lane in sc16; the others pass nothing.
// Bounds: a u8 x i8 pair sum stays below 2^15 for |u| <= 128, |x| <= 127 (no saturation).
template <bool kSigned, bool kSplit>
HWY_INLINE __m256i int_dot32(__m256i u, const int8_t* x, __m256i sc16) {
  __m256i c = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x));
  if constexpr (kSigned) {
    c = _mm256_sign_epi8(c, u);
    u = _mm256_sign_epi8(u, u);
  }
  if constexpr (kSplit) return _mm256_madd_epi16(_mm256_maddubs_epi16(u, c), sc16);
#ifdef ENGINE_MATMUL_VNNI
  return dpbusd_evex(_mm256_setzero_si256(), u, c);
#else
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u, c), _mm256_set1_epi16(1));
#endif
}
// One 32-value block of a weight row (sub-block j of f) ready to multiply many tokens' blocks:
// set up once, applied to every token of a tile. One activation plane (kFine false): the values
// as bytes and, for split formats, their scales; u8 x i8 multiply-adds.
template <bool kFine, class F> struct block_mul {
  using R = typename F::bytes;
  __m256i u, sc16;
  HWY_INLINE block_mul(const R& f, int j, __m256i values) : u(values) {
    if constexpr (F::kSplit)
      sc16 = f.scales16(j);
    else
      sc16 = _mm256_set1_epi16(1);
  }
  HWY_INLINE __m256i operator()(const int8_t* x) const {
    return int_dot32<R::kSigned, F::kSplit>(u, x, sc16);
  }
};
// Two planes (kFine): the activations are stored as int16 (kActFine * c + f), so the values
// are widened to int16 once per block (times their 16-value scale for split formats: at most
// 63 * 128 in magnitude) and each token costs two vpmaddwd, exact like the u8 x i8 pair per
// plane they replace. A pmaddwd lane (two products) stays below 2^30.
template <class F> struct block_mul<true, F> {
  using R = typename F::bytes;
  __m256i lo, hi;  // values 0..15 and 16..31
  HWY_INLINE block_mul(const R& f, int j, __m256i values) {
    const __m128i v0 = _mm256_castsi256_si128(values), v1 = _mm256_extracti128_si256(values, 1);
    if constexpr (R::kSigned) {
      lo = _mm256_cvtepi8_epi16(v0);
      hi = _mm256_cvtepi8_epi16(v1);
    } else {
      lo = _mm256_cvtepu8_epi16(v0);
      hi = _mm256_cvtepu8_epi16(v1);
    }
    if constexpr (F::kSplit) {
      const __m256i sc = f.scales16(j);  // low 128 bits: the scale of values 0..15, high: 16..31
      lo = _mm256_mullo_epi16(lo, _mm256_permute2x128_si256(sc, sc, 0x00));
      hi = _mm256_mullo_epi16(hi, _mm256_permute2x128_si256(sc, sc, 0x11));
    }
  }
  block_mul() = default;
  // Q4_0 / Q4_1 (kNibbleFormat): the block's 16 nibble bytes at qs (value l in the low nibble
  // of byte l, l + 16 in the high one) widened straight from memory: one zero-extension, the
  // low nibbles by a mask, the high ones by a shift of the words (the bytes are at most 255).
  // The same int16 values as the constructor above, in 3 instructions instead of 7.
  static HWY_INLINE block_mul nibbles(const uint8_t* qs) {
    block_mul m;
    const __m256i w = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(qs)));
    m.lo = _mm256_and_si256(w, _mm256_set1_epi16(0x0F));
    m.hi = _mm256_srli_epi16(w, 4);
    return m;
  }
  // Q8_0 (kByteFormat): the block's 32 signed bytes at qs, each half sign-extended from memory.
  static HWY_INLINE block_mul signed_bytes(const uint8_t* qs) {
    block_mul m;
    m.lo = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(qs)));
    m.hi = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(qs + 16)));
    return m;
  }
  HWY_INLINE __m256i operator()(const int8_t* x) const {
    const __m256i* x16 = reinterpret_cast<const __m256i*>(x);
    return _mm256_add_epi32(_mm256_madd_epi16(lo, _mm256_loadu_si256(x16)),
                            _mm256_madd_epi16(hi, _mm256_loadu_si256(x16 + 1)));
  }
};

// The formats whose values are the nibbles of the block's last 16 bytes (Q4_0, Q4_1), or its
// last 32 bytes as int8 (Q8_0).
template <class F> inline constexpr bool kNibbleFormat = requires { F::bytes::kNibbleTail; };
template <class F> inline constexpr bool kByteFormat = requires { F::bytes::kByteTail; };

// The block_mul of sub-block j of f, a block at p: with two activation planes, the nibble and
// byte formats widen their values straight from memory.
template <bool kFine, class F>
HWY_INLINE block_mul<kFine, F> mul_of(const typename F::bytes& f, int j, const uint8_t* p) {
  constexpr std::size_t S = sizeof(typename F::block);
  if constexpr (kFine && kNibbleFormat<F>)
    return block_mul<true, F>::nibbles(p + S - 16);
  else if constexpr (kFine && kByteFormat<F>)
    return block_mul<true, F>::signed_bytes(p + S - 32);
  else
    return block_mul<kFine, F>(f, j, f.values(j));
}

// The total of the eight float lanes.
HWY_INLINE float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// Every driver below sums a token's products in one order, whatever the batch: per row, eight
// 32-blocks per step are reduced (exact integer sums) into one vector with a lane per block, so
// scales, activation scales and offset terms are vector loads and FMAs per eight blocks, into
// one accumulator of eight lanes (lane j: blocks 8i + j); the last n_blocks % 8 blocks of a
// legacy row add their eight partial sums to those lanes one block at a time; the row's value is
// the total of the lanes plus the scalar offset terms of those last blocks. NT tokens share each
// block's weight decoding; a token's float operations are the same for every NT, so its result
// is bit-identical in a batch of any size (tests/engine/matmul_test.cpp).
HWY_INLINE __m256 sum32x8(const float* s16) {  // s16[2b] + s16[2b + 1] for 8 blocks
  const __m256 h = _mm256_hadd_ps(_mm256_loadu_ps(s16), _mm256_loadu_ps(s16 + 8));
  return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(h), 0xD8));
}
// The 16-bit halves at byte offsets 0 and 2 of eight blocks `stride` bytes apart, as floats:
// eight 32-bit loads joined by unpacks. (This was one vpgatherdd: on Zen 4 the decode profile
// spent about 30 % of its samples waiting on it; the loads and unpacks give the same values.)
HWY_INLINE void gather_halves8(const uint8_t* p, int stride, __m256& lo, __m256& hi) {
  __m128i e[8];
  for (int j = 0; j < 8; ++j) {
    int32_t v;
    std::memcpy(&v, p + j * stride, 4);
    e[j] = _mm_cvtsi32_si128(v);
  }
  const __m128i q0 =
      _mm_unpacklo_epi64(_mm_unpacklo_epi32(e[0], e[1]), _mm_unpacklo_epi32(e[2], e[3]));
  const __m128i q1 =
      _mm_unpacklo_epi64(_mm_unpacklo_epi32(e[4], e[5]), _mm_unpacklo_epi32(e[6], e[7]));
  // [d0..d3, m0..m3] and [d4..d7, m4..m7]
  const __m128i split = _mm_setr_epi8(0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15);
  const __m128i s0 = _mm_shuffle_epi8(q0, split), s1 = _mm_shuffle_epi8(q1, split);
  lo = _mm256_cvtph_ps(_mm_unpacklo_epi64(s0, s1));
  hi = _mm256_cvtph_ps(_mm_unpackhi_epi64(s0, s1));
}

// s[t], lane j: the integer dot product of block j's weights (mul(j), a block_mul) with token
// t's block blk + j, for j = 0..7. Blocks are taken in pairs and reduced as they come (hadd),
// so at most two vectors per token are live between pairs.
template <int NT, class MakeMul>
HWY_INLINE void dots8(__m256i s[NT], MakeMul mul, const int8_t* const xq[NT], int64_t blk) {
  if constexpr (NT == 1) {  // decode: the eight products first (more independent work), then
    __m256i d[8];           // the same sums
    for (int j = 0; j < 8; ++j) d[j] = mul(j)(xq[0] + (blk + j) * 64);
    const __m256i h0 =
        _mm256_hadd_epi32(_mm256_hadd_epi32(d[0], d[1]), _mm256_hadd_epi32(d[2], d[3]));
    const __m256i h1 =
        _mm256_hadd_epi32(_mm256_hadd_epi32(d[4], d[5]), _mm256_hadd_epi32(d[6], d[7]));
    s[0] = _mm256_add_epi32(_mm256_permute2x128_si256(h0, h1, 0x20),
                            _mm256_permute2x128_si256(h0, h1, 0x31));
    return;
  }
  __m256i q[NT][2];
  for (int h = 0; h < 2; ++h) {  // blocks 4h..4h+3: q = hadd(hadd(d0, d1), hadd(d2, d3))
    const int j = 4 * h;
    __m256i p[NT];
    {
      const auto m0 = mul(j), m1 = mul(j + 1);
      for (int t = 0; t < NT; ++t)
        p[t] = _mm256_hadd_epi32(m0(xq[t] + (blk + j) * 64), m1(xq[t] + (blk + j + 1) * 64));
    }
    const auto m2 = mul(j + 2), m3 = mul(j + 3);
    for (int t = 0; t < NT; ++t)
      q[t][h] = _mm256_hadd_epi32(
          p[t], _mm256_hadd_epi32(m2(xq[t] + (blk + j + 2) * 64), m3(xq[t] + (blk + j + 3) * 64)));
  }
  for (int t = 0; t < NT; ++t)
    s[t] = _mm256_add_epi32(_mm256_permute2x128_si256(q[t][0], q[t][1], 0x20),
                            _mm256_permute2x128_si256(q[t][0], q[t][1], 0x31));
}

// Eight blocks of a legacy-format row (one scale per 32 values) from p: per token t, s[t] lane j
// = the integer dot of block j with token t's block blk + j; dw, mw = the blocks' scales and
// offset terms (m) as floats. Shared by the decode and batch drivers below.
template <class F, bool kFine, int NT>
HWY_INLINE void legacy_blocks8(const uint8_t* p, const int8_t* const xq[NT], int64_t blk,
                               __m256i s[NT], __m256& dw, __m256& mw) {
  using R = typename F::bytes;
  using Block = typename F::block;
  dots8<NT>(
      s,
      [&](int j) {
        const uint8_t* pj = p + j * sizeof(Block);
        return mul_of<kFine, F>(R(pj), 0, pj);
      },
      xq, blk);
  gather_halves8(p, static_cast<int>(sizeof(Block)), dw, mw);
  if constexpr (R::kMin && R::kMField < 0) mw = _mm256_mul_ps(dw, _mm256_set1_ps(R::kMFromD));
}

// ---- AVX3_DL, one token: weight bytes against the activations' byte planes ----------------------
// The int16 activation v = 256 h + l with l = the low byte as int8 and h = (v - l) / 256 (both in
// [-127, 127] for |v| <= 32385), so a block's dot with unsigned values u (Q4_0 / Q4_1 nibbles) is
// 256 dot(u, h) + dot(u, l): u8 x i8 products, one 512-bit vpdpbusd per plane and four blocks'
// 16-value halves, without widening to int16. The sums are the same integers as block_mul's and
// the float operations after them are unchanged, so the results are bit-identical. (Q8_0 the
// same way, its q entering as q + 128 and -128 sum(v) per block removing the offset, was 2-18 %
// slower than legacy_blocks8 on SmolLM2's output matrix: not kept.) matmul.cpp builds the planes
// once per call of up to 8 tokens (make_byte_planes).
#if HWY_TARGET == HWY_AVX3_DL && defined(__GNUC__)
#define ENGINE_MATMUL_VNNI512 1
// acc + per-lane sums of four u8 (u) x i8 (c) products (512-bit: only the EVEX form exists).
HWY_INLINE __m512i dpbusd512(__m512i acc, __m512i u, __m512i c) {
  asm("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(u), "v"(c));
  return acc;
}
HWY_INLINE __m512i load64(const void* p) { return _mm512_loadu_si512(p); }

// Per token, per group of four blocks (b = 4 g + i), 256 bytes: h of values 0..15 of block i at
// [16 i, 16 i + 16), h of values 16..31 at 64 + 16 i, l of values 0..15 at 128 + 16 i, l of
// values 16..31 at 192 + 16 i.
// Blocks [0, nb8) of each token (nb8 = nb / 8 * 8: the blocks the eight-block steps read), from
// the int16 activations q (64 bytes per block, nb blocks per token).
using matmul_detail::kPlaneBytes;
HWY_INLINE void make_byte_planes(const int8_t* q, int64_t nb, int64_t n_tokens, int8_t* out) {
  const int64_t nb8 = nb / 8 * 8;
  // bytes 0..31: the low bytes of the 32 values, 32..63: the high bytes
  alignas(64) static constexpr uint8_t kSplit[64] = {
      0,  2,  4,  6,  8,  10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32, 34, 36, 38, 40, 42,
      44, 46, 48, 50, 52, 54, 56, 58, 60, 62, 1,  3,  5,  7,  9,  11, 13, 15, 17, 19, 21, 23,
      25, 27, 29, 31, 33, 35, 37, 39, 41, 43, 45, 47, 49, 51, 53, 55, 57, 59, 61, 63};
  const __m512i split = _mm512_load_si512(kSplit);
  for (int64_t t = 0; t < n_tokens; ++t)
    for (int64_t b = 0; b < nb8; ++b) {
      const __m512i v = load64(q + (t * nb + b) * 64);
      const __m512i lh = _mm512_permutexvar_epi8(split, v);
      const __m256i l = _mm512_castsi512_si256(lh);
      // h = high byte + 1 where the low byte, read as int8, is negative
      const __m256i h = _mm256_sub_epi8(_mm512_extracti64x4_epi64(lh, 1),
                                        _mm256_cmpgt_epi8(_mm256_setzero_si256(), l));
      int8_t* g = out + (t * nb8 + b / 4 * 4) * kPlaneBytes + (b % 4) * 16;
      _mm_storeu_si128(reinterpret_cast<__m128i*>(g), _mm256_castsi256_si128(h));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(g + 64), _mm256_extracti128_si256(h, 1));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(g + 128), _mm256_castsi256_si128(l));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(g + 192), _mm256_extracti128_si256(l, 1));
    }
}

// Permutation tables for eight Q4_0 / Q4_1 blocks of S bytes (the nibbles are the last 16 bytes,
// d and m the first two halves).
template <int S> struct nibble_tables {
  static_assert(S % 2 == 0 && 4 * S > 64 && 4 * S <= 128, "four blocks span two loads");
  struct t {
    uint8_t qs[64];    // lane i of four blocks: their 16 nibble bytes
    uint16_t dm[32];   // d (words 0..7) and m (8..15) of eight blocks from loads at 0 and 4 S
    uint32_t sum[32];  // [0, 16): lanes 4j + 2h (j < 4) or 16 + 4(j - 4) + 2h of two vectors
  };
  static constexpr t make() {
    t r{};
    for (int i = 0; i < 4; ++i)
      for (int k = 0; k < 16; ++k) r.qs[16 * i + k] = static_cast<uint8_t>(i * S + S - 16 + k);
    for (int j = 0; j < 8; ++j) {
      const int w = j < 4 ? j * S / 2 : 32 + (j - 4) * S / 2;
      r.dm[j] = static_cast<uint16_t>(w);
      r.dm[8 + j] = static_cast<uint16_t>(w + 1);
    }
    for (int i = 0; i < 16; ++i) {
      const int j = i % 8, h = i / 8;
      const uint32_t lane = static_cast<uint32_t>((j < 4 ? 4 * j : 16 + 4 * (j - 4)) + 2 * h);
      r.sum[i] = lane;
      r.sum[16 + i] = lane + 1;
    }
    return r;
  }
  alignas(64) static constexpr t kT = make();
};

// Eight blocks of a Q4_0 / Q4_1 row from p against one token's planes a (512 bytes): s lane j =
// the integer dot of block j (the same integer as legacy_blocks8's), dw, mw its scale and offset
// term, as legacy_blocks8 gives them.
template <class F>
HWY_INLINE void nibble_blocks8(const uint8_t* p, const int8_t* a, __m256i& s, __m256& dw,
                               __m256& mw) {
  using R = typename F::bytes;
  constexpr int S = sizeof(typename F::block);
  using T = nibble_tables<S>;
  constexpr __mmask64 kRest = (__mmask64{1} << (4 * S - 64)) - 1;  // bytes [64, 4 S)
  const __m512i z0 = load64(p), z1 = _mm512_maskz_loadu_epi8(kRest, p + 64);
  const __m512i z2 = load64(p + 4 * S), z3 = _mm512_maskz_loadu_epi8(kRest, p + 4 * S + 64);
  const __m512 f = _mm512_cvtph_ps(
      _mm512_castsi512_si256(_mm512_permutex2var_epi16(z0, _mm512_load_si512(T::kT.dm), z2)));
  dw = _mm512_castps512_ps256(f);
  if constexpr (R::kMField < 0)
    mw = _mm256_mul_ps(dw, _mm256_set1_ps(R::kMFromD));
  else
    mw = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(f), 1));
  // four blocks (lane i: block i's 16 bytes) against the planes g: four int32 lanes per block
  const __m512i m4 = _mm512_set1_epi8(0x0F), iq = _mm512_load_si512(T::kT.qs);
  const auto dot4 = [&](__m512i q, const int8_t* g) {
    const __m512i lo = _mm512_and_si512(q, m4), hi = _mm512_and_si512(_mm512_srli_epi16(q, 4), m4);
    __m512i acc = dpbusd512(dpbusd512(_mm512_setzero_si512(), lo, load64(g)), hi, load64(g + 64));
    acc = _mm512_slli_epi32(acc, 8);  // 256 dot(u, h): |dot| <= 32 * 15 * 127
    return dpbusd512(dpbusd512(acc, lo, load64(g + 128)), hi, load64(g + 192));
  };
  const __m512i t03 = dot4(_mm512_permutex2var_epi8(z0, iq, z1), a);
  const __m512i t47 = dot4(_mm512_permutex2var_epi8(z2, iq, z3), a + 4 * kPlaneBytes);
  const __m512i r =
      _mm512_add_epi32(_mm512_permutex2var_epi32(t03, _mm512_load_si512(T::kT.sum), t47),
                       _mm512_permutex2var_epi32(t03, _mm512_load_si512(T::kT.sum + 16), t47));
  s = _mm256_add_epi32(_mm512_castsi512_si256(r), _mm512_extracti64x4_epi64(r, 1));
}
// nibble_blocks8 reads the kNibbleFormat formats.
#endif  // AVX3_DL

// Decode (one token) of a legacy format, RN rows side by side: each row's float operations
// are exactly those of rows_x86<F, NT> below (same lanes, same FMAs in the same order, same
// tail), so the result is bit-identical; the rows only interleave their instructions, so one
// row's integer work overlaps the other's scale loads and FMA chain (a 576-value row is about
// 250 instructions ending in a serial FMA chain and hsum, so little of the next row fits in the
// out-of-order window). The activation scale sums are shared by the rows.
template <class F, bool kFine, int RN>
HWY_INLINE void legacy_rows1(const job& jb, int64_t r, int64_t t0) {
  using R = typename F::bytes;
  using Block = typename F::block;
  const int64_t nb32 = jb.n_in / 32;
  const int8_t* const xq[1] = {jb.xq + t0 * 2 * jb.n_in};
  const float* xd = jb.xd + t0 * nb32;
  const float* xs = jb.xs + t0 * nb32 * 2;
  const uint8_t* row[RN];
  __m256 acc[RN];
  float tail[RN];
  for (int k = 0; k < RN; ++k) {
    row[k] = jb.w + static_cast<size_t>(r + k) * jb.row_bytes;
    acc[k] = _mm256_setzero_ps();
    tail[k] = 0;
  }
  int64_t blk = 0;
#ifdef ENGINE_MATMUL_VNNI512
  if constexpr (kFine && kNibbleFormat<F>)
    if (jb.xp) {  // the same lanes and float operations as the loop below
      const int8_t* a = jb.xp + t0 * (nb32 / 8 * 8) * kPlaneBytes;
      for (; blk + 8 <= nb32; blk += 8) {
        const __m256 dx = _mm256_loadu_ps(xd + blk);
        __m256 xs8 = _mm256_setzero_ps();
        if constexpr (R::kMin) xs8 = sum32x8(xs + 2 * blk);
        if constexpr (RN == 1)  // a long row: the stream 4 KB ahead (Zen 4, cold: -15-20 %)
          for (size_t o = 0; o < 8 * sizeof(Block); o += 64)
            _mm_prefetch(reinterpret_cast<const char*>(row[0]) +
                             static_cast<size_t>(blk) * sizeof(Block) + 4096 + o,
                         _MM_HINT_T0);
        for (int k = 0; k < RN; ++k) {
          __m256i s;
          __m256 dw, mw;
          nibble_blocks8<F>(row[k] + static_cast<size_t>(blk) * sizeof(Block),
                            a + blk * kPlaneBytes, s, dw, mw);
          acc[k] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_mul_ps(dw, dx), acc[k]);
          if constexpr (R::kMin) acc[k] = _mm256_fmadd_ps(mw, xs8, acc[k]);
        }
      }
    }
#endif
  for (; blk + 8 <= nb32; blk += 8) {
    const __m256 dx = _mm256_loadu_ps(xd + blk);
    __m256 xs8 = _mm256_setzero_ps();
    if constexpr (R::kMin) xs8 = sum32x8(xs + 2 * blk);
    for (int k = 0; k < RN; ++k) {
      const uint8_t* p = row[k] + static_cast<size_t>(blk) * sizeof(Block);
      __m256i s[1];
      __m256 dw, mw;
      legacy_blocks8<F, kFine, 1>(p, xq, blk, s, dw, mw);
      acc[k] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s[0]), _mm256_mul_ps(dw, dx), acc[k]);
      if constexpr (R::kMin) acc[k] = _mm256_fmadd_ps(mw, xs8, acc[k]);
    }
  }
  for (; blk < nb32; ++blk)  // the last nb32 % 8 blocks one at a time, as rows_x86
    for (int k = 0; k < RN; ++k) {
      const uint8_t* p = row[k] + static_cast<size_t>(blk) * sizeof(Block);
      const R f(p);
      const auto mul = mul_of<kFine, F>(f, 0, p);
      acc[k] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(mul(xq[0] + blk * 64)),
                               _mm256_set1_ps(f.scale(0) * xd[blk]), acc[k]);
      if constexpr (R::kMin) tail[k] = std::fma(f.m_lo(0), xs[2 * blk] + xs[2 * blk + 1], tail[k]);
    }
  for (int k = 0; k < RN; ++k) jb.y[t0 * jb.n_out + r + k] = hsum(acc[k]) + tail[k];
}

// Rows [r0, r1) for tokens [t0, t0 + NT).
template <class F, int NT, bool kFine>
HWY_NOINLINE void rows_x86(const job& jb, int64_t r0, int64_t r1, int64_t t0) {
  if constexpr (NT == 1 && F::kSub == 1) {  // decode of a legacy format
    // Short rows (SmolLM2's 576 values) in pairs, or fours where the byte-plane kernel runs
    // (the shorter plane kernel leaves room for more rows' work in flight: cold ffn_up -15 %);
    // long rows alone (pairs read 1536-value Q4_1 rows from DRAM 1.75x slower on Zen 4, four
    // rows 2x, probably the streams confusing the prefetcher).
    int64_t r = r0;
    if (jb.n_in <= 1024) {
#ifdef ENGINE_MATMUL_VNNI512
      if constexpr (kFine && kNibbleFormat<F>)
        if (jb.xp)
          for (; r + 4 <= r1; r += 4) legacy_rows1<F, kFine, 4>(jb, r, t0);
#endif
      for (; r + 2 <= r1; r += 2) legacy_rows1<F, kFine, 2>(jb, r, t0);
    }
    for (; r < r1; ++r) legacy_rows1<F, kFine, 1>(jb, r, t0);
    return;
  }
  using R = typename F::bytes;
  using Block = typename F::block;
  const int64_t nb32 = jb.n_in / 32;
  const int8_t* xq[NT];
  const float* xd[NT];
  const float* xs[NT];
  for (int t = 0; t < NT; ++t) {
    xq[t] = jb.xq + (t0 + t) * 2 * jb.n_in;
    xd[t] = jb.xd + (t0 + t) * nb32;
    xs[t] = jb.xs + (t0 + t) * nb32 * 2;
  }
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* row = jb.w + static_cast<size_t>(r) * jb.row_bytes;
    // One accumulator per token (scales and offset terms alike): NT = 8 tokens with a second
    // one would not fit in the registers with the block sums.
    __m256 acc[NT];
    float tail[NT];
    for (int t = 0; t < NT; ++t) {
      acc[t] = _mm256_setzero_ps();
      tail[t] = 0;
    }
    __m256i s[NT];
    if constexpr (F::kSub == 8) {
      for (int64_t blk = 0; blk < nb32; blk += 8) {
        const R f(row + static_cast<size_t>(blk / 8) * sizeof(Block));
        dots8<NT>(
            s, [&](int j) { return block_mul<kFine, F>(f, j, f.values(j)); }, xq, blk);
        for (int t = 0; t < NT; ++t) {
          const __m256 sums = _mm256_cvtepi32_ps(s[t]);
          const __m256 dx = _mm256_loadu_ps(xd[t] + blk);
          if constexpr (F::kSplit) {
            acc[t] = _mm256_fmadd_ps(sums, _mm256_mul_ps(dx, _mm256_set1_ps(f.d)), acc[t]);
            acc[t] =
                _mm256_fmadd_ps(_mm256_loadu_ps(f.ml), _mm256_loadu_ps(xs[t] + 2 * blk), acc[t]);
            acc[t] = _mm256_fmadd_ps(_mm256_loadu_ps(f.ml + 8),
                                     _mm256_loadu_ps(xs[t] + 2 * blk + 8), acc[t]);
          } else {
            acc[t] = _mm256_fmadd_ps(sums, _mm256_mul_ps(dx, _mm256_loadu_ps(f.dl)), acc[t]);
            acc[t] = _mm256_fmadd_ps(_mm256_loadu_ps(f.ml), sum32x8(xs[t] + 2 * blk), acc[t]);
          }
        }
      }
    } else {
      int64_t blk = 0;
      for (; blk + 8 <= nb32; blk += 8) {
        const uint8_t* p = row + static_cast<size_t>(blk) * sizeof(Block);
        __m256 dw, mw;
        legacy_blocks8<F, kFine, NT>(p, xq, blk, s, dw, mw);
        for (int t = 0; t < NT; ++t) {
          acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s[t]),
                                   _mm256_mul_ps(dw, _mm256_loadu_ps(xd[t] + blk)), acc[t]);
          if constexpr (R::kMin) acc[t] = _mm256_fmadd_ps(mw, sum32x8(xs[t] + 2 * blk), acc[t]);
        }
      }
      for (; blk < nb32; ++blk) {  // the last nb32 % 8 blocks one at a time
        const uint8_t* p = row + static_cast<size_t>(blk) * sizeof(Block);
        const R f(p);
        const auto mul = mul_of<kFine, F>(f, 0, p);
        for (int t = 0; t < NT; ++t) {
          // All lanes of acc are summed at the end, so a block's 8 partial sums can go in too.
          acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(mul(xq[t] + blk * 64)),
                                   _mm256_set1_ps(f.scale(0) * xd[t][blk]), acc[t]);
          // std::fma: the same rounding whether or not the compiler vectorizes over tokens.
          if constexpr (R::kMin)
            tail[t] = std::fma(f.m_lo(0), xs[t][2 * blk] + xs[t][2 * blk + 1], tail[t]);
        }
      }
    }
    for (int t = 0; t < NT; ++t) jb.y[(t0 + t) * jb.n_out + r] = hsum(acc[t]) + tail[t];
  }
}

// Eight tokens at once, for the prefill of legacy formats: the eight block dot products are
// reduced across lanes into one vector with one lane per token, so the per-block scale product,
// the float conversion and the offset term are vector operations over tokens. Its order is not
// rows_x86's (each token sums its blocks one after the other), so it runs only in calls of more
// than 8 tokens that do not ask for batch invariance: there it prefills up to 20 % faster than
// rows_x86<F, 8> (docs/engine-weights.md). Needs the activation scales transposed: jb.xdT[blk][t]
// and jb.xsT[2 blk + h][t] (row length jb.n_tokens).
HWY_INLINE __m256i lane_sums8(const __m256i d[8]) {
  const __m256i h01 = _mm256_hadd_epi32(d[0], d[1]), h23 = _mm256_hadd_epi32(d[2], d[3]);
  const __m256i h45 = _mm256_hadd_epi32(d[4], d[5]), h67 = _mm256_hadd_epi32(d[6], d[7]);
  const __m256i h0123 = _mm256_hadd_epi32(h01, h23), h4567 = _mm256_hadd_epi32(h45, h67);
  return _mm256_add_epi32(_mm256_permute2x128_si256(h0123, h4567, 0x20),
                          _mm256_permute2x128_si256(h0123, h4567, 0x31));
}

template <class F, bool kFine>
HWY_NOINLINE void rows_x86_t8(const job& jb, int64_t r0, int64_t r1, int64_t t0) {
  constexpr int64_t kBlockValues = 32 * F::kSub;
  const int64_t n_super = jb.n_in / kBlockValues;
  const int64_t nt = jb.n_tokens;
  const int8_t* xq = jb.xq + t0 * 2 * jb.n_in;
  using R = typename F::bytes;
  using Block = typename F::block;
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* row = jb.w + static_cast<size_t>(r) * jb.row_bytes;
    __m256 acc = _mm256_setzero_ps(), macc = _mm256_setzero_ps();
    for (int64_t sb = 0; sb < n_super; ++sb) {
      const uint8_t* p = row + static_cast<size_t>(sb) * sizeof(Block);
      const R f(p);
      for (int j = 0; j < F::kSub; ++j) {
        const int64_t blk = sb * F::kSub + j;
        const auto mul = mul_of<kFine, F>(f, j, p);
        __m256i d[8];
        for (int t = 0; t < 8; ++t) d[t] = mul(xq + t * 2 * jb.n_in + blk * 64);
        const __m256 dx = _mm256_loadu_ps(jb.xdT + blk * nt + t0);
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(lane_sums8(d)),
                              _mm256_mul_ps(dx, _mm256_set1_ps(f.scale(j))), acc);
        if constexpr (R::kMin) {
          macc = _mm256_fmadd_ps(_mm256_loadu_ps(jb.xsT + (2 * blk) * nt + t0),
                                 _mm256_set1_ps(f.m_lo(j)), macc);
          macc = _mm256_fmadd_ps(_mm256_loadu_ps(jb.xsT + (2 * blk + 1) * nt + t0),
                                 _mm256_set1_ps(f.m_hi(j)), macc);
        }
      }
    }
    alignas(32) float out[8];
    _mm256_store_ps(out, _mm256_add_ps(acc, macc));
    for (int t = 0; t < 8; ++t) jb.y[(t0 + t) * jb.n_out + r] = out[t];
  }
}

}  // namespace
}  // namespace HWY_NAMESPACE
}  // namespace engine
HWY_AFTER_NAMESPACE();
#endif  // ENGINE_MATMUL_X86

#endif  // ENGINE_MODEL_MATMUL_DOT_X86_INL_HPP_ toggle
