// engine quantized weight formats: ggml's block layouts and their dequantization.
//
// Each block struct mirrors ggml-common.h byte for byte (halves stored as raw IEEE binary16
// bits); the static_asserts pin the sizes. Values per block: 32 for the legacy formats,
// QK_K = 256 for the K-quants ("super-blocks" of 8 or 16 sub-blocks).
#pragma once

#include <cstdint>
#include <cstring>

#include "io/gguf.hpp"

namespace engine {

// The block sizes of io/ggml_types.hpp; throw engine::error for a type outside the table.
int64_t block_values(ggml_type);  // 1 for F32/F16/BF16, 32 for Q4_0.., 256 for K-quants
int64_t block_bytes(ggml_type);
// n must be a multiple of block_values(type); throws engine::error for unsupported types.
void dequantize(ggml_type type, const void* src, float* dst, int64_t n);

// ---- scalar conversions --------------------------------------------------------------------

// IEEE binary16 bits -> float (subnormals, infinities and NaN included).
inline float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1Fu;
  const uint32_t man = h & 0x3FFu;
  uint32_t bits;
  if (exp == 0x1F) {
    bits = sign | 0x7F800000u | (man << 13);
  } else if (exp != 0) {
    bits = sign | ((exp + 112u) << 23) | (man << 13);
  } else if (man == 0) {
    bits = sign;
  } else {  // subnormal: man * 2^-24
    float f = static_cast<float>(man) * (1.0f / 16777216.0f);
    return sign ? -f : f;
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// float -> IEEE binary16 bits, round to nearest even (overflow to infinity).
inline uint16_t float_to_half(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  const uint32_t ax = x & 0x7FFFFFFFu;
  if (ax >= 0x7F800000u)
    return static_cast<uint16_t>(sign | 0x7C00u | (ax > 0x7F800000u ? 0x200u : 0u));
  if (ax >= 0x477FF000u) return static_cast<uint16_t>(sign | 0x7C00u);  // rounds past 65504
  if (ax < 0x38800000u) {  // result is subnormal or zero: round ax * 2^24 to an integer
    float a;
    std::memcpy(&a, &ax, 4);
    const float scaled = a * 16777216.0f;  // exact: a power-of-two scale
    uint32_t m = static_cast<uint32_t>(scaled);
    const float rest = scaled - static_cast<float>(m);
    if (rest > 0.5f || (rest == 0.5f && (m & 1u))) ++m;
    return static_cast<uint16_t>(sign | m);
  }
  const uint32_t rounded = ax + 0xFFFu + ((ax >> 13) & 1u);  // round to nearest even
  return static_cast<uint16_t>(sign | ((rounded - 0x38000000u) >> 13));
}

inline float bf16_to_float(uint16_t h) {
  const uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// ---- block layouts ---------------------------------------------------------------------------
inline constexpr int kQK = 32;     // values per legacy block
inline constexpr int kQK_K = 256;  // values per K-quant super-block

struct block_q4_0 {  // 4.5 bits/value: x = d * (q - 8), q in [0, 16)
  uint16_t d;
  uint8_t qs[kQK / 2];  // value j in the low nibble of qs[j], value j + 16 in the high nibble
};
static_assert(sizeof(block_q4_0) == 18 && 18 == ggml_block_bytes(ggml_type::Q4_0));

struct block_q4_1 {  // 5 bits/value: x = d * q + m, q in [0, 16)
  uint16_t d, m;
  uint8_t qs[kQK / 2];
};
static_assert(sizeof(block_q4_1) == 20 && 20 == ggml_block_bytes(ggml_type::Q4_1));

struct block_q5_0 {  // 5.5 bits/value: x = d * (q - 16), q = nibble | bit j of qh << 4
  uint16_t d;
  uint8_t qh[4];
  uint8_t qs[kQK / 2];
};
static_assert(sizeof(block_q5_0) == 22 && 22 == ggml_block_bytes(ggml_type::Q5_0));

struct block_q5_1 {  // 6 bits/value: x = d * q + m
  uint16_t d, m;
  uint8_t qh[4];
  uint8_t qs[kQK / 2];
};
static_assert(sizeof(block_q5_1) == 24 && 24 == ggml_block_bytes(ggml_type::Q5_1));

struct block_q8_0 {  // 8.5 bits/value: x = d * q
  uint16_t d;
  int8_t qs[kQK];
};
static_assert(sizeof(block_q8_0) == 34 && 34 == ggml_block_bytes(ggml_type::Q8_0));

struct block_q8_1 {  // 9 bits/value: x = d * q; s = d * sum(q)
  uint16_t d, s;
  int8_t qs[kQK];
};
static_assert(sizeof(block_q8_1) == 36 && 36 == ggml_block_bytes(ggml_type::Q8_1));

struct block_q2_K {            // 2.625 bits/value: 16 sub-blocks of 16, 4-bit scale and min each
  uint8_t scales[kQK_K / 16];  // low nibble scale, high nibble min
  uint8_t qs[kQK_K / 4];
  uint16_t d, dmin;
};
static_assert(sizeof(block_q2_K) == 84 && 84 == ggml_block_bytes(ggml_type::Q2_K));

struct block_q3_K {          // 3.4375 bits/value: 16 sub-blocks of 16, 6-bit signed scales
  uint8_t hmask[kQK_K / 8];  // high bit of each value
  uint8_t qs[kQK_K / 4];     // low 2 bits
  uint8_t scales[12];
  uint16_t d;
};
static_assert(sizeof(block_q3_K) == 110 && 110 == ggml_block_bytes(ggml_type::Q3_K));

struct block_q4_K {  // 4.5 bits/value: 8 sub-blocks of 32, 6-bit scale and min each
  uint16_t d, dmin;
  uint8_t scales[12];
  uint8_t qs[kQK_K / 2];
};
static_assert(sizeof(block_q4_K) == 144 && 144 == ggml_block_bytes(ggml_type::Q4_K));

struct block_q5_K {  // 5.5 bits/value
  uint16_t d, dmin;
  uint8_t scales[12];
  uint8_t qh[kQK_K / 8];
  uint8_t qs[kQK_K / 2];
};
static_assert(sizeof(block_q5_K) == 176 && 176 == ggml_block_bytes(ggml_type::Q5_K));

struct block_q6_K {       // 6.5625 bits/value: 16 sub-blocks of 16, int8 scales
  uint8_t ql[kQK_K / 2];  // low 4 bits
  uint8_t qh[kQK_K / 4];  // high 2 bits
  int8_t scales[kQK_K / 16];
  uint16_t d;
};
static_assert(sizeof(block_q6_K) == 210 && 210 == ggml_block_bytes(ggml_type::Q6_K));

struct block_q8_K {  // 9.125 bits/value (an activation format): x = d * q
  float d;
  int8_t qs[kQK_K];
  int16_t bsums[kQK_K / 16];  // sums of groups of 16 q
};
static_assert(sizeof(block_q8_K) == 292 && 292 == ggml_block_bytes(ggml_type::Q8_K));

// 6-bit scale and min of sub-block j (0..7) of a Q4_K / Q5_K block, as ggml packs them.
inline void k_scale_min(int j, const uint8_t* q, uint8_t& sc, uint8_t& m) {
  if (j < 4) {
    sc = q[j] & 63;
    m = q[j + 4] & 63;
  } else {
    sc = static_cast<uint8_t>((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    m = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

// The 16 signed 6-bit scales of a Q3_K block (value = scale - 32).
void q3_k_scales(const uint8_t* packed12, int8_t out[16]);

}  // namespace engine
