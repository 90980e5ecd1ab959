#pragma once
// q4_0: ggml's Q4_0. 32 values share one fp16 scale d = max / -8 (max: the signed value of
// largest magnitude); element j sits in the low nibble of qs[j], element j + 16 in the high
// nibble; value = d * (nibble - 8). 4.5 bits per value.

#include <cstdint>

#include <strata/codec/codec_base.hpp>

namespace strata {

struct q4_0_block {
  std::uint16_t d;      // fp16 scale
  std::uint8_t qs[16];  // element j: low nibble of qs[j]; element j + 16: high nibble
};
static_assert(sizeof(q4_0_block) == 18);  // 18 B / 32 values = 4.5 bits per value

struct q4_0 : codec_base<q4_0_block, 32, codec_id::q4_0> {
  static constexpr const char* name = "q4_0";
};

}  // namespace strata
