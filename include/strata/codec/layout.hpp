#pragma once
// The storage layout of a codec for one head dim: values and bytes per block, bytes per row,
// whether rows are rotated. This is what the cache allocates and what a policy report counts;
// it needs no kernels.
//
// Grouped codecs (turbo, vq2) use the group strata/codec/group.hpp picks for the head dim. A head
// dim that is not a whole number of blocks is refused with an error naming the head dim and the
// codec.

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include <strata/codec/codec_alias.hpp>
#include <strata/codec/group.hpp>
#include <strata/codec/key_tile.hpp>
#include <strata/codec/standard_codecs.hpp>

namespace strata {

struct codec_layout {
  codec_id id{};
  std::size_t block_values = 0;
  std::size_t block_bytes = 0;
  std::size_t row_bytes = 0;  // bytes of one head vector
  bool rotated = false;
  const char* name = "";  // the codec's name (for messages)
  // A store of these rows holds a multiple of this many per KV head: tile_rows for codecs with
  // the key-tile layout (strata/codec/key_tile.hpp), which the cache may store as tiles; 1.
  std::size_t slot_multiple = 1;

  double bits_per_value() const { return 8.0 * double(block_bytes) / double(block_values); }
  // Slots a store allocates per KV head for n rows.
  std::size_t slots_for(std::size_t n) const {
    return (n + slot_multiple - 1) / slot_multiple * slot_multiple;
  }
};

namespace detail {
template <class C> constexpr codec_layout layout_of_type(std::uint32_t head_dim) {
  return {.id = C::id,
          .block_values = C::block_values,
          .block_bytes = C::block_bytes,
          .row_bytes = head_dim / C::block_values * C::block_bytes,
          .rotated = C::rotated,
          .name = C::name,
          .slot_multiple = tiled_codec<storage_t<C>> ? tile_rows : 1};
}
}  // namespace detail

// The layout of codec `id` of Set for rows of head_dim values (grouped codecs with the group
// the head dim needs). Throws std::invalid_argument for an id outside Set, or when head_dim is
// not a whole number of the codec's blocks.
template <class Set = standard_codecs> codec_layout layout_of(codec_id id, std::uint32_t head_dim) {
  codec_layout l;
  bool fits = false;
  const bool known = Set::visit(id, [&](auto c) {  // once per layer
    fits = with_group_for<typename decltype(c)::type>(head_dim, [&](auto e) {
      l = detail::layout_of_type<typename decltype(e)::type>(head_dim);
    });
    if (!fits) l.block_values = smallest_block<typename decltype(c)::type>();
  });
  if (!known) throw std::invalid_argument("error: unknown " + codec_label(id) + " (layout_of)");
  if (!fits)
    throw std::invalid_argument("error: head dim " + std::to_string(head_dim) +
                                " is not a multiple of " + codec_label(id) + "'s block of " +
                                std::to_string(l.block_values) + " values (layout_of)");
  return l;
}

// Where a policy report and a cache get each layer's layout: layout_of<Set> for their set.
using layout_resolver = codec_layout (*)(codec_id id, std::uint32_t head_dim);

}  // namespace strata
