#pragma once
// q8_0: ggml's Q8_0. 32 values share one fp16 scale d = amax / 127; value i is d * qs[i].
// 8.5 bits per value.

#include <cstdint>

#include <strata/codec/codec_base.hpp>

namespace strata {

struct q8_0_block {
  std::uint16_t d;     // fp16 scale
  std::int8_t qs[32];  // quants in [-127, 127]
};
static_assert(sizeof(q8_0_block) == 34);  // 34 B / 32 values = 8.5 bits per value

struct q8_0 : codec_base<q8_0_block, 32, codec_id::q8_0> {
  static constexpr const char* name = "q8_0";
};

}  // namespace strata
