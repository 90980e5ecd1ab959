// Its turbo codec types (the fork's codebooks) are not among strata::kernels' precompiled ones:
// this unit compiles their kernels itself (about 80 s of CPU for every Highway target), unless
// the build leaves them out (-DSTRATA_TEST_CODEBOOKS=OFF defines STRATA_NO_TEST_CODEBOOKS: the
// CI stages that never run the ladder).
#ifndef STRATA_NO_TEST_CODEBOOKS
#define STRATA_KERNELS_DEFINE 1
#endif
#include "kv/kv_test_codebooks.hpp"

#include <cstdlib>
#include <string_view>

#include <strata/cache/layer_kernels.hpp>
#include <strata/codec/lloyd_max.hpp>

#include "error.hpp"

namespace engine {

namespace {

#ifndef STRATA_NO_TEST_CODEBOOKS
// The standard codec set with every turbo codebook swapped for the fork's table (test-only).
strata::codec_kernels fork_codebook_kernels(strata::codec_id id, std::uint32_t head_dim) {
  using namespace strata;
  return kernels_from<codec_set<f32, f16, bf16, q8_0, q4_0, turbo<2, 128, fork_codebook<2>>,
                                turbo<3, 128, fork_codebook<3>>, turbo<4, 128, fork_codebook<4>>>>(
      id, head_dim);
}
#endif

std::string_view env_value() {
  const char* v = std::getenv("STRATA_TEST_CODEBOOK");
  return v ? std::string_view(v) : std::string_view();
}

}  // namespace

strata::kernel_resolver test_codebook_resolver() {
  const std::string_view v = env_value();
  if (v.empty() || v == "lloyd-max") return nullptr;
#ifndef STRATA_NO_TEST_CODEBOOKS
  if (v == "fork") return &fork_codebook_kernels;
#else
  if (v == "fork")
    throw make_error(
        "STRATA_TEST_CODEBOOK=fork: this build leaves the test codebooks out "
        "(configured with -DSTRATA_TEST_CODEBOOKS=OFF)",
        "kv_strata");
#endif
  throw make_error("unknown STRATA_TEST_CODEBOOK '" + std::string(v) + "' (valid: fork, lloyd-max)",
                   "kv_strata");
}

std::string test_codebook_note() {
  return test_codebook_resolver() ? " [test-only: fork codebooks]" : "";
}

}  // namespace engine
