#pragma once
// codec_alias<Storage, Id, Rotated>: a codec whose blocks are exactly Storage's (the same block
// struct, encode rule and kernels) under its own name and codec_id, stored rotated or not. What
// differs is what the cache does around the blocks (a rotated twin: rows rotated first,
// strata/codec/rotated_twin.hpp) or which group a name fixes (strata/codec/fixed_group.hpp).
// The kernels and the reference run Storage's code for it (storage_t), so an alias adds no
// kernel instantiation. alias_name builds an alias's name at compile time.

#include <array>
#include <cstddef>

#include <strata/codec/codec_base.hpp>
#include <strata/codec/codec_id.hpp>

namespace strata {

template <class Storage, codec_id Id, bool Rotated>
struct codec_alias : codec_base<typename Storage::block, Storage::block_values, Id, Rotated> {
  using storage = Storage;  // the codec type whose blocks and kernels these are
};

// A codec stored as another codec type (it names `storage`).
template <class C>
concept aliased_codec = requires {
  typename C::storage;
};

namespace detail {
template <class C> struct storage_of { using type = C; };
template <aliased_codec C> struct storage_of<C> { using type = typename C::storage; };
}  // namespace detail

// The codec type whose kernels run for C: C::storage for an alias, else C.
template <class C> using storage_t = typename detail::storage_of<C>::type;

// A codec name built at compile time (NUL-terminated, at most 15 characters).
struct alias_name {
  std::array<char, 16> text{};
  std::size_t size = 0;
  constexpr alias_name& operator+=(const char* s) {
    for (; *s != '\0'; ++s) text[size++] = *s;  // an overflow is a compile-time error
    return *this;
  }
  constexpr alias_name& operator+=(int v) {
    char digits[12]{};
    int n = 0;
    do {
      digits[n++] = char('0' + v % 10);
      v /= 10;
    } while (v > 0);
    while (n > 0) text[size++] = digits[--n];
    return *this;
  }
};

}  // namespace strata
