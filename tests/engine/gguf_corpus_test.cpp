// Bad GGUF input, as regression tests: the fuzzer's saved inputs (tests/fuzz/corpus: crashers
// found while fuzzing, and inputs that reached new code), the seeds (tests/fuzz/seeds: small
// valid files), every truncation of every seed, and every seed with each byte replaced.
// Each must parse or throw engine::error whose message reads "error: <what> (<where>)";
// under ASan (STRATA_SANITIZE) this also proves there is no out-of-bounds read.
#include <doctest/doctest.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "../support/corpus_files.hpp"
#include "io/gguf.hpp"
#include "io/quant.hpp"

namespace {

using strata_test::files_in;
const auto read_file = strata_test::read_bytes;

enum class outcome { parsed, error };

// Parses `bytes` (copied into a buffer of exactly their size) and walks the result.
outcome parse(const std::vector<uint8_t>& bytes, std::string& message) {
  const std::vector<uint8_t> exact(bytes);
  try {
    const engine::gguf g(std::span<const uint8_t>(exact.data(), exact.size()), "input");
    float block[256];
    for (const engine::tensor& t : g.tensors()) {
      REQUIRE(t.data >= exact.data());
      REQUIRE(t.data + t.nbytes <= exact.data() + exact.size());
      engine::dequantize(t.type, t.data, block, engine::block_values(t.type));
    }
    for (const auto& [key, value] : g.metadata())
      if (value.type == engine::gguf_type::ARRAY && value.elem == engine::gguf_type::STRING)
        CHECK(g.get_string_array(key).size() == value.count);
    return outcome::parsed;
  } catch (const engine::error& e) {
    message = e.what();
    return outcome::error;
  }
}

bool well_formed(const std::string& message) {
  return message.rfind("error: ", 0) == 0 &&
         message.find(" (input: offset ") != std::string::npos && message.back() == ')';
}

const std::string kFuzzDir = STRATA_FUZZ_DIR;

// The corpus files are named after the outcome they produced when saved: "parsed-*", or the
// error's <what> with numbers as N and quoted names as 'S', reduced to [a-z0-9-] (60 chars).
std::string slug(const std::string& message) {
  std::string what = message.substr(0, message.find(" ("));
  if (what.rfind("error: ", 0) == 0) what = what.substr(7);
  // Numbers -> N, quoted names -> 'S' (quotes paired left to right), as the files were named.
  std::string norm;
  for (size_t i = 0; i < what.size();) {
    if (std::isdigit(static_cast<unsigned char>(what[i]))) {
      while (i < what.size() && std::isdigit(static_cast<unsigned char>(what[i]))) ++i;
      norm += 'N';
    } else if (what[i] == '\'' && what.find('\'', i + 1) != std::string::npos) {
      i = what.find('\'', i + 1) + 1;
      norm += "'S'";
    } else {
      norm += what[i++];
    }
  }
  std::string out;
  for (char c : norm) {
    if (std::isalnum(static_cast<unsigned char>(c)))
      out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    else if (!out.empty() && out.back() != '-')
      out += '-';
  }
  while (!out.empty() && out.back() == '-') out.pop_back();
  return out.substr(0, 60);
}

}  // namespace

TEST_CASE("seeds parse; every truncation and every one-byte change gives a clear error or parses") {
  const auto seeds = files_in(kFuzzDir + "/seeds");
  REQUIRE(seeds.size() >= 4);
  int errors = 0, parsed = 0;
  for (const auto& path : seeds) {
    INFO(path.string());
    const std::vector<uint8_t> bytes = read_file(path);
    std::string message;
    CHECK(parse(bytes, message) == outcome::parsed);
    for (size_t n = 0; n < bytes.size(); ++n) {
      std::vector<uint8_t> cut(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n));
      message.clear();
      const outcome o = parse(cut, message);
      // Only a cut inside the trailing padding or tensor data can leave a valid prefix, and a
      // tensor-less file whose metadata ends at the cut.
      if (o == outcome::error) {
        ++errors;
        if (!well_formed(message)) FAIL_CHECK("truncated to " << n << ": " << message);
      } else {
        ++parsed;
      }
    }
    for (size_t i = 0; i < bytes.size(); ++i)
      for (uint8_t v : {uint8_t{0x00}, uint8_t{0xFF}, uint8_t{0x7F}}) {
        std::vector<uint8_t> changed = bytes;
        changed[i] = v;
        message.clear();
        if (parse(changed, message) == outcome::error && !well_formed(message))
          FAIL_CHECK("byte " << i << " = " << int{v} << ": " << message);
      }
  }
  CHECK(errors > 0);
  MESSAGE(errors << " truncations rejected, " << parsed << " parsed");
}

TEST_CASE("the fuzzer's saved corpus (crashers found while fuzzing) parses or fails cleanly") {
  const auto corpus = files_in(kFuzzDir + "/corpus");
  if (corpus.empty()) {
    MESSAGE("no corpus files in " << kFuzzDir << "/corpus");
    return;
  }
  for (const auto& path : corpus) {
    INFO(path.string());
    std::string message;
    const std::string name = path.filename().string();
    if (parse(read_file(path), message) == outcome::error) {
      CHECK(well_formed(message));
      CHECK(slug(message) == name);  // the same error as when the input was saved
    } else {
      CHECK(name.rfind("parsed-", 0) == 0);
    }
  }
  MESSAGE(corpus.size() << " corpus files");
}

TEST_CASE("hand-made bad files name the problem") {
  const std::vector<uint8_t> seed = read_file(kFuzzDir + "/seeds/legacy.gguf");
  REQUIRE(seed.size() > 64);
  std::string message;
  // Truncated inside the tensor data.
  std::vector<uint8_t> cut(seed.begin(), seed.end() - 40);  // the writer pads the end to 32
  REQUIRE(parse(cut, message) == outcome::error);
  CHECK(message.find("runs past the end") != std::string::npos);
  // Wrong magic.
  std::vector<uint8_t> magic = seed;
  magic[0] = 'X';
  REQUIRE(parse(magic, message) == outcome::error);
  CHECK(message.find("not a GGUF file") != std::string::npos);
  // Absurd tensor count (bytes 8..15).
  std::vector<uint8_t> count = seed;
  count[15] = 0x7F;
  REQUIRE(parse(count, message) == outcome::error);
  CHECK(message.find("tensor count") != std::string::npos);
  // Absurd metadata count (bytes 16..23).
  std::vector<uint8_t> kv = seed;
  kv[20] = 0x7F;
  REQUIRE(parse(kv, message) == outcome::error);
  CHECK(message.find("metadata count") != std::string::npos);
  // Length of the first key (bytes 24..31) past the end.
  std::vector<uint8_t> key = seed;
  key[29] = 0x10;
  REQUIRE(parse(key, message) == outcome::error);
  CHECK(message.find("key length") != std::string::npos);
  CHECK(message.find("runs past the end of the file") != std::string::npos);
}
