#pragma once
// Grouped codecs (turbo<B, G>, vq2<G>, or any codec with a `template <int G> using with_group`)
// keep one scale per group of G values. A cache picks G per head dim: the largest of 128, 64,
// 32, 16 that divides it (docs/formats.md), so a 64-dim head gets turbo<B, 64>. This is the one
// place that ladder is written.

#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <utility>

namespace strata {

template <class C>
concept grouped_codec = requires {
  typename C::template with_group<16>;
};

using group_ladder = std::integer_sequence<int, 128, 64, 32, 16>;

namespace detail {
template <class C, class F, int... G>
constexpr bool with_group_ladder(std::uint32_t head_dim, F& f, std::integer_sequence<int, G...>) {
  return (... ||
          (head_dim % G == 0 ? (f(std::type_identity<typename C::template with_group<G>>{}), true)
                             : false));
}
}  // namespace detail

// The fewest values a row must be a multiple of: the smallest group of the ladder (grouped
// codecs) or the block (others). For messages.
template <class C> constexpr std::size_t smallest_block() {
  if constexpr (grouped_codec<C>) {
    return []<int... G>(std::integer_sequence<int, G...>) {
      std::size_t m = 0;
      ((m = m == 0 || std::size_t(G) < m ? std::size_t(G) : m), ...);
      return m;
    }
    (group_ladder{});
  } else {
    return C::block_values;
  }
}

// Calls f(std::type_identity<E>{}) with E the codec that stores a row of head_dim values for C:
// C with the ladder's group for head_dim (grouped codecs), or C itself. Returns false, without
// calling f, when head_dim is 0 or not a whole number of any such block.
template <class C, class F> constexpr bool with_group_for(std::uint32_t head_dim, F&& f) {
  if (head_dim == 0) return false;
  if constexpr (grouped_codec<C>) {
    return detail::with_group_ladder<C>(head_dim, f, group_ladder{});
  } else {
    if (head_dim % C::block_values != 0) return false;
    f(std::type_identity<C>{});
    return true;
  }
}

// f(std::type_identity<E>{}) for every codec E a cache can store rows of C with: C with each
// group of the ladder (grouped codecs), or C itself. What tests and strata::kernels iterate.
template <class C, class F> constexpr void for_each_group_variant(F&& f) {
  if constexpr (grouped_codec<C>) {
    [&]<int... G>(std::integer_sequence<int, G...>) {
      (f(std::type_identity<typename C::template with_group<G>>{}), ...);
    }
    (group_ladder{});
  } else {
    f(std::type_identity<C>{});
  }
}

}  // namespace strata
