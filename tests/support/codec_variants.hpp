// Every variant a cache can store of a codec: grouped codecs (turbo, vq2, ...) with each group
// of the ladder (strata/codec/group.hpp), other codecs as they are. Tests loop over
// standard_codecs::for_each and this, so that a codec added to the set is tested by default.
#pragma once

#include <type_traits>
#include <utility>

#include <strata/codec/group.hpp>

namespace strata_test {

template <class C, class F> void for_each_group(F&& f) {
  if constexpr (strata::grouped_codec<C>) {
    [&]<int... G>(std::integer_sequence<int, G...>) {
      (f(std::type_identity<typename C::template with_group<G>>{}), ...);
    }
    (strata::group_ladder{});
  } else {
    f(std::type_identity<C>{});
  }
}

}  // namespace strata_test
