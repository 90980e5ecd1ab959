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
  // Rotated twins of q8_0 and q4_0 (strata/codec/rotated_twin.hpp): llama.cpp's q8_0 and q4_0
  // with its K/V rotation on.
  q8_0r = 9,
  q4_0r = 10,
  turbo5 = 11,
  // turbo<B> with a fixed group G (strata/codec/fixed_group.hpp): 12 + 4 (B - 2) + log2(G / 32).
  turbo2g32 = 12,
  turbo2g64 = 13,
  turbo2g128 = 14,
  turbo2g256 = 15,
  turbo3g32 = 16,
  turbo3g64 = 17,
  turbo3g128 = 18,
  turbo3g256 = 19,
  turbo4g32 = 20,
  turbo4g64 = 21,
  turbo4g128 = 22,
  turbo4g256 = 23,
  turbo5g32 = 24,
  turbo5g64 = 25,
  turbo5g128 = 26,
  turbo5g256 = 27,
  turbo6 = 28,  // no fixed-group variants
};
inline constexpr std::uint8_t first_user_codec_id = 128;

}  // namespace strata
