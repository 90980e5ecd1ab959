// Whether strata::axpy runs the integer V product (strata/kernels/int8_axpy.hpp: int8_v_on) on
// the target chosen now: the best one the CPU supports, or the one a test forced with
// hwy::SetSupportedTargetsForTest. Tests that compare axpy with the float reference need it.
#pragma once

#include <cstddef>
#include <cstdint>

#include <hwy/targets.h>

#include <strata/codec/group.hpp>
#include <strata/codec/standard_codecs.hpp>
#include <strata/kernels/int8_axpy.hpp>
#include <strata/layer_map.hpp>
#include <strata/policy/parse.hpp>
#include <strata/policy/report.hpp>

namespace strata_test {

template <class Codec> bool int8_v_here() {
  const std::int64_t mask = hwy::SupportedTargets() & HWY_TARGETS;
  return strata::kernels::int8_v_on<Codec>(mask & -mask);
}

// The same for the codec a kernel table of (id, head dim) runs.
inline bool int8_v_here(strata::codec_id id, std::size_t head_dim) {
  bool on = false;
  strata::standard_codecs::visit(id, [&](auto c) {
    strata::with_group_for<typename decltype(c)::type>(
        std::uint32_t(head_dim), [&](auto e) { on = int8_v_here<typename decltype(e)::type>(); });
  });
  return on;
}

// The same for the V rows of KV layer 0 of a cache with this policy over this map.
inline bool int8_v_here(const char* policy, const strata::layer_map& m) {
  const strata::policy_report r = strata::report(strata::parse_policy(policy), m);
  return int8_v_here(r.layers.at(0).v, m[std::size_t(r.layers.at(0).layer)].head_dim);
}

}  // namespace strata_test
