// A layer of a hand-made layer map for tests: kv KV heads and 2 x kv query heads of head_dim d;
// sliding (window 4) or global; source >= 0 makes it share that layer's KV cache.
#pragma once

#include <cstdint>

#include <strata/layer_map.hpp>

namespace strata_test {

inline strata::layer_info test_layer(std::uint32_t kv, std::uint32_t d, bool sliding = false,
                                     int source = -1) {
  strata::layer_info l;
  l.n_kv_heads = kv;
  l.n_heads = 2 * kv;
  l.head_dim = d;
  if (sliding) l.kind = strata::attention_kind::sliding, l.window = 4;
  if (source >= 0) l.has_kv = false, l.kv_source = source;
  return l;
}

}  // namespace strata_test
