#include "run/bandwidth.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "model/thread_pool.hpp"

namespace engine {
namespace {

// The largest cache of cpu0 in sysfs ("32768K"), or 32 MiB.
size_t last_level_cache() {
  size_t best = 0;
  for (int i = 0; i < 8; ++i) {
    std::ifstream in("/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(i) + "/size");
    std::string s;
    if (!(in >> s) || s.empty()) continue;
    size_t v = std::stoull(s);
    if (s.back() == 'K') v <<= 10;
    if (s.back() == 'M') v <<= 20;
    best = std::max(best, v);
  }
  return best ? best : size_t(32) << 20;
}

double measure(thread_pool& pool) {
  const size_t words = 4 * last_level_cache() / sizeof(uint64_t);
  std::vector<uint64_t> buf(words);
  for (size_t i = 0; i < words; ++i) buf[i] = i * 0x9E3779B97F4A7C15ull;
  // One chunk per thread, each a contiguous range of whole cache lines.
  const int64_t parts = pool.size();
  std::atomic<uint64_t> sink{0};
  double best = 0;
  for (int pass = 0; pass < 6; ++pass) {
    const auto t0 = std::chrono::steady_clock::now();
    pool.parallel_for(parts, [&](int64_t b, int64_t e) {
      for (int64_t p = b; p < e; ++p) {
        const size_t lo = words * size_t(p) / size_t(parts) / 8 * 8;
        const size_t hi = words * size_t(p + 1) / size_t(parts) / 8 * 8;
        uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;  // four chains: the loads, not the adds, bound it
        for (size_t i = lo; i + 4 <= hi; i += 4) {
          s0 += buf[i];
          s1 += buf[i + 1];
          s2 += buf[i + 2];
          s3 += buf[i + 3];
        }
        sink.fetch_add(s0 + s1 + s2 + s3, std::memory_order_relaxed);
      }
    });
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (pass > 0) best = std::max(best, double(words * sizeof(uint64_t)) / s);  // pass 0 warms
  }
  return sink.load() == 1 ? best + 1 : best;  // keeps the sums alive
}

}  // namespace

double read_bandwidth(thread_pool& pool) {
  static std::mutex mu;
  static std::map<int, double> by_size;
  const std::lock_guard<std::mutex> lock(mu);
  auto it = by_size.find(pool.size());
  if (it == by_size.end()) it = by_size.emplace(pool.size(), measure(pool)).first;
  return it->second;
}

double bandwidth_limit_tps(double bytes_per_s, uint64_t weight_bytes, uint64_t kv_bytes,
                           int tokens) {
  const double per_step = double(weight_bytes) + double(kv_bytes);
  return per_step > 0 ? bytes_per_s / per_step * tokens : 0;
}

}  // namespace engine
