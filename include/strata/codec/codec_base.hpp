#pragma once
// codec_base<Block, Values, Id, Rotated>: the members every codec type states that follow from
// its block (docs/formats.md): Values values stored in one Block of block_bytes bytes, hence
// bits_per_value; its codec_id and whether it stores rotated rows. A codec type derives from
// it and adds its name (and what else its format needs).

#include <cstddef>

#include <strata/codec/codec_id.hpp>

namespace strata {

template <class Block, std::size_t Values, codec_id Id, bool Rotated = false> struct codec_base {
  using block = Block;
  static constexpr std::size_t block_values = Values;
  static constexpr std::size_t block_bytes = sizeof(Block);
  static constexpr double bits_per_value = 8.0 * block_bytes / block_values;
  static constexpr bool rotated = Rotated;
  static constexpr codec_id id = Id;
};

}  // namespace strata
