#pragma once
// The runtime name of a codec: what a policy string, a state file or a kernel table refers to.
// The codec types themselves (f16, q8_0, turbo<3>, ...) carry their id; names, parsing and the
// list of ids derive from a codec_set (strata/codec/standard_codecs.hpp).

#include <cstdint>

namespace strata {

// Append-only: the values are stored in state files (one byte per layer and side), so a value
// is never reused or renumbered. 0-127 are strata's; 128-255 are left to codecs a program
// defines itself.
enum class codec_id : std::uint8_t {
  f32 = 0,
  f16 = 1,
  bf16 = 2,
  q8_0 = 3,
  q4_0 = 4,
  turbo2 = 5,
  turbo3 = 6,
  turbo4 = 7,
  vq2 = 8,
};
inline constexpr std::uint8_t first_user_codec_id = 128;

}  // namespace strata
