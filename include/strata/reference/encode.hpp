#pragma once
// Scalar reference encode/decode: n values <-> n / Codec::block_values blocks. No rotation here
// (the cache rotates rows of rotated codecs first). Signatures as docs/formats.md.

#include <cstddef>
#include <cstring>
#include <stdexcept>
#include <string>

#include <strata/codec/codecs.hpp>
#include <strata/reference/block.hpp>

namespace strata::reference {

namespace detail {
template <class Codec> void check_length(std::size_t n, const char* where) {
  if (n % Codec::block_values != 0)
    throw std::invalid_argument("error: length " + std::to_string(n) + " is not a multiple of " +
                                Codec::name + "'s block of " + std::to_string(Codec::block_values) +
                                " values (" + where + ")");
}
}  // namespace detail

template <class Codec> void encode(const float* x, std::size_t n, void* out) {
  static_assert(check_codec<Codec>());
  detail::check_length<Codec>(n, "strata::reference::encode");
  auto* dst = static_cast<unsigned char*>(out);
  for (std::size_t i = 0; i < n / Codec::block_values; ++i) {
    typename Codec::block b{};
    detail::encode_block(Codec{}, x + i * Codec::block_values, b);
    std::memcpy(dst + i * Codec::block_bytes, &b, Codec::block_bytes);
  }
}

template <class Codec> void decode(const void* in, std::size_t n, float* x) {
  static_assert(check_codec<Codec>());
  detail::check_length<Codec>(n, "strata::reference::decode");
  const auto* src = static_cast<const unsigned char*>(in);
  for (std::size_t i = 0; i < n / Codec::block_values; ++i) {
    typename Codec::block b;
    std::memcpy(&b, src + i * Codec::block_bytes, Codec::block_bytes);
    detail::decode_block(Codec{}, b, x + i * Codec::block_values);
  }
}

}  // namespace strata::reference
