#pragma once
// One side of a layer's storage: the rows of K, of V, or of a recent window, each KV head's
// rows in their own part ([kv_head][slot], head_slots slots per head) of a block of the cache's
// one allocation, and the kernels (codec_kernels) that encode, score and sum them. The cache
// keeps the K and V stores of a layer in one token ring (slot = (start + token) % slots) and
// the recent window's by position (slot = position % slots).
//
// Rows are stored one after the other, or, where the cache says so (cache_options::key_tiles:
// turbo4 on x86 AVX2 by default), as key tiles of 32 rows (strata/codec/key_tile.hpp): slot s of a
// head is row s % 32 of its tile s / 32. Every access goes through the store (put/get a row,
// encode, decode, dot, axpy), which knows which; state files and read_k see plain rows either way.

#include <cstddef>
#include <cstdint>
#include <cstring>

#include <strata/kernels/kernel_table.hpp>

namespace strata::detail {

// Per-thread bytes for one row in the plain layout (a tiled store's row on its way in or out):
// a fixed buffer, no heap (a small allocation left between the cache's own objects would keep
// the next cache from reusing their pages). Rows longer than this are not tiled.
inline constexpr std::size_t row_scratch_bytes = 2048;  // turbo4 rows up to head dim 3968
inline std::byte* row_scratch() {
  alignas(64) thread_local std::byte buf[row_scratch_bytes];
  return buf;
}

struct row_store {
  codec_kernels kern;
  std::size_t slots = 0, heads = 0;
  std::size_t head_slots = 0;  // slots rounded up to the layout's slot multiple
  std::size_t offset = 0;      // within the cache's allocation, until data is set
  std::byte* data = nullptr;
  bool tiles = false;  // stored as key tiles (kern.has_tiles())

  void set_up(const codec_kernels& k, std::size_t n_slots, std::size_t n_heads, bool as_tiles) {
    kern = k;
    tiles = as_tiles && k.layout.row_bytes <= row_scratch_bytes;
    slots = n_slots;
    heads = n_heads;
    head_slots = n_slots ? k.layout.slots_for(n_slots) : 0;
  }

  bool on() const noexcept { return slots != 0; }
  bool tiled() const noexcept { return tiles; }
  std::size_t row_bytes() const noexcept { return kern.layout.row_bytes; }
  std::size_t bytes() const noexcept { return head_slots * heads * row_bytes(); }
  std::size_t blocks() const noexcept { return row_bytes() / kern.layout.block_bytes; }
  // The first row (or tile) of KV head h.
  std::byte* head(std::size_t h) const noexcept { return data + h * head_slots * row_bytes(); }

  // Rows (h, s .. s + n - 1) in the plain layout: in place, or copied out to `buf` (n rows).
  const std::byte* rows(std::size_t h, std::size_t s, std::size_t n, std::byte* buf) const {
    if (!tiled()) return head(h) + s * row_bytes();
    kern.tile_get(head(h), s, n, blocks(), buf);
    return buf;
  }
  // Rows (h, s .. s + n - 1) to / from `rows` (n plain rows).
  void get(std::size_t h, std::size_t s, std::size_t n, std::byte* rows) const {
    if (n == 0) return;  // (rows may be null then)
    if (tiled())
      kern.tile_get(head(h), s, n, blocks(), rows);
    else
      std::memcpy(rows, head(h) + s * row_bytes(), n * row_bytes());
  }
  void put(std::size_t h, std::size_t s, std::size_t n, const std::byte* rows) const {
    if (n == 0) return;
    if (tiled())
      kern.tile_put(rows, n, blocks(), head(h), s);
    else
      std::memcpy(head(h) + s * row_bytes(), rows, n * row_bytes());
  }
  // Copies row (h, from) to (h, to).
  void copy(std::size_t h, std::size_t from, std::size_t to) const {
    put(h, to, 1, rows(h, from, 1, row_scratch()));
  }
  // Encodes x (d floats, as the codec is to see them) into row (h, s).
  void encode_at(const float* x, std::size_t d, std::size_t h, std::size_t s) const {
    if (!tiled()) return kern.encode(x, d, head(h) + s * row_bytes());
    std::byte* row = row_scratch();
    kern.encode(x, d, row);
    put(h, s, 1, row);
  }
  // Encodes x (d floats) into row (h, s), rotated first when the codec is a rotated one; tmp
  // (d floats) is left holding the row as the codec saw it.
  void encode(const float* x, float* tmp, std::size_t d, void (*rotate)(float*, std::size_t),
              std::size_t h, std::size_t s) const {
    if (kern.layout.rotated) {
      std::memcpy(tmp, x, d * sizeof(float));
      rotate(tmp, d);
      encode_at(tmp, d, h, s);
    } else {
      encode_at(x, d, h, s);
    }
  }
  // Decodes row (h, s) to x as stored (rotated when the codec is), and unrotated.
  void decode_stored(std::size_t h, std::size_t s, std::size_t d, float* x) const {
    kern.decode(rows(h, s, 1, row_scratch()), d, x);
  }
  void decode(std::size_t h, std::size_t s, std::size_t d, void (*unrotate)(float*, std::size_t),
              float* x) const {
    decode_stored(h, s, d, x);
    if (kern.layout.rotated) unrotate(x, d);
  }

  // The codec's dot and axpy (codec_kernels) over rows (h, s .. s + n - 1), which must not
  // wrap: the tile kernels where the store is tiled, the row kernels otherwise.
  void dot(std::size_t h, const float* q, std::size_t n_q, std::size_t d, std::size_t s,
           std::size_t n, float* scores, std::size_t score_stride) const {
    if (tiled())
      kern.tile_dot(q, n_q, d, head(h), s, n, scores, score_stride);
    else
      kern.dot(q, n_q, d, head(h) + s * row_bytes(), row_bytes(), n, scores, score_stride);
  }
  void axpy(std::size_t h, const float* w, std::size_t n_q, std::size_t w_stride, std::size_t s,
            std::size_t n, std::size_t d, float* out) const {
    if (tiled())
      kern.tile_axpy(w, n_q, w_stride, head(h), s, n, d, out);
    else
      kern.axpy(w, n_q, w_stride, head(h) + s * row_bytes(), row_bytes(), n, d, out);
  }
};

}  // namespace strata::detail
