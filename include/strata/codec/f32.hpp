#pragma once
// f32: values stored as they are. 32 bits per value.

#include <strata/codec/codec_base.hpp>

namespace strata {

struct f32 : codec_base<float, 1, codec_id::f32> {
  static constexpr const char* name = "f32";
};
static_assert(sizeof(f32::block) == 4);  // 32 bits per value

}  // namespace strata
