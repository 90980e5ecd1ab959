// engine::memory_plan -- what a run will allocate, compared with what the machine has, before
// anything big is allocated. The planner and the server build on it.
//
//   memory_plan p;
//   p.add("KV cache (q8_0/turbo3, 4096 tokens)", kv_bytes(model, 4096, kv));
//   p.add("logits (512 x 49152 f32)", 512ull * 49152 * 4);
//   p.require_fits("strata-perplexity");   // error with every item, the total and a hint
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kv/kv_select.hpp"

namespace engine {

class model;

// Bytes this process may still allocate: the smaller of /proc/meminfo's MemAvailable and, under
// a cgroup v2 memory limit, that limit minus the cgroup's current use. STRATA_MEMORY_AVAILABLE
// (bytes) replaces the measurement (tests, or to plan for another machine).
struct memory_available {
  uint64_t bytes = 0;
  std::string source;  // "MemAvailable", "cgroup v2 memory.max - memory.current", ...
};
memory_available available_memory();

// This process's resident set: now (VmRSS), its peak so far (VmHWM) and now's anonymous part
// (RssAnon: heap, stacks), from /proc/self/status; 0 where it cannot be read.
struct resident_set {
  uint64_t now = 0, peak = 0, anon = 0;
};
resident_set process_rss();

// Resident bytes of the mapping that starts at `base` (/proc/self/smaps' Rss); 0 when none does.
uint64_t mapping_rss(const void* base);

// The KV cache make_kv(m, n_ctx, o) will hold, in bytes, without allocating it: the cache's own
// bytes() (strata's policy report; f32 rows for the reference cache).
uint64_t kv_bytes(const model& m, int n_ctx, const kv_options& o);

struct memory_item {
  std::string what;
  uint64_t bytes = 0;
};

class memory_plan {
 public:
  void add(std::string what, uint64_t bytes) { items_.push_back({std::move(what), bytes}); }
  uint64_t total() const;
  const std::vector<memory_item>& items() const { return items_; }
  // One line per item and the total, e.g. for a start-up log.
  std::string describe() const;
  // Throws engine::error naming every item, the total, what is available (and where that number
  // comes from) and a hint, when the total exceeds `available` (default: available_memory()).
  void require_fits(const std::string& where) const;
  // `held`: bytes the plan counts that this process holds already (its resident set when the
  // plan covers the whole process and `available` counts only what may still be allocated).
  void require_fits(const std::string& where, const memory_available& available,
                    uint64_t held = 0) const;

 private:
  std::vector<memory_item> items_;
};

}  // namespace engine
