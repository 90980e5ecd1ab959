#pragma once
// All codec types and the strata::codec concept that the cache and the kernels check at their
// API boundary. check_codec<C>() turns a failed concept into one readable message per missing
// piece.

#include <concepts>
#include <cstddef>
#include <type_traits>

#include <strata/codec/bf16.hpp>
#include <strata/codec/f16.hpp>
#include <strata/codec/f32.hpp>
#include <strata/codec/fixed_group.hpp>
#include <strata/codec/q4_0.hpp>
#include <strata/codec/q8_0.hpp>
#include <strata/codec/rotated_twin.hpp>
#include <strata/codec/standard_codecs.hpp>
#include <strata/codec/turbo.hpp>
#include <strata/codec/vq2.hpp>

namespace strata {

template <class C>
concept codec = std::is_empty_v<C> && std::is_trivially_copyable_v<typename C::block> && requires {
  { C::block_values } -> std::convertible_to<std::size_t>;
  { C::block_bytes } -> std::convertible_to<std::size_t>;
  { C::bits_per_value } -> std::convertible_to<double>;
  { C::rotated } -> std::convertible_to<bool>;
  { C::name } -> std::convertible_to<const char*>;
  { C::id } -> std::convertible_to<codec_id>;
} && C::block_bytes == sizeof(typename C::block) && C::bits_per_value ==
                                                        8.0 * C::block_bytes / C::block_values;

namespace detail {
template <class C>
concept has_block = requires {
  typename C::block;
};
template <class C>
concept has_sizes = requires {
  { C::block_values } -> std::convertible_to<std::size_t>;
  { C::block_bytes } -> std::convertible_to<std::size_t>;
  { C::bits_per_value } -> std::convertible_to<double>;
};
template <class C>
concept has_names = requires {
  { C::rotated } -> std::convertible_to<bool>;
  { C::name } -> std::convertible_to<const char*>;
  { C::id } -> std::convertible_to<codec_id>;
};
}  // namespace detail

// Use as `static_assert(check_codec<C>())` at an API boundary: each requirement fails alone.
template <class C> consteval bool check_codec() {
  static_assert(std::is_empty_v<C>, "strata codec: a codec must be an empty type (a policy)");
  static_assert(detail::has_block<C>, "strata codec: C::block (the block struct) is missing");
  static_assert(detail::has_sizes<C>,
                "strata codec: C::block_values, C::block_bytes and C::bits_per_value are required");
  static_assert(detail::has_names<C>,
                "strata codec: C::rotated (bool), C::name (const char*) and C::id (codec_id) are "
                "required");
  if constexpr (detail::has_block<C> && detail::has_sizes<C>) {
    static_assert(C::block_bytes == sizeof(typename C::block),
                  "strata codec: C::block_bytes must equal sizeof(C::block)");
    static_assert(C::bits_per_value == 8.0 * C::block_bytes / C::block_values,
                  "strata codec: C::bits_per_value must be 8 * block_bytes / block_values");
  }
  return codec<C>;
}

static_assert(codec<f32> && codec<f16> && codec<bf16> && codec<q8_0> && codec<q4_0>);
static_assert(codec<turbo<2>> && codec<turbo<3>> && codec<turbo<4>> && codec<turbo<4, 32>>);
static_assert(codec<vq2<128>> && codec<vq2<64>> && codec<vq2<16>>);
static_assert(codec<q8_0r> && codec<q4_0r> && codec<turbo<5>> && codec<turbo<5, 16>>);
static_assert(codec<turbo_fixed<4, 32>> && codec<turbo_fixed<2, 256>>);
static_assert(codec<turbo<6>> && codec<turbo<6, 16>>);

}  // namespace strata
