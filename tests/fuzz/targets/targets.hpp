// The fuzz targets beyond the GGUF reader: each takes arbitrary bytes, must never crash or
// trip a sanitizer, may only fail with the error type its input's reader documents, and
// checks the properties its file names. A violated property prints what and aborts, which
// both libFuzzer (tests/fuzz/entry.cpp) and the corpus replay (tests/engine/fuzz_corpus_test.cpp)
// report as a failure.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string_view>
#include <vector>

namespace strata_fuzz {

using input = std::span<const std::uint8_t>;
using bytes = std::vector<std::uint8_t>;

struct target {
  std::string_view name;  // also the corpus directory: tests/fuzz/<name>/
  void (*run)(input);
  std::vector<bytes> (*seeds)();  // valid inputs, built in code
};

void policy(input in);
std::vector<bytes> policy_seeds();
void state_file(input in);
std::vector<bytes> state_file_seeds();
void kld_base(input in);
std::vector<bytes> kld_base_seeds();
void tokenizer(input in);
std::vector<bytes> tokenizer_seeds();
void chat_template(input in);
std::vector<bytes> chat_template_seeds();

inline constexpr target all_targets[] = {
    {"policy", &policy, &policy_seeds},
    {"state_file", &state_file, &state_file_seeds},
    {"kld_base", &kld_base, &kld_base_seeds},
    {"tokenizer", &tokenizer, &tokenizer_seeds},
    {"chat_template", &chat_template, &chat_template_seeds},
};

// A property that must hold for every input.
inline void check(bool ok, const char* what, std::string_view detail = {}) {
  if (ok) return;
  std::fprintf(stderr, "fuzz property violated: %s\n", what);
  std::fwrite(detail.data(), 1, detail.size(), stderr);
  std::fputc('\n', stderr);
  std::abort();
}

// An error message of the project's form: "error: <what> (<where>)".
inline bool well_formed(std::string_view m) {
  return m.starts_with("error: ") && m.ends_with(")") && m.find(" (") != std::string_view::npos;
}

inline bytes to_bytes(std::string_view s) { return bytes(s.begin(), s.end()); }

}  // namespace strata_fuzz
