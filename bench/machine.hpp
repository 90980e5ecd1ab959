// What the benchmarks need to know about the machine, measured in the benchmark's own run:
// - STRATA_TARGET=AVX2 (or AVX3, SSE4, SCALAR, ...) restricts Highway's dispatch to that target
//   (strata's kernels and the engine's matmul alike), so targets compare on one machine;
// - the last-level cache's size (sysfs), so that a streaming row can be sized past it;
// - the streaming-read bandwidth of one core over a buffer of 4x the last-level cache (the best
//   of 5 passes of a plain 64-bit-word sum), the limit a row that reads its bytes once per
//   iteration is compared with.
// Each is printed once in the benchmark's context (stderr) when first used.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include <hwy/targets.h>

namespace strata_bench {

// The target STRATA_TARGET names, forced; "" when unset. Exits with a message when it names no
// target this CPU supports and the build generated.
inline const std::string& forced_target() {
  static const std::string name = [] {
    const char* want = std::getenv("STRATA_TARGET");
    if (want == nullptr || *want == '\0') return std::string();
    std::string have;
    for (const std::int64_t t : hwy::SupportedAndGeneratedTargets()) {
      if (std::strcmp(hwy::TargetName(t), want) == 0) {
        hwy::SetSupportedTargetsForTest(t);
        std::fprintf(stderr, "STRATA_TARGET: dispatch forced to %s\n", want);
        return std::string(want);
      }
      have += std::string(" ") + hwy::TargetName(t);
    }
    std::fprintf(stderr, "error: STRATA_TARGET=%s is not one of this CPU's targets:%s\n", want,
                 have.c_str());
    std::exit(1);
  }();
  return name;
}

// Bytes of the last-level cache (the largest cache index of cpu0 in sysfs); 32 MiB when sysfs
// says nothing.
inline std::size_t llc_bytes() {
  static const std::size_t bytes = [] {
    std::size_t best = 0;
    for (int i = 0; i < 8; ++i) {
      std::ifstream in("/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(i) + "/size");
      std::string s;
      if (!(in >> s) || s.empty()) continue;
      std::size_t v = std::size_t(std::strtoull(s.c_str(), nullptr, 10));
      if (s.back() == 'K') v <<= 10;
      if (s.back() == 'M') v <<= 20;
      best = std::max(best, v);
    }
    if (best == 0) best = std::size_t(32) << 20;
    std::fprintf(stderr, "last-level cache: %.1f MiB\n", double(best) / double(1 << 20));
    return best;
  }();
  return bytes;
}

// Sum of n 64-bit words, four independent chains (what one core can stream).
inline std::uint64_t stream_sum(const std::uint64_t* p, std::size_t n) {
  std::uint64_t a = 0, b = 0, c = 0, d = 0;
  for (std::size_t i = 0; i + 4 <= n; i += 4) {
    a += p[i];
    b += p[i + 1];
    c += p[i + 2];
    d += p[i + 3];
  }
  return a + b + c + d;
}

// Bytes per second one core reads from memory (4x the last-level cache, best of 5 passes).
inline double stream_bandwidth() {
  static const double bw = [] {
    const std::size_t n = 4 * llc_bytes() / sizeof(std::uint64_t);
    std::vector<std::uint64_t> buf(n);
    for (std::size_t i = 0; i < n; ++i) buf[i] = i * 0x9E3779B97F4A7C15ull;
    double best = 0;
    volatile std::uint64_t sink = 0;
    for (int pass = 0; pass < 6; ++pass) {
      const auto t0 = std::chrono::steady_clock::now();
      sink = sink + stream_sum(buf.data(), n);
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (pass > 0) best = std::max(best, double(n * sizeof(std::uint64_t)) / s);  // pass 0 warms
    }
    std::fprintf(stderr, "streaming read, one core: %.2f GB/s over %.0f MiB\n", best / 1e9,
                 double(n * sizeof(std::uint64_t)) / double(1 << 20));
    return best;
  }();
  return bw;
}

}  // namespace strata_bench
