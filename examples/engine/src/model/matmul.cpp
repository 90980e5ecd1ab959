// Weight matmul kernels (Highway, compiled once per target, dispatched at run time).
//
// Per 32-value block of one weight row and one token:
//   y += sum_h d_h(W) * d(x) * sum_{16 values of half h} qw * qx  +  m_h(W) * sum16_h(x)
// where qw are the block's integer values (decoded to int16), d_h its scale for the half
// (legacy formats and Q4_K/Q5_K: one scale per 32; Q2_K/Q3_K/Q6_K: one per 16) and m_h the
// offset of formats that have one (Q4_1/Q5_1: +m; K-quants with mins: -dmin*m_j).

#ifndef ENGINE_MATMUL_COMMON
#define ENGINE_MATMUL_COMMON

// Also compile the AVX3_DL target (Ice Lake / Zen 4: AVX-512 VNNI) for this file only.
#ifndef HWY_WANT_AVX3_DL
#define HWY_WANT_AVX3_DL
#endif
// The token tiles below keep arrays of vectors, which SVE's sizeless types cannot be: on
// AArch64 this file compiles NEON (and the scalar fallback) only, and SVE machines run NEON.
#ifndef HWY_DISABLED_TARGETS
#define HWY_DISABLED_TARGETS (HWY_SVE | HWY_SVE2 | HWY_SVE_256 | HWY_SVE2_128)
#endif

#include "model/matmul.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "io/quant.hpp"

namespace engine {
namespace {

// One matmul call, as the kernels see it.
struct job {
  const uint8_t* w;  // row r starts at w + r * row_bytes
  size_t row_bytes;
  int64_t n_in, n_out, n_tokens;
  const int8_t* xq;  // quantized activations (fast path: 64 bytes per 32-block) ...
  const float* xd;
  const float* xs;
  const float* xdT;  // xd transposed: [n_in / 32][n_tokens] (when n_tokens >= 8)
  const float* xsT;  // xs transposed: [n_in / 16][n_tokens]
  bool fine;         // two activation planes (activations::fine) or the coarse one (q8)
  const float* xf;   // ... or float activations (float weights)
  float* y;          // [n_tokens][n_out]
};

// Bit l of a 16-bit word, for lane l.
alignas(64) constexpr uint16_t kBit16[16] = {1,   2,   4,    8,    16,   32,   64,    128,
                                             256, 512, 1024, 2048, 4096, 8192, 16384, 32768};

}  // namespace
}  // namespace engine

#endif  // ENGINE_MATMUL_COMMON

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "model/matmul.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

HWY_BEFORE_NAMESPACE();
namespace engine {
namespace HWY_NAMESPACE {
namespace {

namespace hn = hwy::HWY_NAMESPACE;

// Integer work happens on at most 16 int16 lanes: one half of a 32-value block.
using D16 = hn::CappedTag<int16_t, 16>;
using DU16 = hn::RebindToUnsigned<D16>;
using DU8 = hn::Rebind<uint8_t, D16>;
using DI8 = hn::Rebind<int8_t, D16>;
using D32 = hn::Repartition<int32_t, D16>;
using DF = hn::Repartition<float, D16>;
using V16 = hn::Vec<D16>;
using VU16 = hn::Vec<DU16>;

HWY_INLINE VU16 load_u8(const uint8_t* p) { return hn::PromoteTo(DU16(), hn::LoadU(DU8(), p)); }
HWY_INLINE V16 low_nibble(VU16 v) { return hn::BitCast(D16(), hn::And(v, hn::Set(DU16(), 0xF))); }
HWY_INLINE V16 high_nibble(VU16 v) { return hn::BitCast(D16(), hn::ShiftRight<4>(v)); }
// ((v >> shift) & mask) as int16.
HWY_INLINE V16 bits_at(VU16 v, int shift, uint16_t mask) {
  return hn::BitCast(D16(), hn::And(hn::ShiftRightSame(v, shift), hn::Set(DU16(), mask)));
}
// 16 where bit (k + lane) of `word` is set, else 0.
HWY_INLINE V16 bit16_of_word(uint32_t word, size_t k) {
  const DU16 du;
  const auto bit = hn::LoadU(du, kBit16 + k);
  return hn::BitCast(D16(),
                     hn::IfThenElseZero(hn::TestBit(hn::Set(du, static_cast<uint16_t>(word)), bit),
                                        hn::Set(du, 16)));
}

// ---- formats: decode(j, k, lo, hi) gives values [k, k+N) and [16+k, 16+k+N) of 32-block j ----
// kSplit: the two halves have their own scales; kMin: the format has an offset term.

struct fmt_q4_0 {
  static constexpr int kSub = 1;
  static constexpr bool kSplit = false, kMin = false;
  const block_q4_0* b;
  float d;
  explicit fmt_q4_0(const uint8_t* p)
      : b(reinterpret_cast<const block_q4_0*>(p)), d(half_to_float(b->d)) {}
  HWY_INLINE void decode(int, size_t k, V16& lo, V16& hi) const {
    const VU16 v = load_u8(b->qs + k);
    lo = hn::Sub(low_nibble(v), hn::Set(D16(), 8));
    hi = hn::Sub(high_nibble(v), hn::Set(D16(), 8));
  }
  float d_lo(int) const { return d; }
  float d_hi(int) const { return d; }
  float m_lo(int) const { return 0; }
  float m_hi(int) const { return 0; }
};

struct fmt_q4_1 {
  static constexpr int kSub = 1;
  static constexpr bool kSplit = false, kMin = true;
  const block_q4_1* b;
  float d, m;
  explicit fmt_q4_1(const uint8_t* p)
      : b(reinterpret_cast<const block_q4_1*>(p)), d(half_to_float(b->d)), m(half_to_float(b->m)) {}
  HWY_INLINE void decode(int, size_t k, V16& lo, V16& hi) const {
    const VU16 v = load_u8(b->qs + k);
    lo = low_nibble(v);
    hi = high_nibble(v);
  }
  float d_lo(int) const { return d; }
  float d_hi(int) const { return d; }
  float m_lo(int) const { return m; }
  float m_hi(int) const { return m; }
};

template <class Block, int kOffset, bool kHasMin> struct fmt_q5 {
  static constexpr int kSub = 1;
  static constexpr bool kSplit = false, kMin = kHasMin;
  const Block* b;
  float d, m;
  uint32_t qh;
  explicit fmt_q5(const uint8_t* p)
      : b(reinterpret_cast<const Block*>(p)), d(half_to_float(b->d)), m(0) {
    if constexpr (kHasMin) m = half_to_float(b->m);
    std::memcpy(&qh, b->qh, 4);
  }
  HWY_INLINE void decode(int, size_t k, V16& lo, V16& hi) const {
    const VU16 v = load_u8(b->qs + k);
    lo = hn::Or(low_nibble(v), bit16_of_word(qh, k));
    hi = hn::Or(high_nibble(v), bit16_of_word(qh >> 16, k));
    if constexpr (kOffset != 0) {
      lo = hn::Sub(lo, hn::Set(D16(), kOffset));
      hi = hn::Sub(hi, hn::Set(D16(), kOffset));
    }
  }
  float d_lo(int) const { return d; }
  float d_hi(int) const { return d; }
  float m_lo(int) const { return m; }
  float m_hi(int) const { return m; }
};
using fmt_q5_0 = fmt_q5<block_q5_0, 16, false>;
using fmt_q5_1 = fmt_q5<block_q5_1, 0, true>;

struct fmt_q8_0 {
  static constexpr int kSub = 1;
  static constexpr bool kSplit = false, kMin = false;
  const block_q8_0* b;
  float d;
  explicit fmt_q8_0(const uint8_t* p)
      : b(reinterpret_cast<const block_q8_0*>(p)), d(half_to_float(b->d)) {}
  HWY_INLINE void decode(int, size_t k, V16& lo, V16& hi) const {
    lo = hn::PromoteTo(D16(), hn::LoadU(DI8(), b->qs + k));
    hi = hn::PromoteTo(D16(), hn::LoadU(DI8(), b->qs + 16 + k));
  }
  float d_lo(int) const { return d; }
  float d_hi(int) const { return d; }
  float m_lo(int) const { return 0; }
  float m_hi(int) const { return 0; }
};

// K-quants: a 256-value super-block is eight 32-blocks j = 0..7; scales unpacked once.
struct fmt_q2_k {
  static constexpr int kSub = 8;
  static constexpr bool kSplit = true, kMin = true;
  const block_q2_K* b;
  float dl[16], ml[16];
  explicit fmt_q2_k(const uint8_t* p) : b(reinterpret_cast<const block_q2_K*>(p)) {
    const float d = half_to_float(b->d), dmin = half_to_float(b->dmin);
    for (int i = 0; i < 16; ++i) {
      dl[i] = d * static_cast<float>(b->scales[i] & 0xF);
      ml[i] = -dmin * static_cast<float>(b->scales[i] >> 4);
    }
  }
  // 32-block j: 128-half n = j / 4, shift 2 * (j % 4) within bytes qs[32 n ..].
  HWY_INLINE void decode(int j, size_t k, V16& lo, V16& hi) const {
    const uint8_t* q = b->qs + 32 * (j / 4);
    const int shift = 2 * (j % 4);
    lo = bits_at(load_u8(q + k), shift, 3);
    hi = bits_at(load_u8(q + 16 + k), shift, 3);
  }
  float d_lo(int j) const { return dl[2 * j]; }
  float d_hi(int j) const { return dl[2 * j + 1]; }
  float m_lo(int j) const { return ml[2 * j]; }
  float m_hi(int j) const { return ml[2 * j + 1]; }
};

struct fmt_q3_k {
  static constexpr int kSub = 8;
  static constexpr bool kSplit = true, kMin = false;
  const block_q3_K* b;
  float dl[16];
  explicit fmt_q3_k(const uint8_t* p) : b(reinterpret_cast<const block_q3_K*>(p)) {
    const float d = half_to_float(b->d);
    int8_t sc[16];
    q3_k_scales(b->scales, sc);
    for (int i = 0; i < 16; ++i) dl[i] = d * static_cast<float>(sc[i]);
  }
  // Like Q2_K, minus 4 where the value's bit (4 n + j % 4) of hmask[l] is clear.
  HWY_INLINE void decode(int j, size_t k, V16& lo, V16& hi) const {
    const uint8_t* q = b->qs + 32 * (j / 4);
    const int shift = 2 * (j % 4);
    const DU16 du;
    const auto bit = hn::Set(du, static_cast<uint16_t>(1u << j));
    const auto four = hn::Set(du, 4);
    lo = hn::Sub(
        bits_at(load_u8(q + k), shift, 3),
        hn::BitCast(D16(), hn::IfThenZeroElse(hn::TestBit(load_u8(b->hmask + k), bit), four)));
    hi = hn::Sub(
        bits_at(load_u8(q + 16 + k), shift, 3),
        hn::BitCast(D16(), hn::IfThenZeroElse(hn::TestBit(load_u8(b->hmask + 16 + k), bit), four)));
  }
  float d_lo(int j) const { return dl[2 * j]; }
  float d_hi(int j) const { return dl[2 * j + 1]; }
  float m_lo(int) const { return 0; }
  float m_hi(int) const { return 0; }
};

// Q4_K / Q5_K: 64-value groups g = j / 2 use bytes qs[32 g ..], low nibbles for even j.
template <class Block, bool kHigh> struct fmt_q45_k {
  static constexpr int kSub = 8;
  static constexpr bool kSplit = false, kMin = true;
  const Block* b;
  float dl[8], ml[8];
  explicit fmt_q45_k(const uint8_t* p) : b(reinterpret_cast<const Block*>(p)) {
    const float d = half_to_float(b->d), dmin = half_to_float(b->dmin);
    for (int j = 0; j < 8; ++j) {
      uint8_t sc, m;
      k_scale_min(j, b->scales, sc, m);
      dl[j] = d * static_cast<float>(sc);
      ml[j] = -dmin * static_cast<float>(m);
    }
  }
  HWY_INLINE void decode(int j, size_t k, V16& lo, V16& hi) const {
    const uint8_t* q = b->qs + 32 * (j / 2);
    const VU16 a = load_u8(q + k), c = load_u8(q + 16 + k);
    if (j & 1) {
      lo = high_nibble(a);
      hi = high_nibble(c);
    } else {
      lo = low_nibble(a);
      hi = low_nibble(c);
    }
    if constexpr (kHigh) {  // fifth bit: bit j of qh[l]
      lo = hn::Or(lo, hn::ShiftLeft<4>(bits_at(load_u8(b->qh + k), j, 1)));
      hi = hn::Or(hi, hn::ShiftLeft<4>(bits_at(load_u8(b->qh + 16 + k), j, 1)));
    }
  }
  float d_lo(int j) const { return dl[j]; }
  float d_hi(int j) const { return dl[j]; }
  float m_lo(int j) const { return ml[j]; }
  float m_hi(int j) const { return ml[j]; }
};
using fmt_q4_k = fmt_q45_k<block_q4_K, false>;
using fmt_q5_k = fmt_q45_k<block_q5_K, true>;

struct fmt_q6_k {
  static constexpr int kSub = 8;
  static constexpr bool kSplit = true, kMin = false;
  const block_q6_K* b;
  float dl[16];
  explicit fmt_q6_k(const uint8_t* p) : b(reinterpret_cast<const block_q6_K*>(p)) {
    const float d = half_to_float(b->d);
    for (int i = 0; i < 16; ++i) dl[i] = d * static_cast<float>(b->scales[i]);
  }
  // 128-half n = j / 4, jj = j % 4: low bits from ql[64 n + 32 (jj & 1) + l] (nibble jj >> 1),
  // high 2 bits from qh[32 n + l] >> 2 jj; minus 32.
  HWY_INLINE void decode(int j, size_t k, V16& lo, V16& hi) const {
    const int n = j / 4, jj = j % 4;
    const uint8_t* ql = b->ql + 64 * n + 32 * (jj & 1);
    const uint8_t* qh = b->qh + 32 * n;
    const int nib = 4 * (jj >> 1);
    const V16 off = hn::Set(D16(), 32);
    lo = hn::Sub(hn::Or(bits_at(load_u8(ql + k), nib, 0xF),
                        hn::ShiftLeft<4>(bits_at(load_u8(qh + k), 2 * jj, 3))),
                 off);
    hi = hn::Sub(hn::Or(bits_at(load_u8(ql + 16 + k), nib, 0xF),
                        hn::ShiftLeft<4>(bits_at(load_u8(qh + 16 + k), 2 * jj, 3))),
                 off);
  }
  float d_lo(int j) const { return dl[2 * j]; }
  float d_hi(int j) const { return dl[2 * j + 1]; }
  float m_lo(int) const { return 0; }
  float m_hi(int) const { return 0; }
};

// Activations [k, k + N) of block `blk` as int16: the stored kActFine * coarse + fine (at most
// 32385 in magnitude), or the coarse int8 value widened.
template <bool kFine> HWY_INLINE V16 act16(const int8_t* blk, size_t k) {
  const D16 d16;
  if constexpr (!kFine) return hn::PromoteTo(d16, hn::LoadU(DI8(), blk + k));
  return hn::LoadU(d16, reinterpret_cast<const int16_t*>(blk) + k);
}

// Rows [r0, r1) for tokens [t0, t0 + NT): the integer path.
template <class Fmt, int NT, bool kFine>
HWY_NOINLINE void rows_q(const job& jb, int64_t r0, int64_t r1, int64_t t0) {
  const D16 d16;
  const D32 d32;
  const DF df;
  constexpr size_t kN = hn::MaxLanes(D16());
  const size_t n16 = hn::Lanes(d16);
  using Block = std::remove_pointer_t<decltype(std::declval<Fmt>().b)>;
  constexpr int64_t kBlockValues = 32 * Fmt::kSub;
  const int64_t n_super = jb.n_in / kBlockValues;
  const int64_t nb32 = jb.n_in / 32;
  const int8_t* xq[NT];
  const float* xd[NT];
  const float* xs[NT];
  for (int t = 0; t < NT; ++t) {
    xq[t] = jb.xq + (t0 + t) * 2 * jb.n_in;
    xd[t] = jb.xd + (t0 + t) * nb32;
    xs[t] = jb.xs + (t0 + t) * nb32 * 2;
  }
  (void)kN;
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* row = jb.w + static_cast<size_t>(r) * jb.row_bytes;
    hn::Vec<DF> acc[NT];
    float macc[NT];
    for (int t = 0; t < NT; ++t) {
      acc[t] = hn::Zero(df);
      macc[t] = 0;
    }
    for (int64_t sb = 0; sb < n_super; ++sb) {
      const Fmt f(row + static_cast<size_t>(sb) * sizeof(Block));
      for (int j = 0; j < Fmt::kSub; ++j) {
        const int64_t blk = sb * Fmt::kSub + j;
        hn::Vec<D32> s_lo[NT], s_hi[NT], s_lo1[NT], s_hi1[NT];
        for (int t = 0; t < NT; ++t) s_lo[t] = s_hi[t] = s_lo1[t] = s_hi1[t] = hn::Zero(d32);
        for (size_t k = 0; k < 16; k += n16) {
          V16 lo, hi;
          f.decode(j, k, lo, hi);
          for (int t = 0; t < NT; ++t) {
            const int8_t* x = xq[t] + blk * 64;
            const V16 x_lo = act16<kFine>(x, k), x_hi = act16<kFine>(x, 16 + k);
            s_lo[t] = hn::ReorderWidenMulAccumulate(d32, lo, x_lo, s_lo[t], s_lo1[t]);
            if constexpr (Fmt::kSplit)
              s_hi[t] = hn::ReorderWidenMulAccumulate(d32, hi, x_hi, s_hi[t], s_hi1[t]);
            else
              s_lo[t] = hn::ReorderWidenMulAccumulate(d32, hi, x_hi, s_lo[t], s_lo1[t]);
          }
        }
        for (int t = 0; t < NT; ++t) {
          const float dx = xd[t][blk];
          const auto lo_sum = hn::ConvertTo(df, hn::RearrangeToOddPlusEven(s_lo[t], s_lo1[t]));
          acc[t] = hn::MulAdd(lo_sum, hn::Set(df, f.d_lo(j) * dx), acc[t]);
          if constexpr (Fmt::kSplit) {
            const auto hi_sum = hn::ConvertTo(df, hn::RearrangeToOddPlusEven(s_hi[t], s_hi1[t]));
            acc[t] = hn::MulAdd(hi_sum, hn::Set(df, f.d_hi(j) * dx), acc[t]);
          }
          if constexpr (Fmt::kMin)
            macc[t] += f.m_lo(j) * xs[t][2 * blk] + f.m_hi(j) * xs[t][2 * blk + 1];
        }
      }
    }
    for (int t = 0; t < NT; ++t)
      jb.y[(t0 + t) * jb.n_out + r] = hn::GetLane(hn::SumOfLanes(df, acc[t])) + macc[t];
  }
}

// ---- x86 (AVX2, AVX3): 32 values per 256-bit register as bytes, u8 x i8 multiply-adds ----------
// Each format gives the 32 values of 32-block j as unsigned bytes (signed for Q8_0), in order,
// and the terms that undo the unsigned offset: y += scale * dot(u, qx) + m_lo * sum16_lo +
// m_hi * sum16_hi. Formats with one scale per 16 values multiply the pair sums by an int16
// vector of the two scales (madd) before the float conversion.
#if HWY_TARGET == HWY_AVX2 || HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
#define ENGINE_MATMUL_X86 1
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

HWY_INLINE float f16(uint16_t h) { return _cvtsh_ss(h); }
HWY_INLINE __m256i load32(const uint8_t* p) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}
HWY_INLINE __m256i mask_bytes(int v) { return _mm256_set1_epi8(static_cast<char>(v)); }
// (v >> shift) & mask on every byte (shift by a run-time count).
HWY_INLINE __m256i bits32(__m256i v, int shift, int mask) {
  return _mm256_and_si256(_mm256_srl_epi16(v, _mm_cvtsi32_si128(shift)), mask_bytes(mask));
}
// Values 0..15 from the low nibbles of 16 bytes, 16..31 from the high nibbles.
HWY_INLINE __m256i nibbles16(const uint8_t* p) {
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  const __m256i both = _mm256_inserti128_si256(_mm256_castsi128_si256(v), _mm_srli_epi16(v, 4), 1);
  return _mm256_and_si256(both, mask_bytes(0x0F));
}
// Byte i = 0x10 where bit i of `bits` is set, else 0.
HWY_INLINE __m256i bit4_of_word(uint32_t bits) {
  const __m256i spread =
      _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(bits)),
                          _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202,
                                            0x0101010101010101, 0x0000000000000000));
  const __m256i select = _mm256_set1_epi64x(static_cast<int64_t>(0x8040201008040201ull));
  return _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(spread, select), select),
                          mask_bytes(0x10));
}
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
template <bool kFine, class Fmt> struct block_mul {
  __m256i u, sc16;
  HWY_INLINE block_mul(const Fmt& f, int j, __m256i values) : u(values) {
    if constexpr (Fmt::kSplit)
      sc16 = f.scales16(j);
    else
      sc16 = _mm256_set1_epi16(1);
  }
  HWY_INLINE __m256i operator()(const int8_t* x) const {
    return int_dot32<Fmt::kSigned, Fmt::kSplit>(u, x, sc16);
  }
};
// Two planes (kFine): the activations are stored as int16 (kActFine * c + f), so the values
// are widened to int16 once per block (times their 16-value scale for split formats: at most
// 63 * 128 in magnitude) and each token costs two vpmaddwd, exact like the u8 x i8 pair per
// plane they replace. A pmaddwd lane (two products) stays below 2^30.
template <class Fmt> struct block_mul<true, Fmt> {
  __m256i lo, hi;  // values 0..15 and 16..31
  HWY_INLINE block_mul(const Fmt& f, int j, __m256i values) {
    const __m128i v0 = _mm256_castsi256_si128(values), v1 = _mm256_extracti128_si256(values, 1);
    if constexpr (Fmt::kSigned) {
      lo = _mm256_cvtepi8_epi16(v0);
      hi = _mm256_cvtepi8_epi16(v1);
    } else {
      lo = _mm256_cvtepu8_epi16(v0);
      hi = _mm256_cvtepu8_epi16(v1);
    }
    if constexpr (Fmt::kSplit) {
      const __m256i sc = f.scales16(j);  // low 128 bits: the scale of values 0..15, high: 16..31
      lo = _mm256_mullo_epi16(lo, _mm256_permute2x128_si256(sc, sc, 0x00));
      hi = _mm256_mullo_epi16(hi, _mm256_permute2x128_si256(sc, sc, 0x11));
    }
  }
  HWY_INLINE __m256i operator()(const int8_t* x) const {
    const __m256i* x16 = reinterpret_cast<const __m256i*>(x);
    return _mm256_add_epi32(_mm256_madd_epi16(lo, _mm256_loadu_si256(x16)),
                            _mm256_madd_epi16(hi, _mm256_loadu_si256(x16 + 1)));
  }
};

// Legacy formats also say where d (and m) are, for gathering 8 blocks' scales at once:
// kMField: byte offset of m, or -1 when m = kMFromD * d.
struct x86_q4_0 {  // nibble - 8 = unsigned nibble with m = -8 d
  static constexpr int kSub = 1, kMField = -1;
  static constexpr float kMFromD = -8;
  static constexpr bool kSplit = false, kSigned = false, kMin = true;
  const block_q4_0* b;
  float d;
  explicit x86_q4_0(const uint8_t* p) : b(reinterpret_cast<const block_q4_0*>(p)), d(f16(b->d)) {}
  HWY_INLINE __m256i values(int) const { return nibbles16(b->qs); }
  float scale(int) const { return d; }
  float m_lo(int) const { return -8 * d; }
  float m_hi(int) const { return -8 * d; }
};
struct x86_q4_1 {
  static constexpr int kSub = 1, kMField = 2;
  static constexpr float kMFromD = 0;
  static constexpr bool kSplit = false, kSigned = false, kMin = true;
  const block_q4_1* b;
  float d, m;
  explicit x86_q4_1(const uint8_t* p)
      : b(reinterpret_cast<const block_q4_1*>(p)), d(f16(b->d)), m(f16(b->m)) {}
  HWY_INLINE __m256i values(int) const { return nibbles16(b->qs); }
  float scale(int) const { return d; }
  float m_lo(int) const { return m; }
  float m_hi(int) const { return m; }
};
template <class Block, int kOffset, bool kHasMin> struct x86_q5 {
  static constexpr int kSub = 1, kMField = kHasMin ? 2 : -1;
  static constexpr float kMFromD = -static_cast<float>(kOffset);
  static constexpr bool kSplit = false, kSigned = false, kMin = true;
  const Block* b;
  float d, m;
  explicit x86_q5(const uint8_t* p) : b(reinterpret_cast<const Block*>(p)), d(f16(b->d)) {
    if constexpr (kHasMin)
      m = f16(b->m);
    else
      m = -static_cast<float>(kOffset) * d;
  }
  HWY_INLINE __m256i values(int) const {
    uint32_t qh;
    std::memcpy(&qh, b->qh, 4);
    return _mm256_or_si256(nibbles16(b->qs), bit4_of_word(qh));
  }
  float scale(int) const { return d; }
  float m_lo(int) const { return m; }
  float m_hi(int) const { return m; }
};
using x86_q5_0 = x86_q5<block_q5_0, 16, false>;
using x86_q5_1 = x86_q5<block_q5_1, 0, true>;
struct x86_q8_0 {
  static constexpr int kSub = 1, kMField = -1;
  static constexpr float kMFromD = 0;
  static constexpr bool kSplit = false, kSigned = true, kMin = false;
  const block_q8_0* b;
  float d;
  explicit x86_q8_0(const uint8_t* p) : b(reinterpret_cast<const block_q8_0*>(p)), d(f16(b->d)) {}
  HWY_INLINE __m256i values(int) const { return load32(reinterpret_cast<const uint8_t*>(b->qs)); }
  float scale(int) const { return d; }
  float m_lo(int) const { return 0; }
  float m_hi(int) const { return 0; }
};
struct x86_q2_k {
  static constexpr int kSub = 8;
  static constexpr bool kSplit = true, kSigned = false, kMin = true;
  const block_q2_K* b;
  float d;
  float ml[16];
  explicit x86_q2_k(const uint8_t* p) : b(reinterpret_cast<const block_q2_K*>(p)), d(f16(b->d)) {
    const float dmin = f16(b->dmin);
    for (int i = 0; i < 16; ++i) ml[i] = -dmin * static_cast<float>(b->scales[i] >> 4);
  }
  HWY_INLINE __m256i values(int j) const {
    return bits32(load32(b->qs + 32 * (j / 4)), 2 * (j % 4), 3);
  }
  HWY_INLINE __m256i scales16(int j) const {
    return _mm256_set_m128i(_mm_set1_epi16(b->scales[2 * j + 1] & 0xF),
                            _mm_set1_epi16(b->scales[2 * j] & 0xF));
  }
  float scale(int) const { return d; }
  float m_lo(int j) const { return ml[2 * j]; }
  float m_hi(int j) const { return ml[2 * j + 1]; }
};
struct x86_q3_k {  // q + 4 = low 2 bits | hmask bit << 2, unsigned in [0, 8)
  static constexpr int kSub = 8;
  static constexpr bool kSplit = true, kSigned = false, kMin = true;
  const block_q3_K* b;
  float d;
  int8_t sc[16];
  float ml[16];
  explicit x86_q3_k(const uint8_t* p) : b(reinterpret_cast<const block_q3_K*>(p)), d(f16(b->d)) {
    q3_k_scales(b->scales, sc);
    for (int i = 0; i < 16; ++i) ml[i] = -4 * d * static_cast<float>(sc[i]);
  }
  HWY_INLINE __m256i values(int j) const {
    const __m256i low = bits32(load32(b->qs + 32 * (j / 4)), 2 * (j % 4), 3);
    return _mm256_or_si256(low, _mm256_slli_epi16(bits32(load32(b->hmask), j, 1), 2));
  }
  HWY_INLINE __m256i scales16(int j) const {
    return _mm256_set_m128i(_mm_set1_epi16(sc[2 * j + 1]), _mm_set1_epi16(sc[2 * j]));
  }
  float scale(int) const { return d; }
  float m_lo(int j) const { return ml[2 * j]; }
  float m_hi(int j) const { return ml[2 * j + 1]; }
};
template <class Block, bool kHigh> struct x86_q45_k {
  static constexpr int kSub = 8;
  static constexpr bool kSplit = false, kSigned = false, kMin = true;
  const Block* b;
  float dl[8], ml[8];
  explicit x86_q45_k(const uint8_t* p) : b(reinterpret_cast<const Block*>(p)) {
    const float d = f16(b->d), dmin = f16(b->dmin);
    for (int j = 0; j < 8; ++j) {
      uint8_t sc, m;
      k_scale_min(j, b->scales, sc, m);
      dl[j] = d * static_cast<float>(sc);
      ml[j] = -dmin * static_cast<float>(m);
    }
  }
  HWY_INLINE __m256i values(int j) const {
    __m256i v = bits32(load32(b->qs + 32 * (j / 2)), 4 * (j & 1), 0xF);
    if constexpr (kHigh) v = _mm256_or_si256(v, _mm256_slli_epi16(bits32(load32(b->qh), j, 1), 4));
    return v;
  }
  float scale(int j) const { return dl[j]; }
  float m_lo(int j) const { return ml[j]; }
  float m_hi(int j) const { return ml[j]; }
};
using x86_q4_k = x86_q45_k<block_q4_K, false>;
using x86_q5_k = x86_q45_k<block_q5_K, true>;
struct x86_q6_k {  // q + 32 in [0, 64)
  static constexpr int kSub = 8;
  static constexpr bool kSplit = true, kSigned = false, kMin = true;
  const block_q6_K* b;
  float d;
  float ml[16];
  explicit x86_q6_k(const uint8_t* p) : b(reinterpret_cast<const block_q6_K*>(p)), d(f16(b->d)) {
    for (int i = 0; i < 16; ++i) ml[i] = -32 * d * static_cast<float>(b->scales[i]);
  }
  HWY_INLINE __m256i values(int j) const {
    const int n = j / 4, jj = j % 4;
    const __m256i low = bits32(load32(b->ql + 64 * n + 32 * (jj & 1)), 4 * (jj >> 1), 0xF);
    return _mm256_or_si256(low, _mm256_slli_epi16(bits32(load32(b->qh + 32 * n), 2 * jj, 3), 4));
  }
  HWY_INLINE __m256i scales16(int j) const {
    return _mm256_set_m128i(_mm_set1_epi16(b->scales[2 * j + 1]), _mm_set1_epi16(b->scales[2 * j]));
  }
  float scale(int) const { return d; }
  float m_lo(int j) const { return ml[2 * j]; }
  float m_hi(int j) const { return ml[2 * j + 1]; }
};

HWY_INLINE float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

template <class Fmt, int NT, bool kFine>
HWY_NOINLINE void rows_x86(const job& jb, int64_t r0, int64_t r1, int64_t t0) {
  constexpr int64_t kBlockValues = 32 * Fmt::kSub;
  const int64_t n_super = jb.n_in / kBlockValues;
  const int64_t nb32 = jb.n_in / 32;
  const int8_t* xq[NT];
  const float* xd[NT];
  const float* xs[NT];
  for (int t = 0; t < NT; ++t) {
    xq[t] = jb.xq + (t0 + t) * 2 * jb.n_in;
    xd[t] = jb.xd + (t0 + t) * nb32;
    xs[t] = jb.xs + (t0 + t) * nb32 * 2;
  }
  using Block = std::remove_pointer_t<decltype(std::declval<Fmt>().b)>;
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* row = jb.w + static_cast<size_t>(r) * jb.row_bytes;
    __m256 acc[NT];
    float macc[NT];
    for (int t = 0; t < NT; ++t) {
      acc[t] = _mm256_setzero_ps();
      macc[t] = 0;
    }
    for (int64_t sb = 0; sb < n_super; ++sb) {
      const uint8_t* next = row + static_cast<size_t>(sb + 4) * sizeof(Block);
      _mm_prefetch(reinterpret_cast<const char*>(next), _MM_HINT_T0);
      const Fmt f(row + static_cast<size_t>(sb) * sizeof(Block));
      for (int j = 0; j < Fmt::kSub; ++j) {
        const int64_t blk = sb * Fmt::kSub + j;
        const block_mul<kFine, Fmt> mul(f, j, f.values(j));
        const float s = f.scale(j);
        for (int t = 0; t < NT; ++t) {
          const __m256 sum = _mm256_cvtepi32_ps(mul(xq[t] + blk * 64));
          acc[t] = _mm256_fmadd_ps(sum, _mm256_set1_ps(s * xd[t][blk]), acc[t]);
          if constexpr (Fmt::kMin)
            macc[t] += f.m_lo(j) * xs[t][2 * blk] + f.m_hi(j) * xs[t][2 * blk + 1];
        }
      }
    }
    for (int t = 0; t < NT; ++t) jb.y[(t0 + t) * jb.n_out + r] = hsum(acc[t]) + macc[t];
  }
}

// Eight tokens at once (prefill): the eight block dot products are reduced across lanes into
// one vector with one lane per token, so the per-block scale product, the float conversion and
// the offset term are vector operations over tokens. Needs the activation scales transposed:
// jb.xdT[blk][t] and jb.xsT[2 blk + h][t] (row length jb.n_tokens).
HWY_INLINE __m256i lane_sums8(const __m256i d[8]) {
  const __m256i h01 = _mm256_hadd_epi32(d[0], d[1]), h23 = _mm256_hadd_epi32(d[2], d[3]);
  const __m256i h45 = _mm256_hadd_epi32(d[4], d[5]), h67 = _mm256_hadd_epi32(d[6], d[7]);
  const __m256i h0123 = _mm256_hadd_epi32(h01, h23), h4567 = _mm256_hadd_epi32(h45, h67);
  return _mm256_add_epi32(_mm256_permute2x128_si256(h0123, h4567, 0x20),
                          _mm256_permute2x128_si256(h0123, h4567, 0x31));
}

template <class Fmt, bool kFine>
HWY_NOINLINE void rows_x86_t8(const job& jb, int64_t r0, int64_t r1, int64_t t0) {
  constexpr int64_t kBlockValues = 32 * Fmt::kSub;
  const int64_t n_super = jb.n_in / kBlockValues;
  const int64_t nt = jb.n_tokens;
  const int8_t* xq = jb.xq + t0 * 2 * jb.n_in;
  using Block = std::remove_pointer_t<decltype(std::declval<Fmt>().b)>;
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* row = jb.w + static_cast<size_t>(r) * jb.row_bytes;
    __m256 acc = _mm256_setzero_ps(), macc = _mm256_setzero_ps();
    for (int64_t sb = 0; sb < n_super; ++sb) {
      const Fmt f(row + static_cast<size_t>(sb) * sizeof(Block));
      for (int j = 0; j < Fmt::kSub; ++j) {
        const int64_t blk = sb * Fmt::kSub + j;
        const block_mul<kFine, Fmt> mul(f, j, f.values(j));
        __m256i d[8];
        for (int t = 0; t < 8; ++t) d[t] = mul(xq + t * 2 * jb.n_in + blk * 64);
        const __m256 dx = _mm256_loadu_ps(jb.xdT + blk * nt + t0);
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(lane_sums8(d)),
                              _mm256_mul_ps(dx, _mm256_set1_ps(f.scale(j))), acc);
        if constexpr (Fmt::kMin) {
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

// One token (decode), eight 32-blocks per step: the eight block sums are reduced into one
// vector (a lane per block), so scales, activation scales and offset terms are vector loads
// and one FMA per eight blocks. Legacy formats gather the eight blocks' d (and m).
HWY_INLINE __m256 sum32x8(const float* s16) {  // s16[2b] + s16[2b + 1] for 8 blocks
  const __m256 h = _mm256_hadd_ps(_mm256_loadu_ps(s16), _mm256_loadu_ps(s16 + 8));
  return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(h), 0xD8));
}
// The 16-bit halves at byte offsets 0 and 2 of eight blocks `stride` bytes apart, as floats.
HWY_INLINE void gather_halves8(const uint8_t* p, int stride, __m256& lo, __m256& hi) {
  const __m256i idx =
      _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(stride));
  const __m256i g = _mm256_i32gather_epi32(reinterpret_cast<const int*>(p), idx, 1);
  const __m256i split = _mm256_shuffle_epi8(
      g, _mm256_setr_epi8(0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15, 0, 1, 4, 5, 8, 9,
                          12, 13, 2, 3, 6, 7, 10, 11, 14, 15));
  const __m256i ordered =
      _mm256_permute4x64_epi64(split, 0xD8);  // [lo 0-3, lo 4-7, hi 0-3, hi 4-7]
  lo = _mm256_cvtph_ps(_mm256_castsi256_si128(ordered));
  hi = _mm256_cvtph_ps(_mm256_extracti128_si256(ordered, 1));
}

template <bool kFine, class Fmt>
HWY_INLINE __m256i block_dot(const Fmt& f, int j, const int8_t* x) {
  return block_mul<kFine, Fmt>(f, j, f.values(j))(x);
}

template <class Fmt, bool kFine>
HWY_NOINLINE void rows_x86_b8(const job& jb, int64_t r0, int64_t r1, int64_t t0) {
  using Block = std::remove_pointer_t<decltype(std::declval<Fmt>().b)>;
  const int64_t nb32 = jb.n_in / 32;
  const int8_t* xq = jb.xq + t0 * 2 * jb.n_in;
  const float* xd = jb.xd + t0 * nb32;
  const float* xs = jb.xs + t0 * nb32 * 2;
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* row = jb.w + static_cast<size_t>(r) * jb.row_bytes;
    __m256 acc = _mm256_setzero_ps(), macc = _mm256_setzero_ps();
    float tail = 0;
    if constexpr (Fmt::kSub == 8) {
      for (int64_t blk = 0; blk < nb32; blk += 8) {
        const Fmt f(row + static_cast<size_t>(blk / 8) * sizeof(Block));
        __m256i d[8];
        for (int j = 0; j < 8; ++j) d[j] = block_dot<kFine>(f, j, xq + (blk + j) * 64);
        const __m256 sums = _mm256_cvtepi32_ps(lane_sums8(d));
        const __m256 dx = _mm256_loadu_ps(xd + blk);
        if constexpr (Fmt::kSplit) {
          acc = _mm256_fmadd_ps(sums, _mm256_mul_ps(dx, _mm256_set1_ps(f.d)), acc);
          macc = _mm256_fmadd_ps(_mm256_loadu_ps(f.ml), _mm256_loadu_ps(xs + 2 * blk), macc);
          macc =
              _mm256_fmadd_ps(_mm256_loadu_ps(f.ml + 8), _mm256_loadu_ps(xs + 2 * blk + 8), macc);
        } else {
          acc = _mm256_fmadd_ps(sums, _mm256_mul_ps(dx, _mm256_loadu_ps(f.dl)), acc);
          macc = _mm256_fmadd_ps(_mm256_loadu_ps(f.ml), sum32x8(xs + 2 * blk), macc);
        }
      }
    } else {
      int64_t blk = 0;
      for (; blk + 8 <= nb32; blk += 8) {
        const uint8_t* p = row + static_cast<size_t>(blk) * sizeof(Block);
        __m256i d[8];
        for (int j = 0; j < 8; ++j)
          d[j] = block_dot<kFine>(Fmt(p + j * sizeof(Block)), 0, xq + (blk + j) * 64);
        __m256 dw, mw;
        gather_halves8(p, static_cast<int>(sizeof(Block)), dw, mw);
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(lane_sums8(d)),
                              _mm256_mul_ps(dw, _mm256_loadu_ps(xd + blk)), acc);
        if constexpr (Fmt::kMin) {
          if constexpr (Fmt::kMField < 0) mw = _mm256_mul_ps(dw, _mm256_set1_ps(Fmt::kMFromD));
          macc = _mm256_fmadd_ps(mw, sum32x8(xs + 2 * blk), macc);
        }
      }
      for (; blk < nb32; ++blk) {  // the last nb32 % 8 blocks one at a time
        const Fmt f(row + static_cast<size_t>(blk) * sizeof(Block));
        // All lanes of acc are summed at the end, so a block's 8 partial sums can go in too.
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(block_dot<kFine>(f, 0, xq + blk * 64)),
                              _mm256_set1_ps(f.scale(0) * xd[blk]), acc);
        if constexpr (Fmt::kMin) tail += f.m_lo(0) * (xs[2 * blk] + xs[2 * blk + 1]);
      }
    }
    jb.y[t0 * jb.n_out + r] = hsum(_mm256_add_ps(acc, macc)) + tail;
  }
}
#endif  // AVX2 / AVX3 / AVX3_DL

// Float weights: f32 FMA over full vectors, a scalar tail.
template <class W> HWY_INLINE float load_scalar(const W* p) {
  if constexpr (std::is_same_v<W, float>) {
    return *p;
  } else if constexpr (std::is_same_v<W, hwy::float16_t>) {
    uint16_t h;
    std::memcpy(&h, p, 2);
    return half_to_float(h);
  } else {
    uint16_t h;
    std::memcpy(&h, p, 2);
    return bf16_to_float(h);
  }
}

template <class W, int NT>
HWY_NOINLINE void rows_f(const job& jb, int64_t r0, int64_t r1, int64_t t0) {
  const hn::ScalableTag<float> df;
  const hn::Rebind<W, decltype(df)> dw;
  const int64_t nl = static_cast<int64_t>(hn::Lanes(df));
  const int64_t n = jb.n_in, main = n - n % nl;
  for (int64_t r = r0; r < r1; ++r) {
    const W* row = reinterpret_cast<const W*>(jb.w + static_cast<size_t>(r) * jb.row_bytes);
    hn::Vec<decltype(df)> acc[NT];
    for (int t = 0; t < NT; ++t) acc[t] = hn::Zero(df);
    for (int64_t c = 0; c < main; c += nl) {
      hn::Vec<decltype(df)> w;
      if constexpr (std::is_same_v<W, float>)
        w = hn::LoadU(df, row + c);
      else
        w = hn::PromoteTo(df, hn::LoadU(dw, row + c));
      for (int t = 0; t < NT; ++t)
        acc[t] = hn::MulAdd(w, hn::LoadU(df, jb.xf + (t0 + t) * n + c), acc[t]);
    }
    for (int t = 0; t < NT; ++t) {
      float s = hn::GetLane(hn::SumOfLanes(df, acc[t]));
      for (int64_t c = main; c < n; ++c) s += load_scalar(row + c) * jb.xf[(t0 + t) * n + c];
      jb.y[(t0 + t) * jb.n_out + r] = s;
    }
  }
}

// Rows [r0, r1) for all tokens: blocks of rows that stay in L1 while the token tiles pass.
template <class K4, class K1>
HWY_INLINE void tiles(const job& jb, int64_t r0, int64_t r1, K4 kernel4, K1 kernel1,
                      decltype(kernel1) kernel8 = nullptr) {
  constexpr int64_t kRowBlock = 16;
  for (int64_t rb = r0; rb < r1; rb += kRowBlock) {
    const int64_t re = std::min(r1, rb + kRowBlock);
    int64_t t = 0;
    if (kernel8 && jb.xdT)
      for (; t + 8 <= jb.n_tokens; t += 8) kernel8(jb, rb, re, t);
    for (; t + 4 <= jb.n_tokens; t += 4) kernel4(jb, rb, re, t);
    for (; t < jb.n_tokens; ++t) kernel1(jb, rb, re, t);
  }
}

template <class Fmt, class X86Fmt, bool kFine>
void run_q_act(const job& jb, int64_t r0, int64_t r1) {
#ifdef ENGINE_MATMUL_X86
  tiles(jb, r0, r1, rows_x86<X86Fmt, 4, kFine>, rows_x86_b8<X86Fmt, kFine>,
        rows_x86_t8<X86Fmt, kFine>);
#else
  tiles(jb, r0, r1, rows_q<Fmt, 4, kFine>, rows_q<Fmt, 1, kFine>);
#endif
}
template <class Fmt, class X86Fmt> void run_q(const job& jb, int64_t r0, int64_t r1) {
  if (jb.fine)
    run_q_act<Fmt, X86Fmt, true>(jb, r0, r1);
  else
    run_q_act<Fmt, X86Fmt, false>(jb, r0, r1);
}
template <class W> void run_f(const job& jb, int64_t r0, int64_t r1) {
  tiles(jb, r0, r1, rows_f<W, 4>, rows_f<W, 1>);
}

}  // namespace

#ifdef ENGINE_MATMUL_X86
#define X86_FMT(name) x86_##name
#else
#define X86_FMT(name) void
#endif

// Activations: n_blocks blocks of 32 floats -> per block (64 bytes) either 32 int8 values c
// (one plane: step d = max|x| / 127), or (two planes) the coarse value c in steps of kActFine d
// with d = max|x| / (127 kActFine) and the remainder f in steps of d, stored as 32 int16
// kActFine * c + f; d; and d * (sum of the integer values) for each half.
template <bool kFine>
void quantize_blocks_act(const float* x, int64_t n_blocks, int8_t* q, float* d, float* sum16) {
  using DFq = hn::CappedTag<float, 16>;
  const DFq df;
  const hn::RebindToSigned<DFq> di;
  const hn::Rebind<int8_t, DFq> d8;
  const hn::Rebind<int16_t, DFq> d16;
  const size_t n = hn::Lanes(df);
  for (int64_t b = 0; b < n_blocks; ++b) {
    const float* v = x + b * 32;
    auto amax = hn::Zero(df);
    for (size_t k = 0; k < 32; k += n) amax = hn::Max(amax, hn::Abs(hn::LoadU(df, v + k)));
    const float m = hn::GetLane(hn::MaxOfLanes(df, amax));
    const float coarse = m / 127.0f, fine = kFine ? coarse / static_cast<float>(kActFine) : coarse;
    const auto inv = hn::Set(df, coarse > 0 ? 1.0f / coarse : 0.0f);
    const auto inv_fine = hn::Set(df, fine > 0 ? 1.0f / fine : 0.0f);
    const auto vcoarse = hn::Set(df, coarse);
    const auto lim = hn::Set(di, 127);
    auto s0 = hn::Zero(di), s1 = hn::Zero(di);
    for (size_t k = 0; k < 32; k += n) {
      const auto xv = hn::LoadU(df, v + k);
      const auto qc = hn::NearestInt(hn::Mul(xv, inv));
      if constexpr (!kFine) {
        if (k < 16)
          s0 = hn::Add(s0, qc);
        else
          s1 = hn::Add(s1, qc);
        hn::StoreU(hn::DemoteTo(d8, qc), d8, q + b * 64 + k);
        continue;
      }
      const auto rest = hn::NegMulAdd(hn::ConvertTo(df, qc), vcoarse, xv);  // |rest| <= coarse / 2
      const auto qf = hn::Min(hn::Max(hn::NearestInt(hn::Mul(rest, inv_fine)), hn::Neg(lim)), lim);
      const auto qv = hn::Add(hn::Mul(qc, hn::Set(di, kActFine)), qf);
      if (k < 16)
        s0 = hn::Add(s0, qv);
      else
        s1 = hn::Add(s1, qv);
      hn::StoreU(hn::DemoteTo(d16, qv), d16, reinterpret_cast<int16_t*>(q + b * 64) + k);
    }
    d[b] = fine;
    sum16[2 * b] = fine * static_cast<float>(hn::GetLane(hn::SumOfLanes(di, s0)));
    sum16[2 * b + 1] = fine * static_cast<float>(hn::GetLane(hn::SumOfLanes(di, s1)));
  }
}

void quantize_blocks(const float* x, int64_t n_blocks, int8_t* q, float* d, float* sum16,
                     bool fine) {
  if (fine)
    quantize_blocks_act<true>(x, n_blocks, q, d, sum16);
  else
    quantize_blocks_act<false>(x, n_blocks, q, d, sum16);
}

// The per-target entry: rows [r0, r1) of the job, for weight type `type` (switch once per chunk).
void matmul_rows(ggml_type type, const job& jb, int64_t r0, int64_t r1) {
  switch (type) {
    case ggml_type::F32: return run_f<float>(jb, r0, r1);
    case ggml_type::F16: return run_f<hwy::float16_t>(jb, r0, r1);
    case ggml_type::BF16: return run_f<hwy::bfloat16_t>(jb, r0, r1);
    case ggml_type::Q4_0: return run_q<fmt_q4_0, X86_FMT(q4_0)>(jb, r0, r1);
    case ggml_type::Q4_1: return run_q<fmt_q4_1, X86_FMT(q4_1)>(jb, r0, r1);
    case ggml_type::Q5_0: return run_q<fmt_q5_0, X86_FMT(q5_0)>(jb, r0, r1);
    case ggml_type::Q5_1: return run_q<fmt_q5_1, X86_FMT(q5_1)>(jb, r0, r1);
    case ggml_type::Q8_0: return run_q<fmt_q8_0, X86_FMT(q8_0)>(jb, r0, r1);
    case ggml_type::Q2_K: return run_q<fmt_q2_k, X86_FMT(q2_k)>(jb, r0, r1);
    case ggml_type::Q3_K: return run_q<fmt_q3_k, X86_FMT(q3_k)>(jb, r0, r1);
    case ggml_type::Q4_K: return run_q<fmt_q4_k, X86_FMT(q4_k)>(jb, r0, r1);
    case ggml_type::Q5_K: return run_q<fmt_q5_k, X86_FMT(q5_k)>(jb, r0, r1);
    case ggml_type::Q6_K: return run_q<fmt_q6_k, X86_FMT(q6_k)>(jb, r0, r1);
    case ggml_type::Q8_1:
    case ggml_type::Q8_K: break;
  }
}
#undef X86_FMT
#undef ENGINE_MATMUL_X86
#undef ENGINE_MATMUL_VNNI

}  // namespace HWY_NAMESPACE
}  // namespace engine
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace engine {

HWY_EXPORT(matmul_rows);

bool matmul_quantizes_activations(ggml_type type) {
  switch (type) {
    case ggml_type::Q4_0:
    case ggml_type::Q4_1:
    case ggml_type::Q5_0:
    case ggml_type::Q5_1:
    case ggml_type::Q8_0:
    case ggml_type::Q2_K:
    case ggml_type::Q3_K:
    case ggml_type::Q4_K:
    case ggml_type::Q5_K:
    case ggml_type::Q6_K: return true;
    default: return false;
  }
}

HWY_EXPORT(quantize_blocks);

namespace {
void size_activations(int64_t n_in, int64_t n_tokens, q8_activations& out, bool fine) {
  if (n_in % 32 != 0)
    throw make_error("row length " + std::to_string(n_in) + " is not a multiple of 32",
                     "quantize_activations");
  const int64_t nb = n_in / 32;
  out.n_in = n_in;
  out.n_tokens = n_tokens;
  out.fine = fine;
  out.q.resize(static_cast<size_t>(2 * n_in * n_tokens));
  out.d.resize(static_cast<size_t>(nb * n_tokens));
  out.sum16.resize(static_cast<size_t>(2 * nb * n_tokens));
}
// Blocks [b0, b1) of all tokens' blocks.
void quantize_range(const float* x, q8_activations& out, int64_t b0, int64_t b1) {
  HWY_DYNAMIC_DISPATCH(quantize_blocks)
  (x + b0 * 32, b1 - b0, out.q.data() + b0 * 64, out.d.data() + b0, out.sum16.data() + 2 * b0,
   out.fine);
}
}  // namespace

void quantize_activations(const float* x, int64_t n_in, int64_t n_tokens, q8_activations& out,
                          activations act) {
  if (act == activations::exact)
    throw make_error("exact activations are not quantized", "quantize_activations");
  size_activations(n_in, n_tokens, out, act == activations::fine);
  quantize_range(x, out, 0, n_in / 32 * n_tokens);
}

namespace {

void check_shapes(const tensor& W, const char* where) {
  if (W.ne[2] != 1 || W.ne[3] != 1)
    throw make_error("weight '" + W.name + "' is not a 2-D tensor", where);
  if (W.data == nullptr) throw make_error("weight '" + W.name + "' has no data", where);
  if (!matmul_quantizes_activations(W.type) && W.type != ggml_type::F32 &&
      W.type != ggml_type::F16 && W.type != ggml_type::BF16)
    throw make_error("weight '" + W.name + "' has type " + std::string(type_name(W.type)) +
                         ", which matmul does not support",
                     where);
}

size_t row_bytes(const tensor& W) {
  return static_cast<size_t>(W.ne[0] / block_values(W.type) * block_bytes(W.type));
}

// Per-thread scratch (activations, dequantized rows) reused across calls.
thread_local q8_activations t_act;
thread_local std::vector<float> t_xdT, t_xsT;
thread_local std::vector<float> t_row;

void matmul_exact(const tensor& W, const float* x, int64_t n_tokens, float* y, thread_pool& pool) {
  const int64_t n_in = W.ne[0], n_out = W.ne[1];
  const size_t rb = row_bytes(W);
  pool.parallel_for(n_out, [&](int64_t r0, int64_t r1) {
    t_row.resize(static_cast<size_t>(n_in));
    for (int64_t r = r0; r < r1; ++r) {
      dequantize(W.type, W.data + static_cast<size_t>(r) * rb, t_row.data(), n_in);
      const float* w = t_row.data();
      for (int64_t t = 0; t < n_tokens; ++t) {
        const float* xt = x + t * n_in;
        double s[4] = {0, 0, 0, 0};  // four f64 partial sums (vectorizable)
        int64_t c = 0;
        for (; c + 4 <= n_in; c += 4)
          for (int k = 0; k < 4; ++k)
            s[k] += static_cast<double>(w[c + k]) * static_cast<double>(xt[c + k]);
        for (; c < n_in; ++c) s[0] += static_cast<double>(w[c]) * static_cast<double>(xt[c]);
        y[t * n_out + r] = static_cast<float>((s[0] + s[1]) + (s[2] + s[3]));
      }
    }
  });
}

}  // namespace

void matmul(const tensor& W, const float* x, int64_t n_tokens, float* y, thread_pool& pool,
            activations act) {
  check_shapes(W, "matmul");
  if (n_tokens <= 0) return;
  if (act == activations::exact) return matmul_exact(W, x, n_tokens, y, pool);
  job jb{};
  jb.w = W.data;
  jb.row_bytes = row_bytes(W);
  jb.n_in = W.ne[0];
  jb.n_out = W.ne[1];
  jb.n_tokens = n_tokens;
  jb.y = y;
  if (matmul_quantizes_activations(W.type)) {
    size_activations(jb.n_in, n_tokens, t_act, act == activations::fine);
    jb.fine = t_act.fine;
    const int64_t n_blocks = jb.n_in / 32 * n_tokens;
    if (n_tokens >= 8) {
      q8_activations& act = t_act;  // the workers fill the caller's buffers
      pool.parallel_for(n_blocks, [&](int64_t b0, int64_t b1) { quantize_range(x, act, b0, b1); });
    } else {
      quantize_range(x, t_act, 0, n_blocks);
    }
    jb.xq = t_act.q.data();
    jb.xd = t_act.d.data();
    jb.xs = t_act.sum16.data();
    if (n_tokens >= 8) {  // token-major copies of the scales for the 8-token kernels
      const int64_t nb = jb.n_in / 32;
      t_xdT.resize(static_cast<size_t>(nb * n_tokens));
      t_xsT.resize(static_cast<size_t>(2 * nb * n_tokens));
      for (int64_t t = 0; t < n_tokens; ++t)
        for (int64_t b = 0; b < nb; ++b) {
          t_xdT[static_cast<size_t>(b * n_tokens + t)] = t_act.d[static_cast<size_t>(t * nb + b)];
          for (int h = 0; h < 2; ++h)
            t_xsT[static_cast<size_t>((2 * b + h) * n_tokens + t)] =
                t_act.sum16[static_cast<size_t>(t * 2 * nb + 2 * b + h)];
        }
      jb.xdT = t_xdT.data();
      jb.xsT = t_xsT.data();
    }
  } else {
    jb.xf = x;
  }
  const ggml_type type = W.type;
  // Chunks of at least 8 rows keep the per-chunk overhead small next to the row work.
  constexpr int64_t kRowsPerItem = 8;
  const int64_t items = (jb.n_out + kRowsPerItem - 1) / kRowsPerItem;
  pool.parallel_for(items, [&](int64_t i0, int64_t i1) {
    HWY_DYNAMIC_DISPATCH(matmul_rows)
    (type, jb, i0 * kRowsPerItem, std::min(jb.n_out, i1 * kRowsPerItem));
  });
}

void matmul_reference_q8(const tensor& W, const float* x, int64_t n_tokens, float* y,
                         activations act) {
  check_shapes(W, "matmul_reference_q8");
  const int64_t n_in = W.ne[0], n_out = W.ne[1];
  std::vector<float> xr(static_cast<size_t>(n_in * n_tokens));
  if (matmul_quantizes_activations(W.type)) {
    q8_activations a;
    quantize_activations(x, n_in, n_tokens, a, act == activations::exact ? activations::fine : act);
    for (int64_t i = 0; i < n_in * n_tokens; ++i)
      xr[static_cast<size_t>(i)] = dequantized_activation(a, i);
  } else {
    std::copy(x, x + n_in * n_tokens, xr.begin());
  }
  std::vector<float> row(static_cast<size_t>(n_in));
  const size_t rb = row_bytes(W);
  for (int64_t r = 0; r < n_out; ++r) {
    dequantize(W.type, W.data + static_cast<size_t>(r) * rb, row.data(), n_in);
    for (int64_t t = 0; t < n_tokens; ++t) {
      double s = 0;
      for (int64_t c = 0; c < n_in; ++c)
        s += static_cast<double>(row[static_cast<size_t>(c)]) *
             xr[static_cast<size_t>(t * n_in + c)];
      y[t * n_out + r] = static_cast<float>(s);
    }
  }
}

void get_row(const tensor& W, int64_t r, float* out) {
  if (r < 0 || r >= W.rows())
    throw make_error(
        "row " + std::to_string(r) + " is out of range [0, " + std::to_string(W.rows()) + ")",
        "get_row of '" + W.name + "'");
  const size_t rb = static_cast<size_t>(W.ne[0] / block_values(W.type) * block_bytes(W.type));
  dequantize(W.type, W.data + static_cast<size_t>(r) * rb, out, W.ne[0]);
}

}  // namespace engine
#endif  // HWY_ONCE
