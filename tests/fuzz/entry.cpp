// libFuzzer entry of one target of tests/fuzz/targets (STRATA_FUZZ_TARGET names it; built by
// tests/fuzz.cmake with clang). With STRATA_FUZZ_WRITE_SEEDS=<dir> in the environment it only
// writes the target's seeds (built in code) into <dir> and exits.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "targets/targets.hpp"

#define STRATA_FUZZ_CAT2(a, b) a##b
#define STRATA_FUZZ_CAT(a, b) STRATA_FUZZ_CAT2(a, b)

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (const char* dir = std::getenv("STRATA_FUZZ_WRITE_SEEDS")) {
    std::filesystem::create_directories(dir);
    int i = 0;
    for (const auto& s : strata_fuzz::STRATA_FUZZ_CAT(STRATA_FUZZ_TARGET, _seeds)()) {
      std::ofstream f(std::filesystem::path(dir) / ("seed-" + std::to_string(i++)),
                      std::ios::binary);
      f.write(reinterpret_cast<const char*>(s.data()), std::streamsize(s.size()));
    }
    std::exit(0);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  strata_fuzz::STRATA_FUZZ_TARGET({data, size});
  return 0;
}
