#pragma once
// Scalar IEEE binary16 and bfloat16 <-> binary32 conversions, constexpr, round to nearest even.
// binary16: finite values beyond 65504 round to +-inf (the IEEE rule: >= 65520 overflows);
// values below 2^-24 go through the subnormals to +-0. NaN stays NaN (quiet, payload
// truncated), inf stays inf. bfloat16 keeps the top 16 bits of binary32, rounded to nearest
// even; NaN stays a quiet NaN.

#include <bit>
#include <cstdint>

namespace strata {

constexpr std::uint16_t f32_to_f16(float f) {
  const std::uint32_t x = std::bit_cast<std::uint32_t>(f);
  const std::uint32_t sign = (x >> 16) & 0x8000u;
  const std::uint32_t a = x & 0x7fffffffu;
  if (a >= 0x7f800000u)  // inf or NaN (NaN keeps the top payload bits and is made quiet)
    return std::uint16_t(sign | 0x7c00u | (a > 0x7f800000u ? 0x200u | ((a >> 13) & 0x3ffu) : 0u));
  if (a >= 0x477ff000u) return std::uint16_t(sign | 0x7c00u);  // >= 65520: overflows to inf
  if (a < 0x38800000u) {                                       // below 2^-14: subnormal or 0
    if (a <= 0x33000000u) return std::uint16_t(sign);          // <= 2^-25 rounds to 0
    const std::uint32_t e = a >> 23;
    const std::uint32_t m = (a & 0x7fffffu) | 0x800000u;
    const std::uint32_t shift = 126u - e;  // value = m * 2^(e-150); units of 2^-24
    std::uint32_t q = m >> shift;
    const std::uint32_t rem = m & ((1u << shift) - 1u);
    const std::uint32_t half = 1u << (shift - 1u);
    if (rem > half || (rem == half && (q & 1u))) ++q;
    return std::uint16_t(sign | q);
  }
  std::uint32_t h = (a - 0x38000000u) >> 13;  // rebias 127 -> 15, keep 10 mantissa bits
  const std::uint32_t rem = a & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;  // a carry into the exponent is right
  return std::uint16_t(sign | h);
}

constexpr float f16_to_f32(std::uint16_t h) {
  const std::uint32_t sign = std::uint32_t(h & 0x8000u) << 16;
  const std::uint32_t e = (h >> 10) & 0x1fu;
  const std::uint32_t m = h & 0x3ffu;
  if (e == 0x1fu) return std::bit_cast<float>(sign | 0x7f800000u | (m << 13));
  if (e == 0) {
    const float v = float(m) * 0x1p-24f;  // exact: m < 2^10
    return sign ? -v : v;
  }
  return std::bit_cast<float>(sign | ((e + 112u) << 23) | (m << 13));
}

constexpr std::uint16_t f32_to_bf16(float f) {
  const std::uint32_t x = std::bit_cast<std::uint32_t>(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return std::uint16_t((x >> 16) | 0x40u);  // quiet NaN
  return std::uint16_t((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

constexpr float bf16_to_f32(std::uint16_t b) {
  return std::bit_cast<float>(std::uint32_t(b) << 16);
}

inline constexpr float f16_max = 65504.0f;  // the largest finite binary16

}  // namespace strata
