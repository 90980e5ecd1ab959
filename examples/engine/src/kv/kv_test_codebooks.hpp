// engine::test_codebook_resolver -- TEST-ONLY: lets the quality ladder (bench/ladder.sh) run the
// strata cache with the llama.cpp TurboQuant fork's turbo codebooks (strata::fork_codebook<B>)
// in place of strata's Lloyd-Max tables, to compare the two on real models. Selected by the
// environment variable STRATA_TEST_CODEBOOK=fork; unset (the normal case) it returns nullptr and
// the cache keeps its default kernels. Same block layout and bytes, same scale rule (norm
// correction), only the 4/8/16 centroids differ. Never use it for anything but comparisons.
#pragma once

#include <string>

#include <strata/cache/runtime_kv_cache.hpp>

namespace engine {

// nullptr unless STRATA_TEST_CODEBOOK=fork; any other non-empty value is an error naming it.
strata::kernel_resolver test_codebook_resolver();

// " [test-only: fork codebooks]" when the resolver is active, "" otherwise (for describe()).
std::string test_codebook_note();

}  // namespace engine
