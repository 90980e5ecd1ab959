#pragma once
// One side of a layer's storage: the rows of K, of V, or of a recent window, each KV head's
// rows contiguous ([kv_head][slot][row_bytes]) in a block of the cache's one allocation, and
// the kernels (codec_kernels) that encode, score and sum them. The cache keeps the K and V
// stores of a layer in one token ring (slot = (start + token) % slots) and the recent window's
// by position (slot = position % slots).

#include <cstddef>
#include <cstdint>
#include <cstring>

#include <strata/kernels/kernel_table.hpp>

namespace strata::detail {

struct row_store {
  codec_kernels kern;
  std::size_t slots = 0, heads = 0;
  std::size_t offset = 0;  // within the cache's allocation, until data is set
  std::byte* data = nullptr;

  bool on() const noexcept { return slots != 0; }
  std::size_t row_bytes() const noexcept { return kern.layout.row_bytes; }
  std::size_t bytes() const noexcept { return slots * heads * row_bytes(); }
  std::byte* row(std::size_t h, std::size_t s) const noexcept {
    return data + (h * slots + s) * row_bytes();
  }

  // Encodes x (d floats) into row (h, s), rotated first when the codec is a rotated one; tmp
  // (d floats) is left holding the row as the codec saw it.
  void encode(const float* x, float* tmp, std::size_t d, void (*rotate)(float*, std::size_t),
              std::byte* out) const {
    if (kern.layout.rotated) {
      std::memcpy(tmp, x, d * sizeof(float));
      rotate(tmp, d);
      kern.encode(tmp, d, out);
    } else {
      kern.encode(x, d, out);
    }
  }
  // Decodes row (h, s) to x, unrotated.
  void decode(std::size_t h, std::size_t s, std::size_t d, void (*unrotate)(float*, std::size_t),
              float* x) const {
    kern.decode(row(h, s), d, x);
    if (kern.layout.rotated) unrotate(x, d);
  }
};

}  // namespace strata::detail
