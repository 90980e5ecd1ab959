#pragma once
// The codec types strata::kernels compiles once: every codec of standard_codecs, grouped codecs
// with each group of the ladder (what a cache picks per head dim, strata/codec/group.hpp).
// precompiled<C> says whether C is one of them; for_each_precompiled visits them all.

#include <type_traits>

#include <strata/codec/codec_set.hpp>
#include <strata/codec/group.hpp>
#include <strata/codec/standard_codecs.hpp>

namespace strata::kernels {

namespace detail {
template <class... C, class F> constexpr void for_each_in(codec_set<C...>, F& f) {
  (for_each_group_variant<C>(f), ...);
}
}  // namespace detail

// f(std::type_identity<E>{}) for each codec type strata::kernels holds.
template <class F> constexpr void for_each_precompiled(F&& f) {
  detail::for_each_in(standard_codecs{}, f);
}

template <class C>
inline constexpr bool precompiled = [] {
  bool found = false;
  for_each_precompiled(
      [&](auto t) { found = found || std::is_same_v<typename decltype(t)::type, C>; });
  return found;
}();

}  // namespace strata::kernels
