// The fuzz targets of tests/fuzz/targets, replayed: each target's seeds (built in code), its
// saved corpus (tests/fuzz/<target>/: inputs the fuzzer found reaching new code), and for each
// seed a set of truncations and byte flips. A target checks its own properties and aborts on a
// violation; under ASan (STRATA_SANITIZE) this also proves there is no out-of-bounds access.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "../fuzz/targets/targets.hpp"
#include "../support/corpus_files.hpp"

namespace {

// Runs the target on an exactly-sized copy (so that ASan sees a read past the end).
void run(const strata_fuzz::target& t, const strata_fuzz::bytes& b) {
  const strata_fuzz::bytes exact(b);
  t.run({exact.data(), exact.size()});
}

}  // namespace

TEST_CASE("every fuzz target's seeds, corpus and seed mutations") {
  for (const strata_fuzz::target& t : strata_fuzz::all_targets) {
    CAPTURE(t.name);
    const auto seeds = t.seeds();
    CHECK(seeds.size() >= 4);
    std::size_t runs = 0;
    for (const auto& s : seeds) {
      run(t, s), ++runs;
      // 32 truncations and 96 single-byte changes per seed, spread over its length.
      for (std::size_t i = 1; i <= 32; ++i) {
        run(t, strata_fuzz::bytes(s.begin(), s.begin() + long(s.size() * i / 33))), ++runs;
      }
      for (std::size_t i = 0; i < 96 && s.size() > 1; ++i) {
        strata_fuzz::bytes m = s;
        const std::size_t at = 1 + (i * 7919) % (m.size() - 1);
        m[at] = static_cast<std::uint8_t>(m[at] + 1 + i);
        run(t, m), ++runs;
      }
    }
    const auto corpus = strata_test::files_in(std::filesystem::path(STRATA_FUZZ_DIR) / t.name);
    for (const auto& p : corpus) {
      CAPTURE(p.string());
      run(t, strata_test::read_bytes(p)), ++runs;
    }
    MESSAGE(t.name << ": " << seeds.size() << " seeds, " << corpus.size() << " corpus inputs, "
                   << runs << " runs");
  }
}
