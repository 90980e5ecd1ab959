// What the benchmarks need to know about the machine, measured in the benchmark's own run:
// - STRATA_TARGET=AVX2 (or AVX3, SSE4, SCALAR, ...) restricts Highway's dispatch to that target
//   (strata's kernels and the engine's matmul alike), so targets compare on one machine;
//   STRATA_TARGET=AVX2,AVX3 names several, for benchmarks that run their rows once per target
//   in one run (strata_attention_bench's decode_stream);
// - the last-level cache's size (sysfs), so that a streaming row can be sized past it;
// - the streaming-read bandwidth of one core over a buffer of 4x the last-level cache (the best
//   of 5 passes of a plain 64-bit-word sum), the limit a row that reads its bytes once per
//   iteration is compared with; and of two cores (CPUs 0 and 1 pinned, pinned_pair), the limit
//   of a two-thread row.
// Each is printed once in the benchmark's context (stderr) when first used.
#pragma once

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <hwy/targets.h>

namespace strata_bench {

// The targets STRATA_TARGET names (one name, or several separated by commas), each checked
// against this CPU's targets and the build's: {name, Highway target bit}. Exits with a message
// when one is not there.
struct target {
  std::string name;
  std::int64_t bit;
};
inline const std::vector<target>& named_targets() {
  static const std::vector<target> list = [] {
    std::vector<target> out;
    const char* want = std::getenv("STRATA_TARGET");
    if (want == nullptr || *want == '\0') return out;
    std::string all(want), have;
    for (const std::int64_t t : hwy::SupportedAndGeneratedTargets())
      have += std::string(" ") + hwy::TargetName(t);
    for (std::size_t a = 0; a <= all.size();) {
      const std::size_t b = std::min(all.find(',', a), all.size());
      const std::string one = all.substr(a, b - a);
      a = b + 1;
      if (one.empty()) continue;
      std::int64_t bit = 0;
      for (const std::int64_t t : hwy::SupportedAndGeneratedTargets())
        if (one == hwy::TargetName(t)) bit = t;
      if (bit == 0) {
        std::fprintf(stderr, "error: STRATA_TARGET=%s: %s is not one of this CPU's targets:%s\n",
                     want, one.c_str(), have.c_str());
        std::exit(1);
      }
      out.push_back({one, bit});
    }
    return out;
  }();
  return list;
}

// The target STRATA_TARGET names, forced for the whole run; "" when unset or when it names
// several (a benchmark that runs per target then forces each itself: scoped_target).
inline const std::string& forced_target() {
  static const std::string name = [] {
    const auto& list = named_targets();
    if (list.size() != 1) return std::string();
    hwy::SetSupportedTargetsForTest(list[0].bit);
    std::fprintf(stderr, "STRATA_TARGET: dispatch forced to %s\n", list[0].name.c_str());
    return list[0].name;
  }();
  return name;
}

// Dispatch forced to one target for a scope (bit 0: leave it as it is).
class scoped_target {
 public:
  explicit scoped_target(std::int64_t bit) : bit_(bit) {
    if (bit_ != 0) hwy::SetSupportedTargetsForTest(bit_);
  }
  ~scoped_target() {
    if (bit_ != 0) hwy::SetSupportedTargetsForTest(0);
  }
  scoped_target(const scoped_target&) = delete;
  scoped_target& operator=(const scoped_target&) = delete;

 private:
  std::int64_t bit_;
};

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

// Seconds of CPU time this thread has run: the rates below divide by it, not by wall time, so
// time the thread spends descheduled on a shared machine does not count (as Google
// Benchmark's CPU time column).
inline double thread_seconds() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return double(t.tv_sec) + 1e-9 * double(t.tv_nsec);
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

// Bytes per second one core reads from memory (4x the last-level cache, best of 5 passes, CPU
// time).
inline double stream_bandwidth() {
  static const double bw = [] {
    const std::size_t n = 4 * llc_bytes() / sizeof(std::uint64_t);
    std::vector<std::uint64_t> buf(n);
    for (std::size_t i = 0; i < n; ++i) buf[i] = i * 0x9E3779B97F4A7C15ull;
    double best = 0;
    volatile std::uint64_t sink = 0;
    for (int pass = 0; pass < 6; ++pass) {
      const double t0 = thread_seconds();
      sink = sink + stream_sum(buf.data(), n);
      const double s = thread_seconds() - t0;
      if (pass > 0) best = std::max(best, double(n * sizeof(std::uint64_t)) / s);  // pass 0 warms
    }
    std::fprintf(stderr, "streaming read, one core: %.2f GB/s over %.0f MiB\n", best / 1e9,
                 double(n * sizeof(std::uint64_t)) / double(1 << 20));
    return best;
  }();
  return bw;
}

// Two threads for one job: run(fn) calls fn(0) on the calling thread and fn(1) on a worker and
// returns when both are done. The caller is pinned to CPU 0 and the worker to CPU 1 for the
// pair's life (the caller's affinity is restored after; a CPU that the process may not use is
// left unpinned, said once on stderr). The worker spins between jobs (a job per layer of a
// decode step costs no wake-up): make a pair only for the rows that use it.
// The calling thread pinned to one CPU for a scope (its affinity restored after).
class pinned_here {
 public:
  explicit pinned_here(int cpu) {
    have_old_ = pthread_getaffinity_np(pthread_self(), sizeof old_, &old_) == 0;
    pin(cpu);
  }
  ~pinned_here() {
    if (have_old_) pthread_setaffinity_np(pthread_self(), sizeof old_, &old_);
  }
  pinned_here(const pinned_here&) = delete;
  pinned_here& operator=(const pinned_here&) = delete;

  // Pins the calling thread to `cpu` (false, and a note on stderr once, when it cannot).
  static bool pin(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (pthread_setaffinity_np(pthread_self(), sizeof set, &set) == 0) return true;
    static std::atomic<bool> said{false};
    if (!said.exchange(true)) std::fprintf(stderr, "note: cannot pin a thread to CPU %d\n", cpu);
    return false;
  }

 private:
  cpu_set_t old_{};
  bool have_old_ = false;
};

class pinned_pair {
 public:
  pinned_pair() : here_(0) {
    worker_ = std::thread([this] {
      pinned_here::pin(1);
      std::uint64_t seen = 0;
      for (;;) {
        std::uint64_t g;
        while ((g = go_.load(std::memory_order_acquire)) == seen) {
          if (stop_.load(std::memory_order_relaxed)) return;
          relax();
        }
        seen = g;
        (*fn_)(1);
        done_.store(g, std::memory_order_release);
      }
    });
  }
  ~pinned_pair() {
    stop_.store(true);
    worker_.join();
  }
  pinned_pair(const pinned_pair&) = delete;
  pinned_pair& operator=(const pinned_pair&) = delete;

  template <class Fn> void run(Fn&& fn) {
    const std::function<void(int)> f = std::forward<Fn>(fn);
    fn_ = &f;
    const std::uint64_t g = go_.load(std::memory_order_relaxed) + 1;
    go_.store(g, std::memory_order_release);
    f(0);
    while (done_.load(std::memory_order_acquire) != g) relax();
  }

 private:
  static void relax() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
  }
  std::atomic<std::uint64_t> go_{0}, done_{0};
  std::atomic<bool> stop_{false};
  const std::function<void(int)>* fn_ = nullptr;
  pinned_here here_;
  std::thread worker_;
};

// Seconds of wall time (steady clock).
inline double wall_seconds() {
  timespec t{};
  clock_gettime(CLOCK_MONOTONIC, &t);
  return double(t.tv_sec) + 1e-9 * double(t.tv_nsec);
}

// Bytes per second two cores read from memory together (CPUs 0 and 1, each summing half of a
// buffer of 4x the last-level cache; best of 5 passes, wall time): the limit of a two-thread
// row.
inline double stream_bandwidth_two() {
  static const double bw = [] {
    const std::size_t n = 4 * llc_bytes() / sizeof(std::uint64_t);
    std::vector<std::uint64_t> buf(n);
    for (std::size_t i = 0; i < n; ++i) buf[i] = i * 0x9E3779B97F4A7C15ull;
    double best = 0;
    std::uint64_t sums[2] = {0, 0};
    pinned_pair pair;
    for (int pass = 0; pass < 6; ++pass) {
      const double t0 = wall_seconds();
      pair.run([&](int t) { sums[t] += stream_sum(buf.data() + std::size_t(t) * (n / 2), n / 2); });
      const double s = wall_seconds() - t0;
      if (pass > 0) best = std::max(best, double(n * sizeof(std::uint64_t)) / s);
    }
    volatile std::uint64_t sink = sums[0] + sums[1];
    (void)sink;
    std::fprintf(stderr, "streaming read, two cores (CPUs 0 and 1): %.2f GB/s over %.0f MiB\n",
                 best / 1e9, double(n * sizeof(std::uint64_t)) / double(1 << 20));
    return best;
  }();
  return bw;
}

}  // namespace strata_bench
