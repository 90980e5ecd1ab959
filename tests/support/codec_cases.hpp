// The codecs of a codec_set as doctest template cases: TEST_CASE_TEMPLATE_APPLY(name,
// strata_test::codec_cases<strata::standard_codecs>) defines one test case per codec, named by
// its id (e.g. "...<strata_test::codec_case<strata::codec_id::turbo3> >": no comma, so
// doctest's --test-case can pick it, as .ci/aarch64.sh does), and a codec added to the set is
// tested with no edit. In the case, codec_of<Set, Case> is the codec type.
#pragma once

#include <tuple>
#include <type_traits>

#include <strata/codec/codec_id.hpp>
#include <strata/codec/codec_set.hpp>

namespace strata_test {

template <strata::codec_id Id> struct codec_case { static constexpr strata::codec_id id = Id; };

namespace detail {
template <class Set> struct cases_of;
template <class... C> struct cases_of<strata::codec_set<C...>> {
  using type = std::tuple<codec_case<C::id>...>;
};
}  // namespace detail

template <class Set> using codec_cases = typename detail::cases_of<Set>::type;

// The codec of Set whose id is Case::id.
template <class Set, class Case> struct codec_of_case;
template <class... C, class Case> struct codec_of_case<strata::codec_set<C...>, Case> {
  using type = std::tuple_element_t<[] {
    std::size_t i = 0, found = 0;
    ((C::id == Case::id ? (found = i, ++i) : ++i), ...);
    return found;
  }(),
                                    std::tuple<C...>>;
};
template <class Set, class Case> using codec_of = typename codec_of_case<Set, Case>::type;

}  // namespace strata_test
