// engine::make_kv -- builds the KV cache the user asked for on the command line:
// `-ctk T -ctv T` (f32 f16 bf16 q8_0 q4_0 turbo2 turbo3 turbo4 vq2) or `--kv-policy STRING`
// (strata's policy strings: presets la1 la2 la5 la6 la7 boundary-v, or rules such as
// "v:first2,last2=q8_0;v=turbo2;k=q8_0").
#pragma once

#include <memory>
#include <string>

#include "kv/kv.hpp"

namespace engine {

class model;

struct kv_options {
  std::string ctk = "f16";
  std::string ctv = "f16";
  std::string policy;      // when set, wins over ctk/ctv
  bool reference = false;  // f32/f32 rows in the engine's own plain cache (kv_f32)
  int max_batch = 512;     // largest batch appended at once (sizes sliding-window rings)

  // The policy string given to strata ("-ctk f16 -ctv f16" or the --kv-policy text).
  std::string policy_string() const;
};

// Throws engine::error listing the valid names for an unknown type or a bad policy.
std::unique_ptr<kv_store> make_kv(const model& m, int n_ctx, const kv_options& o);

}  // namespace engine
