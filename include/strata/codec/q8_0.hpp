#pragma once
// q8_0: ggml's Q8_0. 32 values share one fp16 scale d = amax / 127; value i is d * qs[i].
// 8.5 bits per value.

#include <cstddef>
#include <cstdint>

#include <strata/codec/codec_id.hpp>

namespace strata {

struct q8_0 {
  struct block {
    std::uint16_t d;     // fp16 scale
    std::int8_t qs[32];  // quants in [-127, 127]
  };
  static constexpr std::size_t block_values = 32;
  static constexpr std::size_t block_bytes = sizeof(block);
  static constexpr double bits_per_value = 8.0 * block_bytes / block_values;
  static constexpr bool rotated = false;
  static constexpr const char* name = "q8_0";
  static constexpr codec_id id = codec_id::q8_0;
};
static_assert(sizeof(q8_0::block) == 34);  // 34 B / 32 values = 8.5 bits per value

}  // namespace strata
