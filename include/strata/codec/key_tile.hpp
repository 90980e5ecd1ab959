#pragma once
// Key tiles: turbo4 rows stored 32 at a time with their bytes transposed, so that one vector
// load holds the same index byte of 32 rows and the scan kernels (strata::tile_dot,
// strata::tile_axpy) work on 32 keys per instruction without any horizontal sum: the dot looks
// the 4-bit indices up in per-query tables of products ("fast scan"), the V product runs one
// dimension at a time over 32 keys. docs/kernels.md, "Key tiles", has the measurements.
//
// A tile holds tile_rows (32) consecutive rows of one KV head in exactly their bytes
// (tile_rows * row_bytes): for each block b of the row, at b * tile_rows * sizeof(block), the
// 32 rows' fp16 scales (row r at 2 r), then for each index byte i < G/2 the 32 rows' byte i
// (row r at 64 + 32 i + r). Every byte belongs to one row, so a row is written (appended,
// overwritten) or read without touching its neighbours: tile_put_row / tile_get_row move one
// row between the plain layout (turbo.hpp's blocks) and a tile. Row j of a store whose tiles
// start at `base` sits in tile j / 32 at row j % 32.

#include <cstddef>
#include <cstdint>
#include <cstring>

#include <strata/codec/turbo.hpp>

namespace strata {

inline constexpr std::size_t tile_rows = 32;

// Codecs with the tile layout and its kernels: turbo4 (each index byte holds element i in its
// low nibble and element i + G/2 in its high one) with the groups of head dims 64, 128 and 256
// (turbo_group_for: 64 and 128); the layout itself serves any group up to 256.
template <class Codec> inline constexpr bool tiled_layout = false;
template <int G, class CB>
inline constexpr bool tiled_layout<turbo<4, G, CB>> = G == 64 || G == 128;

template <class Codec>
concept tiled_codec = tiled_layout<Codec>;

namespace detail {
template <class Codec> struct tile_geometry {
  using block = typename Codec::block;
  static constexpr std::size_t index_bytes = sizeof(block::idx);
  static constexpr std::size_t block_tile_bytes = tile_rows * sizeof(block);
  static_assert(sizeof(block) == 2 + index_bytes,
                "tile layout: a block is a scale and its indices");
  // Offsets within one block's part of a tile.
  static constexpr std::size_t scale_at(std::size_t r) { return 2 * r; }
  static constexpr std::size_t index_at(std::size_t i, std::size_t r) {
    return 2 * tile_rows + tile_rows * i + r;
  }
};
}  // namespace detail

// Writes `row` (nb blocks of Codec) as row r of the tile at `tile`.
template <tiled_codec Codec>
void tile_put_row(void* tile, std::size_t r, const void* row, std::size_t nb) {
  using geo = detail::tile_geometry<Codec>;
  auto* t = static_cast<unsigned char*>(tile);
  const auto* b = static_cast<const typename Codec::block*>(row);
  for (std::size_t k = 0; k < nb; ++k, t += geo::block_tile_bytes) {
    std::memcpy(t + geo::scale_at(r), &b[k].scale, 2);
    for (std::size_t i = 0; i < geo::index_bytes; ++i) t[geo::index_at(i, r)] = b[k].idx[i];
  }
}

// Reads row r of the tile at `tile` into `row` (nb blocks of Codec).
template <tiled_codec Codec>
void tile_get_row(const void* tile, std::size_t r, void* row, std::size_t nb) {
  using geo = detail::tile_geometry<Codec>;
  const auto* t = static_cast<const unsigned char*>(tile);
  auto* b = static_cast<typename Codec::block*>(row);
  for (std::size_t k = 0; k < nb; ++k, t += geo::block_tile_bytes) {
    std::memcpy(&b[k].scale, t + geo::scale_at(r), 2);
    for (std::size_t i = 0; i < geo::index_bytes; ++i) b[k].idx[i] = t[geo::index_at(i, r)];
  }
}

// n rows of the plain layout (row_bytes = nb blocks apart) -> rows first .. first + n - 1 of
// the tiled store at `tiles`, and back.
template <tiled_codec Codec>
void rows_to_tiles(const void* rows, std::size_t n, std::size_t nb, void* tiles,
                   std::size_t first = 0) {
  const std::size_t row_bytes = nb * sizeof(typename Codec::block);
  for (std::size_t k = 0; k < n; ++k) {
    const std::size_t j = first + k;
    tile_put_row<Codec>(static_cast<unsigned char*>(tiles) + j / tile_rows * tile_rows * row_bytes,
                        j % tile_rows, static_cast<const unsigned char*>(rows) + k * row_bytes, nb);
  }
}
template <tiled_codec Codec>
void tiles_to_rows(const void* tiles, std::size_t first, std::size_t n, std::size_t nb,
                   void* rows) {
  const std::size_t row_bytes = nb * sizeof(typename Codec::block);
  for (std::size_t k = 0; k < n; ++k) {
    const std::size_t j = first + k;
    tile_get_row<Codec>(
        static_cast<const unsigned char*>(tiles) + j / tile_rows * tile_rows * row_bytes,
        j % tile_rows, static_cast<unsigned char*>(rows) + k * row_bytes, nb);
  }
}

}  // namespace strata
