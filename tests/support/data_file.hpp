// A file of ../shared/data (STRATA_DATA_DIR), which every test machine has (stories260K.gguf,
// wiki.test.raw, vocab/...): a test that needs one fails, naming it, when it is missing.
#pragma once

#include <doctest/doctest.h>

#include <filesystem>
#include <string>

namespace strata_test {

inline std::string data_file(const std::string& name) {
  const std::string path = std::string(STRATA_DATA_DIR) + "/" + name;
  REQUIRE_MESSAGE(std::filesystem::exists(path), path << " not found (STRATA_DATA_DIR)");
  return path;
}

}  // namespace strata_test
