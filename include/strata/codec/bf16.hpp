#pragma once
// bf16: the top half of IEEE binary32, round to nearest even (strata/codec/half.hpp).
// 16 bits per value.

#include <cstdint>

#include <strata/codec/codec_base.hpp>

namespace strata {

// One bfloat16 value per block.
struct bf16 : codec_base<std::uint16_t, 1, codec_id::bf16> {
  static constexpr const char* name = "bf16";
};
static_assert(sizeof(bf16::block) == 2);  // 16 bits per value

}  // namespace strata
