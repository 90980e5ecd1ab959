#pragma once
// strata::codec_set<C...>: the codec types a program can name at run time, each with its own
// codec_id. Names, parsing, layouts and kernel tables are derived from such a set
// (strata/codec/standard_codecs.hpp holds strata's); a program adds its own codecs with
// codec_set_append<standard_codecs, my_codec> (ids from first_user_codec_id on).

#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

#include <strata/codec/codec_id.hpp>

namespace strata {

template <class... C> struct codec_set {
  static constexpr std::size_t size = sizeof...(C);
  static constexpr std::array<codec_id, size> ids{C::id...};

  static constexpr bool unique_ids() {
    for (std::size_t i = 0; i < size; ++i)
      for (std::size_t j = i + 1; j < size; ++j)
        if (ids[i] == ids[j]) return false;
    return true;
  }
  static_assert(unique_ids(), "strata::codec_set: two codecs share a codec_id");

  static constexpr bool contains(codec_id id) {
    for (codec_id c : ids)
      if (c == id) return true;
    return false;
  }

  // Calls f(std::type_identity<Codec>{}) for the codec whose id is `id` (dispatch once, e.g. per
  // layer); false when the set has none.
  template <class F> static constexpr bool visit(codec_id id, F&& f) {
    return (... || (C::id == id ? (f(std::type_identity<C>{}), true) : false));
  }
  // f(std::type_identity<Codec>{}) for each codec, in order.
  template <class F> static constexpr void for_each(F&& f) { (f(std::type_identity<C>{}), ...); }

  // The codec's name (llama.cpp's --cache-type-k/-v spelling); "" when the set has none.
  static constexpr std::string_view name(codec_id id) {
    std::string_view n;
    visit(id, [&](auto t) { n = decltype(t)::type::name; });
    return n;
  }
  // Exact, case-sensitive match against the names; std::nullopt for anything else.
  static constexpr std::optional<codec_id> parse(std::string_view text) {
    std::optional<codec_id> out;
    for_each([&](auto t) {
      if (!out && std::string_view(decltype(t)::type::name) == text) out = decltype(t)::type::id;
    });
    return out;
  }
  // "f32 f16 ...": the names in order, for help texts and error messages.
  static std::string names() {
    std::string s;
    for_each([&](auto t) {
      if (!s.empty()) s += ' ';
      s += decltype(t)::type::name;
    });
    return s;
  }
};

namespace detail {
template <class Set, class... More> struct append;
template <class... C, class... More> struct append<codec_set<C...>, More...> {
  using type = codec_set<C..., More...>;
};
}  // namespace detail

// Set with More... after its codecs.
template <class Set, class... More>
using codec_set_append = typename detail::append<Set, More...>::type;

}  // namespace strata
