#pragma once
// q4_0: ggml's Q4_0. 32 values share one fp16 scale d = max / -8 (max: the signed value of
// largest magnitude); element j sits in the low nibble of qs[j], element j + 16 in the high
// nibble; value = d * (nibble - 8). 4.5 bits per value.

#include <cstddef>
#include <cstdint>

#include <strata/codec/codec_id.hpp>

namespace strata {

struct q4_0 {
  struct block {
    std::uint16_t d;      // fp16 scale
    std::uint8_t qs[16];  // element j: low nibble of qs[j]; element j + 16: high nibble
  };
  static constexpr std::size_t block_values = 32;
  static constexpr std::size_t block_bytes = sizeof(block);
  static constexpr double bits_per_value = 8.0 * block_bytes / block_values;
  static constexpr bool rotated = false;
  static constexpr const char* name = "q4_0";
  static constexpr codec_id id = codec_id::q4_0;
};
static_assert(sizeof(q4_0::block) == 18);  // 18 B / 32 values = 4.5 bits per value

}  // namespace strata
