// engine::choose_policy -- from a tuner's per-layer predictions, the --kv-policy string that
// meets a budget in bits/value with the least predicted KLD, or a KLD target with the fewest
// bytes: each KV layer's K and V pick a codec of the tuned menu (or f16), on the lower convex
// hull of predicted KLD against bytes (a Lagrangian sweep), then single upgrades (downgrades)
// fill what the budget (the target) leaves. k-balance is tried on and off; the better wins.
#pragma once

#include <cstdint>
#include <string>

#include <strata/layer_map.hpp>

#include "run/tune.hpp"

namespace engine {

struct choice_target {
  bool kld = false;    // false: `value` is a budget in bits/value; true: a KLD target
  double value = 5.0;  // bits/value, or mean KLD against the f16 cache
};

struct policy_choice {
  std::string policy;        // --kv-policy syntax
  double bits = 0;           // policy_bits() of `policy`
  double predicted_kld = 0;  // tune gain x the sum of the chosen codecs' errors
  bool k_balance = false;
};

// bits/value of a policy for a context: (K/V bytes the cache allocates + its side data:
// strata::plan's kv + side) x 8 / the K and V values it holds. max_batch as the cache's.
double policy_bits(const strata::layer_map& map, const std::string& policy, int n_ctx,
                   int max_batch);

// Throws engine::error when the budget is below the cheapest menu codec's bits/value.
policy_choice choose_policy(const tune_result& t, const strata::layer_map& map, int n_ctx,
                            int max_batch, const choice_target& target);

}  // namespace engine
