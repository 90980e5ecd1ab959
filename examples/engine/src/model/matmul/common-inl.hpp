// Per Highway target: what a weight format provides (weight_format<T>) and the lane helpers the
// formats and drivers share. Included by model/matmul.cpp only (re-included once per target).
//
// A quantized format, weight_format<ggml_type::X>, describes its block once:
//   block            the block struct (io/quant.hpp)
//   kSub             32-value sub-blocks per block (1 for the legacy formats, 8 for K-quants)
//   kSplit           one scale per 16 values (else one per 32)
//   lanes            the portable reader (any target): constructed on a block, decode(j, k, lo,
//                    hi) gives values [k, k+N) and [16+k, 16+k+N) of sub-block j as int16 lanes;
//                    d_lo/d_hi(j) their scales, and m_lo/m_hi(j) the offset terms when kMin
//   bytes            (x86 AVX2/AVX3 targets) the byte reader: values(j) gives the 32 values of
//                    sub-block j as bytes (unsigned, or signed when kSigned), scale(j) their
//                    scale, scales16(j) the int16 scale per 16 values when kSplit, m_lo/m_hi(j)
//                    the terms that undo the unsigned offset when kMin; legacy formats also say
//                    where d and m are in the block (kMField, kMFromD) for gathering 8 blocks,
//                    kNibbleTail when the values are the nibbles of the block's last 16
//                    bytes (Q4_0, Q4_1) and kByteTail when they are its last 32 bytes (Q8_0):
//                    the x86 kernels read those directly (dot_x86-inl.hpp, mul_of)
// A float format gives `scalar`, the stored element type.

#if defined(ENGINE_MODEL_MATMUL_COMMON_INL_HPP_) == defined(HWY_TARGET_TOGGLE)
#ifdef ENGINE_MODEL_MATMUL_COMMON_INL_HPP_
#undef ENGINE_MODEL_MATMUL_COMMON_INL_HPP_
#else
#define ENGINE_MODEL_MATMUL_COMMON_INL_HPP_
#endif

#include <cstdint>
#include <cstring>

#include <hwy/highway.h>

#include "io/ggml_types.hpp"
#include "io/quant.hpp"
#include "model/matmul/job.hpp"

HWY_BEFORE_NAMESPACE();
namespace engine {
namespace HWY_NAMESPACE {
namespace {

namespace hn = hwy::HWY_NAMESPACE;
using matmul_detail::job;

template <ggml_type T> inline constexpr bool kNoFormat = false;
// The primary template: a type without a format stops the build here.
template <ggml_type T> struct weight_format {
  static_assert(kNoFormat<T>, "weight_format: matmul is not implemented for this ggml type");
};

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
  const auto bit = hn::LoadU(du, matmul_detail::kBit16 + k);
  return hn::BitCast(D16(),
                     hn::IfThenElseZero(hn::TestBit(hn::Set(du, static_cast<uint16_t>(word)), bit),
                                        hn::Set(du, 16)));
}

// ---- x86 (AVX2, AVX3): 32 values per 256-bit register as bytes ---------------------------------
#if HWY_TARGET == HWY_AVX2 || HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
#define ENGINE_MATMUL_X86 1

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
#endif  // AVX2 / AVX3 / AVX3_DL

}  // namespace
}  // namespace HWY_NAMESPACE
}  // namespace engine
HWY_AFTER_NAMESPACE();

#endif  // ENGINE_MODEL_MATMUL_COMMON_INL_HPP_ toggle
