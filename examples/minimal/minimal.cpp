// strata's minimal example (the README's "Minimal example"; tests/consumer builds this file
// through find_package, add_subdirectory and FetchContent). It compresses random head vectors
// (head_dim 128, a few outlier channels like real keys) with every codec and prints a table:
// bits per value, relative MSE, encode speed and the speed of q.K scores read straight from the
// compressed rows. Only public headers; links only strata::strata.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include <strata/codec/standard_codecs.hpp>
#include <strata/kernels/kernel_table.hpp>
#include <strata/rotation/hadamard.hpp>
#include <strata/version.hpp>

namespace {

constexpr std::size_t head_dim = 128;
using rotation = strata::hadamard<>;  // turbo codecs store rotated rows (k.layout.rotated)

// [readme]
// Compress `rows` head vectors with one codec and decode them again.
std::vector<float> round_trip(strata::codec_id id, const std::vector<float>& rows) {
  const strata::codec_kernels k = strata::make_kernel_table(id, head_dim);
  const std::size_t row_bytes = k.layout.row_bytes;
  std::vector<unsigned char> blocks(row_bytes);
  std::vector<float> out(rows.size()), row(head_dim);
  for (std::size_t r = 0; r < rows.size() / head_dim; ++r) {
    std::copy_n(&rows[r * head_dim], head_dim, row.begin());
    if (k.layout.rotated) rotation::forward(row.data(), head_dim);
    k.encode(row.data(), head_dim, blocks.data());
    k.decode(blocks.data(), head_dim, &out[r * head_dim]);
    if (k.layout.rotated) rotation::inverse(&out[r * head_dim], head_dim);
  }
  return out;
}
// [/readme]

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

// The optional argument: how many head vectors (default 4096; the consumer tests, whose kernels
// are built without optimization, pass 64).
int main(int argc, char** argv) {
  std::size_t n = 4096;
  if (argc > 2) {
    std::fprintf(stderr, "usage: %s [head vectors, 1..1048576]\n", argv[0]);
    return 2;
  }
  if (argc == 2) {
    const std::string a = argv[1];
    char* end = nullptr;
    const unsigned long long v = std::strtoull(a.c_str(), &end, 10);
    if (a.empty() || a[0] == '-' || *end != '\0' || v < 1 || v > (1u << 20)) {
      std::fprintf(stderr, "error: head vectors must be a whole number in 1..1048576, not '%s'\n",
                   a.c_str());
      return 2;
    }
    n = std::size_t(v);
  }
  std::mt19937 rng(1);
  std::normal_distribution<float> normal;
  std::vector<float> x(n * head_dim), q(head_dim);
  for (auto& v : x) v = normal(rng);
  for (std::size_t r = 0; r < n; ++r)
    for (std::size_t c : {3, 40, 77, 101}) x[r * head_dim + c] *= 10.0f;  // outlier channels
  for (auto& v : q) v = normal(rng);

  std::printf("strata %s: %zu random head vectors, head_dim %zu, 4 outlier channels\n\n",
              strata::version_string, n, head_dim);
  std::printf(
      "| codec  | bits/value | relative MSE | encode (M values/s) | q.K scores (M keys/s) |\n");
  std::printf(
      "|--------|------------|--------------|---------------------|-----------------------|\n");
  for (strata::codec_id id : strata::all_codec_ids) {
    if (strata::layout_of(id, 512).block_values > head_dim) continue;  // turbo<B>g256
    const auto k = strata::make_kernel_table(id, head_dim);
    const std::size_t row_bytes = k.layout.row_bytes;

    const auto y = round_trip(id, x);
    double err = 0, energy = 0;
    for (std::size_t i = 0; i < x.size(); ++i) {
      err += (double(x[i]) - y[i]) * (double(x[i]) - y[i]);
      energy += double(x[i]) * x[i];
    }

    // Encode all rows (rotation included), best of 3.
    std::vector<unsigned char> cache(n * row_bytes);
    std::vector<float> rotated = x;
    double encode_s = 1e30;
    for (int rep = 0; rep < 3; ++rep) {
      const auto t0 = std::chrono::steady_clock::now();
      for (std::size_t r = 0; r < n; ++r) {
        float* row = &rotated[r * head_dim];
        std::copy_n(&x[r * head_dim], head_dim, row);
        if (k.layout.rotated) rotation::forward(row, head_dim);
        k.encode(row, head_dim, &cache[r * row_bytes]);
      }
      encode_s = std::min(encode_s, seconds_since(t0));
    }

    // One query against every key, straight from the compressed rows, best of 5.
    std::vector<float> qr = q, scores(n);
    if (k.layout.rotated) rotation::forward(qr.data(), head_dim);  // <R q, R k> = <q, k>
    double dot_s = 1e30;
    for (int rep = 0; rep < 5; ++rep) {
      const auto t0 = std::chrono::steady_clock::now();
      k.dot(qr.data(), 1, head_dim, cache.data(), row_bytes, n, scores.data(), n);
      dot_s = std::min(dot_s, seconds_since(t0));
    }

    std::printf("| %-6s | %10.3f | %12.3e | %19.1f | %21.1f |\n", strata::codec_name(id).data(),
                k.layout.bits_per_value(), err / energy, double(n * head_dim) / encode_s * 1e-6,
                double(n) / dot_s * 1e-6);
  }
  return 0;
}
