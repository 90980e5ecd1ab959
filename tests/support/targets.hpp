// The per-target harness of the kernel tests (strata's kernels, the engine's matmul): run a
// check once per SIMD target this CPU supports and this build generated, each forced in turn
// with hwy::SetSupportedTargetsForTest, then restore the normal choice.
//
// STRATA_TEST_TARGETS (space-separated Highway target names, e.g. "SVE2 SVE") limits the run
// to those targets; .ci/aarch64.sh uses it so that NEON, the same code on every emulated CPU,
// is not run once per CPU under qemu. Unset: every supported and generated target.
#pragma once

#include <doctest/doctest.h>

#include <cstdint>
#include <cstdlib>
#include <string>

#include <hwy/targets.h>

namespace strata_test {

inline bool target_selected(std::int64_t target) {
  const char* env = std::getenv("STRATA_TEST_TARGETS");
  if (env == nullptr || *env == '\0') return true;
  std::string list = " ", name = " ";  // (appends: GCC 12 warns on " " + std::string)
  list.append(env).append(" ");
  name.append(hwy::TargetName(target)).append(" ");
  return list.find(name) != std::string::npos;
}

// f() once per selected target, with the target's name in the failure context.
template <class F> void for_each_target(F&& f) {
  for (const std::int64_t target : hwy::SupportedAndGeneratedTargets()) {
    if (!target_selected(target)) continue;
    hwy::SetSupportedTargetsForTest(target);
    INFO("target ", std::string(hwy::TargetName(target)));
    f();
  }
  hwy::SetSupportedTargetsForTest(0);
}

// "AVX3 AVX2 ... (tested here: AVX2 ...)": what the harness ran, for a test's message; fails
// the test when STRATA_TEST_TARGETS selects none of this CPU's targets.
inline void check_targets_exercised() {
  const auto targets = hwy::SupportedAndGeneratedTargets();
  CHECK(!targets.empty());
  std::string names, selected;
  for (auto t : targets) {
    names += std::string(hwy::TargetName(t)) + " ";
    if (target_selected(t)) selected += std::string(hwy::TargetName(t)) + " ";
  }
  MESSAGE("targets: ", names, "(tested here: ", selected, ")");
  CHECK_MESSAGE(!selected.empty(), "STRATA_TEST_TARGETS selects none of this CPU's targets");
}

}  // namespace strata_test
