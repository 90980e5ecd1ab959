// Fuzz target: the KL-divergence base reader of strata-perplexity
// (examples/engine/src/io/kld_base.hpp). Input: byte 0 bits 0-1 are the chunks the run needs (0-3),
// bit 7 makes the harness rewrite the trailing checksum to match (so mutations reach the rows); the
// rest is the file. The run has n_ctx 8, a vocabulary of 5 and its first scored position at 4, and
// the tokens of the seeds. Properties: a bad file throws engine::error or the state reader's
// std::runtime_error, both "error: ... (...)" naming the file; every row a reader hands out holds
// finite log-probs <= 0.
#include <unistd.h>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <utility>

#include <strata/cache/state_file.hpp>

#include "error.hpp"
#include "io/kld_base.hpp"
#include "targets.hpp"

namespace strata_fuzz {

namespace {

constexpr engine::kld_shape shape{8, 5, 4};

std::vector<int32_t> run_tokens() {
  std::vector<int32_t> t(4 * shape.n_ctx);
  for (std::size_t i = 0; i < t.size(); ++i) t[i] = int32_t((i * 7 + 3) % shape.n_vocab);
  return t;
}

std::string temp_path(const char* what) {
  return (std::filesystem::temp_directory_path() /
          ("strata-fuzz-" + std::to_string(::getpid()) + "-" + what))
      .string();
}

}  // namespace

void kld_base(input in) {
  static const std::vector<int32_t> tokens = run_tokens();
  static const std::string path = temp_path("kld.bin");
  if (in.empty()) return;
  const uint32_t n_chunks = in[0] & 3;
  bytes file(in.begin() + 1, in.end());
  if ((in[0] & 0x80) && file.size() >= 8) {
    const std::uint64_t h =
        strata::detail::fnv1a(strata::detail::fnv1a_init, file.data(), file.size() - 8);
    for (int i = 0; i < 8; ++i) file[file.size() - 8 + i] = std::uint8_t(h >> (8 * i));
  }
  {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char*>(file.data()), std::streamsize(file.size()));
    check(bool(f), "cannot write the fuzz input's temporary file");
  }
  try {
    engine::kld_base_reader r(path, shape, n_chunks, tokens);
    float lp[shape.n_vocab];
    for (uint32_t c = 0; c < n_chunks; ++c)
      for (uint64_t j = 0; j < shape.scored_per_chunk(); ++j) {
        r.row(lp, int(c + 1), int(shape.first + j));
        for (float x : lp)
          check(std::isfinite(x) && x <= 1e-3f,
                "a row holds a log-prob that is not finite and <= 0");
      }
    r.finish();
    check(r.chunks() >= n_chunks, "a base with fewer chunks than the run needs was accepted");
  } catch (const std::runtime_error& e) {  // engine::error is one
    check(well_formed(e.what()), "KLD base error message is not 'error: ... (...)'", e.what());
    check(std::string_view(e.what()).find(path) != std::string_view::npos,
          "KLD base error does not name the file");
  }
}

std::vector<bytes> kld_base_seeds() {
  const std::vector<int32_t> tokens = run_tokens();
  const std::string path = temp_path("kld-seed.bin");
  std::vector<bytes> s;
  for (const auto& [chunks, need] : {std::pair{1u, 1u}, {3u, 3u}, {3u, 0u}, {3u, 2u}}) {
    engine::kld_base_writer w(path, shape, chunks, tokens);
    float lp[shape.n_vocab];
    for (uint64_t r = 0; r < chunks * shape.scored_per_chunk(); ++r) {
      for (uint32_t i = 0; i < shape.n_vocab; ++i) lp[i] = -float(i + r) * 0.75f;
      w.row(lp);
    }
    w.finish();
    std::ifstream f(path, std::ios::binary);
    bytes b(std::istreambuf_iterator<char>(f), {});
    b.insert(b.begin(), std::uint8_t(need));
    s.push_back(std::move(b));
  }
  std::filesystem::remove(path);
  return s;
}

}  // namespace strata_fuzz
