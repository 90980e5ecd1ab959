#pragma once
// Layer selectors: which KV layers a policy rule applies to.
//
// Selectors work on the *KV-layer ordinal* (0 = the first layer that owns a KV cache) and the
// number of KV layers, never on the raw layer index, so "the first 2 and last 2 layers" means
// the same thing on a dense model and on a hybrid one whose KV lives on every 4th layer.
//
// Each selector is an empty type with a constexpr `matches(ordinal, n_kv_layers, kind)` and
// a runtime description (`layer_selector`) that the policy-string parser also produces.

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>

#include <strata/layer_map.hpp>

namespace strata {

// Runtime form of one selector. A rule matches a layer when any of its selectors does.
struct layer_selector {
  enum class what : std::uint8_t {
    all,      // every KV layer
    first,    // ordinal < a
    last,     // ordinal >= n_kv - a
    every,    // ordinal % a == b
    ordinal,  // a <= ordinal <= b
    sliding,  // sliding-window layers
    global,   // global-attention layers
  };
  what kind = what::all;
  std::uint32_t a = 0;
  std::uint32_t b = 0;

  constexpr bool matches(std::size_t ordinal, std::size_t n_kv, attention_kind attn) const {
    switch (kind) {  // evaluated once per layer when a policy is resolved, never per token
      case what::all: return true;
      case what::first: return ordinal < a;
      case what::last: return ordinal + a >= n_kv;
      case what::every: return a != 0 && ordinal % a == b;
      case what::ordinal: return a <= ordinal && ordinal <= b;
      case what::sliding: return attn == attention_kind::sliding;
      case what::global: return attn == attention_kind::global;
    }
    return false;
  }

  // The policy-string spelling: all, first2, last2, every4, every4+1, 3, 5-7, sliding, global.
  std::string to_string() const {
    switch (kind) {
      case what::all: return "all";
      case what::first: return "first" + std::to_string(a);
      case what::last: return "last" + std::to_string(a);
      case what::every:
        return "every" + std::to_string(a) + (b ? "+" + std::to_string(b) : std::string());
      case what::ordinal:
        return a == b ? std::to_string(a) : std::to_string(a) + "-" + std::to_string(b);
      case what::sliding: return "sliding";
      case what::global: return "global";
    }
    return "?";
  }

  friend constexpr bool operator==(const layer_selector&, const layer_selector&) = default;
};

namespace detail {
template <std::size_t N> struct selector_base {
  // The runtime description; a rule matches when any entry does.
  static constexpr std::size_t size = N;
};
}  // namespace detail

// The first N KV layers (ordinals 0 .. N-1).
template <std::size_t N> struct first_n : detail::selector_base<1> {
  static constexpr std::array<layer_selector, 1> selectors{
      {{layer_selector::what::first, static_cast<std::uint32_t>(N), 0}}};
};

// The last N KV layers.
template <std::size_t N> struct last_n : detail::selector_base<1> {
  static constexpr std::array<layer_selector, 1> selectors{
      {{layer_selector::what::last, static_cast<std::uint32_t>(N), 0}}};
};

// The first First and the last Last KV layers ("Boundary" layers).
template <std::size_t First, std::size_t Last> struct boundary : detail::selector_base<2> {
  static constexpr std::array<layer_selector, 2> selectors{
      {{layer_selector::what::first, static_cast<std::uint32_t>(First), 0},
       {layer_selector::what::last, static_cast<std::uint32_t>(Last), 0}}};
};

// Every Nth KV layer, starting at ordinal Offset.
template <std::size_t N, std::size_t Offset = 0> struct every : detail::selector_base<1> {
  static_assert(N > 0, "strata::every<N>: N must be > 0");
  static_assert(Offset < N, "strata::every<N, Offset>: Offset must be < N");
  static constexpr std::array<layer_selector, 1> selectors{
      {{layer_selector::what::every, static_cast<std::uint32_t>(N),
        static_cast<std::uint32_t>(Offset)}}};
};

// KV ordinals First .. Last (inclusive).
template <std::size_t First, std::size_t Last = First> struct ordinals : detail::selector_base<1> {
  static_assert(First <= Last, "strata::ordinals<First, Last>: First must be <= Last");
  static constexpr std::array<layer_selector, 1> selectors{
      {{layer_selector::what::ordinal, static_cast<std::uint32_t>(First),
        static_cast<std::uint32_t>(Last)}}};
};

// Layers with sliding-window attention, or with global attention (per the layer map).
struct sliding_window_layers : detail::selector_base<1> {
  static constexpr std::array<layer_selector, 1> selectors{{{layer_selector::what::sliding, 0, 0}}};
};
struct global_layers : detail::selector_base<1> {
  static constexpr std::array<layer_selector, 1> selectors{{{layer_selector::what::global, 0, 0}}};
};
struct all_layers : detail::selector_base<1> {
  static constexpr std::array<layer_selector, 1> selectors{{{layer_selector::what::all, 0, 0}}};
};

// A layer matching any of the selectors S...
template <class... S> struct any_of : detail::selector_base<(S::size + ... + 0)> {
  static_assert(sizeof...(S) > 0, "strata::any_of<>: give at least one selector");
  static constexpr std::array<layer_selector, (S::size + ... + 0)> selectors = [] {
    std::array<layer_selector, (S::size + ... + 0)> out{};
    std::size_t i = 0;
    (([&] {
       for (const auto& s : S::selectors) out[i++] = s;
     }()),
     ...);
    return out;
  }();
};

// Selector concept: an empty type with a constexpr array of layer_selector.
template <class S>
concept selector = std::is_empty_v<S> && requires {
  { S::selectors.size() } -> std::convertible_to<std::size_t>;
  { S::selectors[0] } -> std::convertible_to<layer_selector>;
};

// Whether selector S matches KV ordinal `ordinal` of `n_kv` KV layers of kind `attn`.
template <selector S>
constexpr bool selector_matches(std::size_t ordinal, std::size_t n_kv,
                                attention_kind attn = attention_kind::global) {
  for (const auto& s : S::selectors)
    if (s.matches(ordinal, n_kv, attn)) return true;
  return false;
}

}  // namespace strata
