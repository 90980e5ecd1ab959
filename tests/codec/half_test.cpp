// fp16 and bf16 conversions: exhaustive over every binary16/bfloat16 value, and round to nearest
// even checked at every midpoint between neighbouring binary16 values.
#include <doctest/doctest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

#include <strata/codec/half.hpp>

using namespace strata;

TEST_CASE("f16: every binary16 value survives f16 -> f32 -> f16") {
  for (std::uint32_t h = 0; h < 0x10000; ++h) {
    const float f = f16_to_f32(std::uint16_t(h));
    const std::uint32_t e = (h >> 10) & 0x1f, m = h & 0x3ff;
    if (e == 0x1f && m != 0) {
      CHECK(std::isnan(f));
      CHECK(((f32_to_f16(f) & 0x7c00) == 0x7c00 && (f32_to_f16(f) & 0x3ff) != 0));
    } else {
      CHECK(f32_to_f16(f) == h);
    }
  }
  CHECK(f16_to_f32(0x3c00) == 1.0f);
  CHECK(f16_to_f32(0x7bff) == 65504.0f);
  CHECK(f16_to_f32(0x0001) == 0x1p-24f);
  CHECK(f16_to_f32(0xc000) == -2.0f);
  CHECK(std::isinf(f16_to_f32(0x7c00)));
}

TEST_CASE("f16: round to nearest even at every midpoint, overflow and underflow") {
  // Positive finite neighbours h, h+1: their midpoint is exact in f32.
  for (std::uint32_t h = 0; h < 0x7bff; ++h) {
    const float a = f16_to_f32(std::uint16_t(h)), b = f16_to_f32(std::uint16_t(h + 1));
    const float mid = 0.5f * (a + b);
    const std::uint16_t even = (h & 1) ? std::uint16_t(h + 1) : std::uint16_t(h);
    REQUIRE(f32_to_f16(mid) == even);
    REQUIRE(f32_to_f16(std::nextafter(mid, 0.0f)) == h);
    REQUIRE(f32_to_f16(std::nextafter(mid, 1e9f)) == h + 1);
    REQUIRE(f32_to_f16(-mid) == (even | 0x8000));
  }
  CHECK(f32_to_f16(65519.996f) == 0x7bff);
  CHECK(f32_to_f16(65520.0f) == 0x7c00);
  CHECK(f32_to_f16(1e30f) == 0x7c00);
  CHECK(f32_to_f16(-1e30f) == 0xfc00);
  CHECK(f32_to_f16(std::numeric_limits<float>::infinity()) == 0x7c00);
  CHECK(f32_to_f16(0x1p-25f) == 0x0000);  // tie to even (zero)
  CHECK(f32_to_f16(std::nextafter(0x1p-25f, 1.0f)) == 0x0001);
  CHECK(f32_to_f16(1e-30f) == 0x0000);
  CHECK(f32_to_f16(-0.0f) == 0x8000);
  static_assert(f32_to_f16(1.0f) == 0x3c00 && f16_to_f32(0x3555) == 0.333251953125f);
}

TEST_CASE("bf16: exhaustive round trip and round to nearest even") {
  for (std::uint32_t b = 0; b < 0x10000; ++b) {
    const float f = bf16_to_f32(std::uint16_t(b));
    if (std::isnan(f)) {
      CHECK(std::isnan(bf16_to_f32(f32_to_bf16(f))));
      continue;
    }
    REQUIRE(f32_to_bf16(f) == b);
    // The midpoint to the next bf16 (same sign, finite) ties to even.
    if ((b & 0x7fff) < 0x7f7f) {
      const std::uint32_t mid_bits = (b << 16) | 0x8000u;
      const std::uint16_t even = (b & 1) ? std::uint16_t(b + 1) : std::uint16_t(b);
      REQUIRE(f32_to_bf16(std::bit_cast<float>(mid_bits)) == even);
      REQUIRE(f32_to_bf16(std::bit_cast<float>(mid_bits - 1)) == b);
      REQUIRE(f32_to_bf16(std::bit_cast<float>(mid_bits + 1)) == b + 1);
    }
  }
  CHECK(f32_to_bf16(3.4028235e38f) == 0x7f80);  // FLT_MAX rounds up to inf
  static_assert(f32_to_bf16(1.0f) == 0x3f80 && bf16_to_f32(0xc000) == -2.0f);
}
