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

namespace {

std::vector<std::filesystem::path> files_in(const std::filesystem::path& dir) {
  std::vector<std::filesystem::path> out;
  if (!std::filesystem::is_directory(dir)) return out;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    if (e.is_regular_file() && e.path().filename().string()[0] != '.') out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

strata_fuzz::bytes read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

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
    const auto corpus = files_in(std::filesystem::path(STRATA_FUZZ_DIR) / t.name);
    for (const auto& p : corpus) {
      CAPTURE(p.string());
      run(t, read_file(p)), ++runs;
    }
    MESSAGE(t.name << ": " << seeds.size() << " seeds, " << corpus.size() << " corpus inputs, "
                   << runs << " runs");
  }
}
