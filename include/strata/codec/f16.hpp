#pragma once
// f16: IEEE binary16, round to nearest even (strata/codec/half.hpp). 16 bits per value.

#include <cstddef>
#include <cstdint>

#include <strata/codec/codec_id.hpp>

namespace strata {

struct f16 {
  using block = std::uint16_t;  // one binary16 value
  static constexpr std::size_t block_values = 1;
  static constexpr std::size_t block_bytes = sizeof(block);
  static constexpr double bits_per_value = 8.0 * block_bytes / block_values;
  static constexpr bool rotated = false;
  static constexpr const char* name = "f16";
  static constexpr codec_id id = codec_id::f16;
};
static_assert(sizeof(f16::block) == 2);  // 16 bits per value

}  // namespace strata
