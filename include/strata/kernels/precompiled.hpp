#pragma once
// The codec types strata::kernels compiles once: every codec of standard_codecs, grouped codecs
// with each group of the ladder (what a cache picks per head dim, strata/codec/group.hpp), and
// for an alias (q8_0r, turbo4g32, ...: strata/codec/codec_alias.hpp) the codec type it is
// stored as; each type once. precompiled<C> says whether C is one of them; for_each_precompiled
// visits them all, for_each_precompiled_part<P, N> every N-th from the P-th (the library's
// translation units split them so).

#include <cstddef>
#include <type_traits>
#include <utility>

#include <strata/codec/codec_alias.hpp>
#include <strata/codec/codec_set.hpp>
#include <strata/codec/group.hpp>
#include <strata/codec/standard_codecs.hpp>

namespace strata::kernels {

template <class... T> struct type_list { static constexpr std::size_t size = sizeof...(T); };

namespace detail {
template <class L, class... U> struct push_unique { using type = L; };
template <class... T, class U, class... More> struct push_unique<type_list<T...>, U, More...> {
  using type = typename push_unique<
      std::conditional_t<(std::is_same_v<T, U> || ...), type_list<T...>, type_list<T..., U>>,
      More...>::type;
};

// A grouped codec with each group of the ladder; any other codec as the type it is stored as
// (itself, or an alias's storage).
template <class L, class C, class Ladder> struct add_codec;
template <class L, class C, int... G> struct add_codec<L, C, std::integer_sequence<int, G...>> {
  using type = typename push_unique<L, typename C::template with_group<G>...>::type;
};
template <class L, class C, int... G>
requires(!grouped_codec<C>) struct add_codec<L, C, std::integer_sequence<int, G...>> {
  using type = typename push_unique<L, storage_t<C>>::type;
};

template <class L, class Set> struct precompiled_of;
template <class L> struct precompiled_of<L, codec_set<>> { using type = L; };
template <class L, class C, class... More> struct precompiled_of<L, codec_set<C, More...>> {
  using type = typename precompiled_of<typename add_codec<L, C, group_ladder>::type,
                                       codec_set<More...>>::type;
};
}  // namespace detail

// The codec types strata::kernels holds, in order, each once.
using precompiled_types = typename detail::precompiled_of<type_list<>, standard_codecs>::type;

namespace detail {
template <std::size_t Part, std::size_t Parts, class... T, class F>
constexpr void for_each_of(type_list<T...>, F& f) {
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    (
        [&] {
          if constexpr (I % Parts == Part) f(std::type_identity<T>{});
        }(),
        ...);
  }
  (std::index_sequence_for<T...>{});
}
}  // namespace detail

// f(std::type_identity<E>{}) for each codec type strata::kernels holds.
template <class F> constexpr void for_each_precompiled(F&& f) {
  detail::for_each_of<0, 1>(precompiled_types{}, f);
}
// The same for the types at positions Part, Part + Parts, ... only (f is not instantiated for
// the others: each of the library's units compiles its part).
template <std::size_t Part, std::size_t Parts, class F>
constexpr void for_each_precompiled_part(F&& f) {
  detail::for_each_of<Part, Parts>(precompiled_types{}, f);
}

template <class C>
inline constexpr bool precompiled = [] {
  bool found = false;
  for_each_precompiled(
      [&](auto t) { found = found || std::is_same_v<typename decltype(t)::type, C>; });
  return found;
}();

}  // namespace strata::kernels
