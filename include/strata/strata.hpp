#pragma once
// The umbrella header: every public header of strata. Convenient for users; strata's own
// headers include only what they need.
//
// Note: header-only (without strata::kernels) it includes the Highway kernels
// (strata/kernels/kernels.hpp), and Highway 1.0.3 allows one hwy/foreach_target.h per
// translation unit, so such a file cannot also run its own Highway dynamic dispatch.

#include <strata/version.hpp>

#include <strata/codec/codecs.hpp>
#include <strata/codec/half.hpp>
#include <strata/codec/lloyd_max.hpp>
#include <strata/codec/turbo_pack.hpp>
#include <strata/kernels/kernel_table.hpp>
#include <strata/kernels/kernels.hpp>
#include <strata/reference/reference.hpp>
#include <strata/rotation/hadamard.hpp>
#include <strata/rotation/identity.hpp>

#include <strata/layer_map.hpp>
#include <strata/policy/parse.hpp>
#include <strata/policy/policy.hpp>
#include <strata/policy/presets.hpp>
#include <strata/policy/report.hpp>
#include <strata/policy/selectors.hpp>
#include <strata/policy/spec.hpp>

#include <strata/cache/layer_kernels.hpp>
#include <strata/cache/runtime_kv_cache.hpp>
#include <strata/cache/softmax.hpp>
#include <strata/cache/split_k.hpp>
#include <strata/cache/state_file.hpp>
#include <strata/codec/layout.hpp>
#include <strata/kv_cache.hpp>
#include <strata/plan.hpp>
