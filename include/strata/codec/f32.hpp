#pragma once
// f32: values stored as they are. 32 bits per value.

#include <cstddef>

#include <strata/codec/codec_id.hpp>

namespace strata {

struct f32 {
  using block = float;  // one value
  static constexpr std::size_t block_values = 1;
  static constexpr std::size_t block_bytes = sizeof(block);
  static constexpr double bits_per_value = 8.0 * block_bytes / block_values;
  static constexpr bool rotated = false;
  static constexpr const char* name = "f32";
  static constexpr codec_id id = codec_id::f32;
};
static_assert(sizeof(f32::block) == 4);  // 32 bits per value

}  // namespace strata
