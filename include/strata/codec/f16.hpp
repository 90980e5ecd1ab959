#pragma once
// f16: IEEE binary16, round to nearest even (strata/codec/half.hpp). 16 bits per value.

#include <cstdint>

#include <strata/codec/codec_base.hpp>

namespace strata {

// One binary16 value per block.
struct f16 : codec_base<std::uint16_t, 1, codec_id::f16> {
  static constexpr const char* name = "f16";
};
static_assert(sizeof(f16::block) == 2);  // 16 bits per value

}  // namespace strata
