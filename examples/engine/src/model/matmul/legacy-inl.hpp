// Per Highway target: the legacy ggml formats (32 values per block, io/quant.hpp) Q4_0, Q4_1,
// Q5_0, Q5_1 and Q8_0, each described once with its two readers (see common-inl.hpp). Included
// by model/matmul.cpp only.

#if defined(ENGINE_MODEL_MATMUL_LEGACY_INL_HPP_) == defined(HWY_TARGET_TOGGLE)
#ifdef ENGINE_MODEL_MATMUL_LEGACY_INL_HPP_
#undef ENGINE_MODEL_MATMUL_LEGACY_INL_HPP_
#else
#define ENGINE_MODEL_MATMUL_LEGACY_INL_HPP_
#endif

#include <cstdint>
#include <cstring>

#include "model/matmul/common-inl.hpp"

HWY_BEFORE_NAMESPACE();
namespace engine {
namespace HWY_NAMESPACE {
namespace {

// Q4_0: x = d * (q - 8), q in [0, 16): value l in the low nibble of qs[l], l + 16 in the high.
template <> struct weight_format<ggml_type::Q4_0> {
  using block = block_q4_0;
  static constexpr int kSub = 1;
  static constexpr bool kSplit = false;
  struct lanes {  // q - 8, no offset term
    static constexpr bool kMin = false;
    const block* b;
    float d;
    explicit lanes(const uint8_t* p)
        : b(reinterpret_cast<const block*>(p)), d(half_to_float(b->d)) {}
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
#ifdef ENGINE_MATMUL_X86
  struct bytes {  // the unsigned nibble q, and m = -8 d
    static constexpr int kMField = -1;
    static constexpr float kMFromD = -8;
    static constexpr bool kSigned = false, kMin = true;
    static constexpr bool kNibbleTail = true;  // values: the nibbles of the block's last 16 bytes
    const block* b;
    float d;
    explicit bytes(const uint8_t* p) : b(reinterpret_cast<const block*>(p)), d(f16(b->d)) {}
    HWY_INLINE __m256i values(int) const { return nibbles16(b->qs); }
    float scale(int) const { return d; }
    float m_lo(int) const { return -8 * d; }
    float m_hi(int) const { return -8 * d; }
  };
#endif
};

// Q4_1: x = d * q + m, q in [0, 16), nibbles as Q4_0.
template <> struct weight_format<ggml_type::Q4_1> {
  using block = block_q4_1;
  static constexpr int kSub = 1;
  static constexpr bool kSplit = false;
  struct lanes {
    static constexpr bool kMin = true;
    const block* b;
    float d, m;
    explicit lanes(const uint8_t* p)
        : b(reinterpret_cast<const block*>(p)), d(half_to_float(b->d)), m(half_to_float(b->m)) {}
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
#ifdef ENGINE_MATMUL_X86
  struct bytes {
    static constexpr int kMField = 2;  // m is the half at byte 2
    static constexpr float kMFromD = 0;
    static constexpr bool kSigned = false, kMin = true;
    static constexpr bool kNibbleTail = true;
    const block* b;
    float d, m;
    explicit bytes(const uint8_t* p)
        : b(reinterpret_cast<const block*>(p)), d(f16(b->d)), m(f16(b->m)) {}
    HWY_INLINE __m256i values(int) const { return nibbles16(b->qs); }
    float scale(int) const { return d; }
    float m_lo(int) const { return m; }
    float m_hi(int) const { return m; }
  };
#endif
};

// Q5_0 / Q5_1: q = nibble (as Q4_0) | bit l of the 32-bit word qh << 4, in [0, 32);
// Q5_0: x = d * (q - 16), Q5_1: x = d * q + m.
template <class Block, int kOffset, bool kHasMin> struct q5_format {
  using block = Block;
  static constexpr int kSub = 1;
  static constexpr bool kSplit = false;
  struct lanes {  // q - kOffset, m only for Q5_1
    static constexpr bool kMin = kHasMin;
    const block* b;
    float d, m;
    uint32_t qh;
    explicit lanes(const uint8_t* p)
        : b(reinterpret_cast<const block*>(p)), d(half_to_float(b->d)), m(0) {
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
#ifdef ENGINE_MATMUL_X86
  struct bytes {  // the unsigned q; m = -kOffset d for Q5_0
    static constexpr int kMField = kHasMin ? 2 : -1;
    static constexpr float kMFromD = -static_cast<float>(kOffset);
    static constexpr bool kSigned = false, kMin = true;
    const block* b;
    float d, m;
    explicit bytes(const uint8_t* p) : b(reinterpret_cast<const block*>(p)), d(f16(b->d)) {
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
#endif
};
template <> struct weight_format<ggml_type::Q5_0> : q5_format<block_q5_0, 16, false> {};
template <> struct weight_format<ggml_type::Q5_1> : q5_format<block_q5_1, 0, true> {};

// Q8_0: x = d * q, q the int8 qs[l].
template <> struct weight_format<ggml_type::Q8_0> {
  using block = block_q8_0;
  static constexpr int kSub = 1;
  static constexpr bool kSplit = false;
  struct lanes {
    static constexpr bool kMin = false;
    const block* b;
    float d;
    explicit lanes(const uint8_t* p)
        : b(reinterpret_cast<const block*>(p)), d(half_to_float(b->d)) {}
    HWY_INLINE void decode(int, size_t k, V16& lo, V16& hi) const {
      lo = hn::PromoteTo(D16(), hn::LoadU(DI8(), b->qs + k));
      hi = hn::PromoteTo(D16(), hn::LoadU(DI8(), b->qs + 16 + k));
    }
    float d_lo(int) const { return d; }
    float d_hi(int) const { return d; }
    float m_lo(int) const { return 0; }
    float m_hi(int) const { return 0; }
  };
#ifdef ENGINE_MATMUL_X86
  struct bytes {  // signed bytes
    static constexpr int kMField = -1;
    static constexpr float kMFromD = 0;
    static constexpr bool kSigned = true, kMin = false;
    static constexpr bool kByteTail = true;  // values: the block's last 32 bytes
    const block* b;
    float d;
    explicit bytes(const uint8_t* p) : b(reinterpret_cast<const block*>(p)), d(f16(b->d)) {}
    HWY_INLINE __m256i values(int) const { return load32(reinterpret_cast<const uint8_t*>(b->qs)); }
    float scale(int) const { return d; }
    float m_lo(int) const { return 0; }
    float m_hi(int) const { return 0; }
  };
#endif
};

}  // namespace
}  // namespace HWY_NAMESPACE
}  // namespace engine
HWY_AFTER_NAMESPACE();

#endif  // ENGINE_MODEL_MATMUL_LEGACY_INL_HPP_ toggle
