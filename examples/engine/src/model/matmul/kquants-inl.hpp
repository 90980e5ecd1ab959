// Per Highway target: ggml's K-quants (256-value super-blocks, io/quant.hpp) Q2_K, Q3_K, Q4_K,
// Q5_K and Q6_K, each described once with its two readers (see common-inl.hpp). A super-block
// is eight 32-value sub-blocks j = 0..7; the scales are unpacked once per super-block. Included
// by model/matmul.cpp only.

#if defined(ENGINE_MODEL_MATMUL_KQUANTS_INL_HPP_) == defined(HWY_TARGET_TOGGLE)
#ifdef ENGINE_MODEL_MATMUL_KQUANTS_INL_HPP_
#undef ENGINE_MODEL_MATMUL_KQUANTS_INL_HPP_
#else
#define ENGINE_MODEL_MATMUL_KQUANTS_INL_HPP_
#endif

#include <cstdint>

#include "model/matmul/common-inl.hpp"

HWY_BEFORE_NAMESPACE();
namespace engine {
namespace HWY_NAMESPACE {
namespace {

// Q2_K: x = d * (scale & 0xF) * q - dmin * (scale >> 4) per 16 values, q in [0, 4): sub-block j
// is 2-bit field 2 (j % 4) of bytes qs[32 (j / 4) ..].
template <> struct weight_format<ggml_type::Q2_K> {
  using block = block_q2_K;
  static constexpr int kSub = 8;
  static constexpr bool kSplit = true;
  struct lanes {
    static constexpr bool kMin = true;
    const block* b;
    float dl[16], ml[16];
    explicit lanes(const uint8_t* p) : b(reinterpret_cast<const block*>(p)) {
      const float d = half_to_float(b->d), dmin = half_to_float(b->dmin);
      for (int i = 0; i < 16; ++i) {
        dl[i] = d * static_cast<float>(b->scales[i] & 0xF);
        ml[i] = -dmin * static_cast<float>(b->scales[i] >> 4);
      }
    }
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
#ifdef ENGINE_MATMUL_X86
  struct bytes {
    static constexpr bool kSigned = false, kMin = true;
    const block* b;
    float d;
    float ml[16];
    explicit bytes(const uint8_t* p) : b(reinterpret_cast<const block*>(p)), d(f16(b->d)) {
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
#endif
};

// Q3_K: x = d * scale * q per 16 values, scale signed 6-bit (q3_k_scales), q = the 2-bit field
// of Q2_K minus 4 where bit j of hmask[l] is clear, in [-4, 4).
template <> struct weight_format<ggml_type::Q3_K> {
  using block = block_q3_K;
  static constexpr int kSub = 8;
  static constexpr bool kSplit = true;
  struct lanes {
    static constexpr bool kMin = false;
    const block* b;
    float dl[16];
    explicit lanes(const uint8_t* p) : b(reinterpret_cast<const block*>(p)) {
      const float d = half_to_float(b->d);
      int8_t sc[16];
      q3_k_scales(b->scales, sc);
      for (int i = 0; i < 16; ++i) dl[i] = d * static_cast<float>(sc[i]);
    }
    HWY_INLINE void decode(int j, size_t k, V16& lo, V16& hi) const {
      const uint8_t* q = b->qs + 32 * (j / 4);
      const int shift = 2 * (j % 4);
      const DU16 du;
      const auto bit = hn::Set(du, static_cast<uint16_t>(1u << j));
      const auto four = hn::Set(du, 4);
      lo = hn::Sub(
          bits_at(load_u8(q + k), shift, 3),
          hn::BitCast(D16(), hn::IfThenZeroElse(hn::TestBit(load_u8(b->hmask + k), bit), four)));
      hi = hn::Sub(bits_at(load_u8(q + 16 + k), shift, 3),
                   hn::BitCast(D16(), hn::IfThenZeroElse(
                                          hn::TestBit(load_u8(b->hmask + 16 + k), bit), four)));
    }
    float d_lo(int j) const { return dl[2 * j]; }
    float d_hi(int j) const { return dl[2 * j + 1]; }
    float m_lo(int) const { return 0; }
    float m_hi(int) const { return 0; }
  };
#ifdef ENGINE_MATMUL_X86
  struct bytes {  // q + 4 = low 2 bits | hmask bit << 2, unsigned in [0, 8)
    static constexpr bool kSigned = false, kMin = true;
    const block* b;
    float d;
    int8_t sc[16];
    float ml[16];
    explicit bytes(const uint8_t* p) : b(reinterpret_cast<const block*>(p)), d(f16(b->d)) {
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
#endif
};

// Q4_K / Q5_K: x = d * sc_j * q - dmin * m_j per 32 values (6-bit sc, m: k_scale_min); 64-value
// groups j / 2 use bytes qs[32 (j / 2) ..], low nibbles for even j; Q5_K's fifth bit is bit j
// of qh[l].
template <class Block, bool kHigh> struct q45_k_format {
  using block = Block;
  static constexpr int kSub = 8;
  static constexpr bool kSplit = false;
  struct lanes {
    static constexpr bool kMin = true;
    const block* b;
    float dl[8], ml[8];
    explicit lanes(const uint8_t* p) : b(reinterpret_cast<const block*>(p)) {
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
      if constexpr (kHigh) {
        lo = hn::Or(lo, hn::ShiftLeft<4>(bits_at(load_u8(b->qh + k), j, 1)));
        hi = hn::Or(hi, hn::ShiftLeft<4>(bits_at(load_u8(b->qh + 16 + k), j, 1)));
      }
    }
    float d_lo(int j) const { return dl[j]; }
    float d_hi(int j) const { return dl[j]; }
    float m_lo(int j) const { return ml[j]; }
    float m_hi(int j) const { return ml[j]; }
  };
#ifdef ENGINE_MATMUL_X86
  struct bytes {
    static constexpr bool kSigned = false, kMin = true;
    const block* b;
    float dl[8], ml[8];
    explicit bytes(const uint8_t* p) : b(reinterpret_cast<const block*>(p)) {
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
      if constexpr (kHigh)
        v = _mm256_or_si256(v, _mm256_slli_epi16(bits32(load32(b->qh), j, 1), 4));
      return v;
    }
    float scale(int j) const { return dl[j]; }
    float m_lo(int j) const { return ml[j]; }
    float m_hi(int j) const { return ml[j]; }
  };
#endif
};
template <> struct weight_format<ggml_type::Q4_K> : q45_k_format<block_q4_K, false> {};
template <> struct weight_format<ggml_type::Q5_K> : q45_k_format<block_q5_K, true> {};

// Q6_K: x = d * scale * (q - 32) per 16 values, int8 scales; 128-half n = j / 4, jj = j % 4:
// low 4 bits from ql[64 n + 32 (jj & 1) + l] (nibble jj >> 1), high 2 bits from
// qh[32 n + l] >> 2 jj.
template <> struct weight_format<ggml_type::Q6_K> {
  using block = block_q6_K;
  static constexpr int kSub = 8;
  static constexpr bool kSplit = true;
  struct lanes {
    static constexpr bool kMin = false;
    const block* b;
    float dl[16];
    explicit lanes(const uint8_t* p) : b(reinterpret_cast<const block*>(p)) {
      const float d = half_to_float(b->d);
      for (int i = 0; i < 16; ++i) dl[i] = d * static_cast<float>(b->scales[i]);
    }
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
#ifdef ENGINE_MATMUL_X86
  struct bytes {  // q in [0, 64), m = -32 d scale
    static constexpr bool kSigned = false, kMin = true;
    const block* b;
    float d;
    float ml[16];
    explicit bytes(const uint8_t* p) : b(reinterpret_cast<const block*>(p)), d(f16(b->d)) {
      for (int i = 0; i < 16; ++i) ml[i] = -32 * d * static_cast<float>(b->scales[i]);
    }
    HWY_INLINE __m256i values(int j) const {
      const int n = j / 4, jj = j % 4;
      const __m256i low = bits32(load32(b->ql + 64 * n + 32 * (jj & 1)), 4 * (jj >> 1), 0xF);
      return _mm256_or_si256(low, _mm256_slli_epi16(bits32(load32(b->qh + 32 * n), 2 * jj, 3), 4));
    }
    HWY_INLINE __m256i scales16(int j) const {
      return _mm256_set_m128i(_mm_set1_epi16(b->scales[2 * j + 1]),
                              _mm_set1_epi16(b->scales[2 * j]));
    }
    float scale(int) const { return d; }
    float m_lo(int j) const { return ml[2 * j]; }
    float m_hi(int j) const { return ml[2 * j + 1]; }
  };
#endif
};

}  // namespace
}  // namespace HWY_NAMESPACE
}  // namespace engine
HWY_AFTER_NAMESPACE();

#endif  // ENGINE_MODEL_MATMUL_KQUANTS_INL_HPP_ toggle
