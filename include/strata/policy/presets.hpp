#pragma once
// Preset policies: the TurboQuant fork's TURBO_LAYER_ADAPTIVE modes, selected by KV-layer
// ordinal (the fork used raw layer indices, so on a hybrid model whose KV lives on every 4th
// layer its "first 2 + last 2" upgraded one KV layer instead of four).
//
//   la1<Base>          first 4 + last 4 KV layers: K and V q8_0; the rest as Base
//   la2<Base>          last 8 KV layers: K and V q8_0; the rest as Base
//   la5<K>             first 2 + last 2: V turbo4, the rest V turbo2; K everywhere
//   la6<K>             last 8: V turbo4, the rest V turbo2; K everywhere
//   la7<K> = boundary_v<K>  first 2 + last 2: V q8_0, the rest V turbo2; K everywhere
//   boundary_v_4_4<K>  first 4 + last 4: V q8_0, the rest V turbo2; K everywhere
//
// Runtime names (parse_policy): la1 la2 la5 la6 la7 boundary-v boundary-v-4-4; la1 and la2
// use turbo3/turbo3 and la5..la7 use q8_0 K unless the policy string sets the fallback.

#include <array>
#include <string_view>

#include <strata/codec/q8_0.hpp>
#include <strata/codec/turbo.hpp>
#include <strata/policy/policy.hpp>

namespace strata {

template <class Base = uniform<turbo<3>, turbo<3>>>
using la1 = layered<Base, kv_rule<boundary<4, 4>, q8_0>>;

template <class Base = uniform<turbo<3>, turbo<3>>>
using la2 = layered<Base, kv_rule<last_n<8>, q8_0>>;

template <class K = q8_0>
using la5 = layered<uniform<K, turbo<2>>, v_rule<boundary<2, 2>, turbo<4>>>;

template <class K = q8_0> using la6 = layered<uniform<K, turbo<2>>, v_rule<last_n<8>, turbo<4>>>;

template <class K = q8_0>
using boundary_v = layered<uniform<K, turbo<2>>, v_rule<boundary<2, 2>, q8_0>>;

template <class K = q8_0> using la7 = boundary_v<K>;

template <class K = q8_0>
using boundary_v_4_4 = layered<uniform<K, turbo<2>>, v_rule<boundary<4, 4>, q8_0>>;

// Runtime table of the presets, by name.
struct policy_preset {
  std::string_view name;
  policy_spec (*spec)();
  std::string_view description;
};

inline constexpr std::array<policy_preset, 7> policy_presets{{
    {"la1", &to_spec<la1<>>, "first 4 + last 4 KV layers K and V q8_0 (rest: turbo3/turbo3)"},
    {"la2", &to_spec<la2<>>, "last 8 KV layers K and V q8_0 (rest: turbo3/turbo3)"},
    {"la5", &to_spec<la5<>>, "first 2 + last 2 V turbo4, rest V turbo2 (K q8_0)"},
    {"la6", &to_spec<la6<>>, "last 8 V turbo4, rest V turbo2 (K q8_0)"},
    {"la7", &to_spec<la7<>>, "Boundary V: first 2 + last 2 V q8_0, rest V turbo2 (K q8_0)"},
    {"boundary-v", &to_spec<boundary_v<>>, "= la7"},
    {"boundary-v-4-4", &to_spec<boundary_v_4_4<>>,
     "first 4 + last 4 V q8_0, rest V turbo2 (K q8_0)"},
}};

}  // namespace strata
