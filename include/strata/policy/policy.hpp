#pragma once
// Compile-time layer policies: which codec stores K and V on each KV layer.
//
//   uniform<K, V>                       every KV layer: K codec K, V codec V
//   layered<uniform<K, V>, Rules...>    rules first (first match wins, separately for K and
//                                       for V), then the fallback uniform<K, V>
//   rule<Selector, K, V>                K or V may be `keep` (the rule leaves it alone);
//   k_rule<Selector, K>, v_rule<Selector, V>, kv_rule<Selector, C> are shorthands.
//
// Policies are empty types. Their rules are a boost::hana::tuple of types, searched with
// hana::find_if (ordered: a hana::map has no order). `policy_k_codec<P, Ordinal, NKv>` gives
// the codec *type* of a KV layer at compile time; `to_spec<P>()` gives the runtime
// policy_spec that the cache resolves against a runtime layer map. Hana stays in this header
// (and the cache's type-level code); kernel headers never include it.

#include <cstddef>
#include <type_traits>

#include <boost/hana/all_of.hpp>
#include <boost/hana/append.hpp>
#include <boost/hana/basic_tuple.hpp>
#include <boost/hana/bool.hpp>
#include <boost/hana/contains.hpp>
#include <boost/hana/find_if.hpp>
#include <boost/hana/fold_left.hpp>
#include <boost/hana/for_each.hpp>
#include <boost/hana/functional/id.hpp>
#include <boost/hana/is_empty.hpp>
#include <boost/hana/length.hpp>
#include <boost/hana/optional.hpp>
#include <boost/hana/tuple.hpp>
#include <boost/hana/type.hpp>

#include <strata/codec/standard_codecs.hpp>
#include <strata/policy/selectors.hpp>
#include <strata/policy/spec.hpp>

namespace strata {

namespace hana = boost::hana;

// A rule's "this rule does not set K (or V)".
struct keep {};

// What a policy needs of a codec type: an empty type with a codec id and a name.
template <class C>
concept policy_codec = std::is_empty_v<C> && requires {
  { C::id } -> std::convertible_to<codec_id>;
  { C::name } -> std::convertible_to<const char*>;
};

template <class C>
concept codec_or_keep = std::is_same_v<C, keep> || policy_codec<C>;

template <class Selector, class K, class V> struct rule {
  static_assert(selector<Selector>,
                "strata::rule<Selector, K, V>: Selector must be a layer selector such as "
                "first_n<N>, last_n<N>, boundary<F, L>, every<N>, ordinals<A, B>, "
                "sliding_window_layers, global_layers or any_of<...>");
  static_assert(codec_or_keep<K>,
                "strata::rule<Selector, K, V>: K must be a codec type (f16, q8_0, turbo<3>, ...) "
                "or strata::keep");
  static_assert(codec_or_keep<V>,
                "strata::rule<Selector, K, V>: V must be a codec type (f16, q8_0, turbo<3>, ...) "
                "or strata::keep");
  static_assert(!(std::is_same_v<K, keep> && std::is_same_v<V, keep>),
                "strata::rule<Selector, keep, keep>: a rule must set a K codec, a V codec or both");
  using selector_type = Selector;
  using k_codec = K;
  using v_codec = V;
  static constexpr bool sets_k = !std::is_same_v<K, keep>;
  static constexpr bool sets_v = !std::is_same_v<V, keep>;
};

template <class Selector, class K> using k_rule = rule<Selector, K, keep>;
template <class Selector, class V> using v_rule = rule<Selector, keep, V>;
template <class Selector, class C> using kv_rule = rule<Selector, C, C>;

namespace detail {
template <class T> struct is_rule : std::false_type {};
template <class S, class K, class V> struct is_rule<rule<S, K, V>> : std::true_type {};
}  // namespace detail

// Every KV layer stores K with codec K and V with codec V.
template <class K, class V = K> struct uniform {
  static_assert(policy_codec<K>, "strata::uniform<K, V>: K must be a codec type (f16, q8_0, ...)");
  static_assert(policy_codec<V>, "strata::uniform<K, V>: V must be a codec type (f16, q8_0, ...)");
  using fallback_k = K;
  using fallback_v = V;
  static constexpr auto rules = hana::make_tuple();
};

namespace detail {
template <class T> struct is_uniform : std::false_type {};
template <class K, class V> struct is_uniform<uniform<K, V>> : std::true_type {};
}  // namespace detail

// Rules (first match wins, for K and for V separately), then the fallback.
template <class Fallback, class... Rules> struct layered {
  static_assert(detail::is_uniform<Fallback>::value,
                "strata::layered<Fallback, Rules...>: Fallback must be uniform<K, V>");
  static_assert(sizeof...(Rules) > 0,
                "strata::layered<Fallback>: the rule list is empty; use uniform<K, V> for a "
                "policy without rules");
  static_assert((detail::is_rule<Rules>::value && ...),
                "strata::layered<Fallback, Rules...>: every rule must be a strata::rule<Selector, "
                "K, V> (or k_rule / v_rule / kv_rule)");
  using fallback_k = typename Fallback::fallback_k;
  using fallback_v = typename Fallback::fallback_v;
  static constexpr auto rules = hana::make_tuple(hana::type_c<Rules>...);
};

// Policy concept.
template <class P>
concept layer_policy = std::is_empty_v<P> && requires {
  typename P::fallback_k;
  typename P::fallback_v;
  P::rules;
};

namespace detail {
template <bool IsK, class P, std::size_t Ordinal, std::size_t NKv, attention_kind Attn>
constexpr auto find_codec() {
  auto found = hana::find_if(P::rules, [](auto r) {
    using R = typename decltype(r)::type;
    return hana::bool_c < (IsK ? R::sets_k : R::sets_v) &&
           selector_matches<typename R::selector_type>(Ordinal, NKv, Attn) > ;
  });
  using fallback = std::conditional_t<IsK, typename P::fallback_k, typename P::fallback_v>;
  return hana::maybe(
      hana::type_c<fallback>,
      [](auto r) {
        using R = typename decltype(r)::type;
        return hana::type_c<std::conditional_t<IsK, typename R::k_codec, typename R::v_codec>>;
      },
      found);
}
}  // namespace detail

// The K (or V) codec type of KV ordinal Ordinal of NKv layers of kind Attn, found at compile
// time with hana::find_if over the rule tuple (first match wins).
template <layer_policy P, std::size_t Ordinal, std::size_t NKv,
          attention_kind Attn = attention_kind::global>
using policy_k_codec = typename decltype(detail::find_codec<true, P, Ordinal, NKv, Attn>())::type;

template <layer_policy P, std::size_t Ordinal, std::size_t NKv,
          attention_kind Attn = attention_kind::global>
using policy_v_codec = typename decltype(detail::find_codec<false, P, Ordinal, NKv, Attn>())::type;

// Every codec type that policy P can name, as a hana::tuple of hana::type without duplicates.
template <layer_policy P> constexpr auto policy_codecs() {
  auto add = [](auto set, auto t) {
    if constexpr (std::is_same_v<typename decltype(t)::type, keep>) {
      return set;
    } else if constexpr (decltype(hana::contains(set, t))::value) {
      return set;
    } else {
      return hana::append(set, t);
    }
  };
  auto base = add(hana::make_tuple(hana::type_c<typename P::fallback_k>),
                  hana::type_c<typename P::fallback_v>);
  return hana::fold_left(P::rules, base, [add](auto set, auto r) {
    using R = typename decltype(r)::type;
    return add(add(set, hana::type_c<typename R::k_codec>), hana::type_c<typename R::v_codec>);
  });
}

// True when every codec of policy P is one of Codecs...
template <layer_policy P, class... Codecs> constexpr bool policy_uses_only() {
  constexpr auto allowed = hana::make_tuple(hana::type_c<Codecs>...);
  return hana::all_of(policy_codecs<P>(), [allowed](auto t) { return hana::contains(allowed, t); });
}

// The runtime policy_spec of compile-time policy P.
template <layer_policy P> policy_spec to_spec() {
  policy_spec s;
  s.k = P::fallback_k::id;
  s.v = P::fallback_v::id;
  hana::for_each(P::rules, [&s](auto r) {
    using R = typename decltype(r)::type;
    policy_rule pr;
    for (const auto& sel : R::selector_type::selectors) pr.selectors.push_back(sel);
    if constexpr (R::sets_k) pr.k = R::k_codec::id;
    if constexpr (R::sets_v) pr.v = R::v_codec::id;
    s.rules.push_back(std::move(pr));
  });
  return s;
}

}  // namespace strata
