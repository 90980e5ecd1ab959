#pragma once
// strata::plan: the memory of KV caches for a context, and the largest context that fits a
// budget, without building a cache.
//
//   auto r = strata::report(strata::parse_policy("la7"), strata::layer_map::dense(40, 8, 128, 32));
//   strata::kv_plan p = strata::plan(r, 32768, {.n_seq = 4, .n_threads = 2});
//   p.kv;        // K and V rows of the 4 caches: 4 x runtime_kv_cache::bytes(), to the byte
//   p.side;      // K means and balance scales (runtime_kv_cache::side_bytes() once set)
//   p.scratch;   // the attention scratch each attending thread may grow to, all threads
//   strata::largest_context(r, 8ull << 30, {.n_seq = 4});  // tokens per sequence in 8 GiB
//
// The three parts are separate lines (lines()) because they scale differently: rows with the
// context and the sequences, side data with the sequences only, scratch with the threads.

#include <algorithm>
#include <cstddef>
#include <string>
#include <vector>

#include <strata/cache/options.hpp>
#include <strata/policy/report.hpp>

namespace strata {

struct plan_options {
  std::size_t max_batch = 0;     // as cache_options::max_batch (sliding-window rings)
  std::size_t n_seq = 1;         // sequences, one cache each, all with the context asked for
  std::size_t n_threads = 1;     // threads that attend (each keeps its own scratch)
  bool subtract_k_mean = false;  // as cache_options::subtract_k_mean
  attention_tiling tiling = {};  // as cache_options::tiling
};

struct memory_line {
  std::string what;
  std::size_t bytes = 0;
};

struct kv_plan {
  std::size_t n_ctx = 0, n_seq = 1, n_threads = 1;
  std::size_t kv = 0;       // K and V rows (and recent-window f16 rows) of every sequence
  std::size_t side = 0;     // per-layer K means and balance scales of every sequence
  std::size_t scratch = 0;  // per-thread attention scratch, every thread (an upper bound)
  std::size_t total() const { return kv + side + scratch; }
  std::vector<memory_line> lines() const {
    return {{"KV rows (" + std::to_string(n_seq) + " x " + std::to_string(n_ctx) + " tokens)", kv},
            {"K means and balance scales", side},
            {"attention scratch (" + std::to_string(n_threads) + " threads)", scratch}};
  }
};

namespace detail {

// Floats of K means (1 per channel) and balance scales (scale and reciprocal) of one cache.
inline std::size_t side_floats(const policy_report& r, bool k_mean) {
  const std::size_t per_channel = (k_mean ? 1 : 0) + (r.k_balance ? 2 : 0);
  std::size_t n = 0;
  for (const auto& lc : r.layers) {
    const layer_info& li = r.map[lc.layer];
    n += per_channel * li.n_kv_heads * li.head_dim;
  }
  return n;
}

// The most scratch floats one thread's attend() asks for (strata/cache/attend.hpp, slots 0-3, 5)
// and its row reads (slot 4), over every KV layer and any number of queries.
inline std::size_t scratch_floats(const policy_report& r, const attention_tiling& t) {
  std::size_t s0 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0;
  for (const auto& lc : r.layers) {
    const layer_info& li = r.map[lc.layer];
    const std::size_t d = li.head_dim;
    const std::size_t g = li.n_heads > li.n_kv_heads ? li.n_heads / li.n_kv_heads : 1;
    const std::size_t rows = std::max<std::size_t>(1, t.query_rows / g) * g;
    s0 = std::max(s0, rows * d);
    s2 = std::max({s2, t.score_floats, rows * t.keys(rows)});  // fewer rows: more keys
    s3 = std::max(s3, rows * 2);
    s4 = std::max(s4, d);
    // the matrix-product path (slot 5): a tile of decoded rows for its smallest groups
    const std::size_t gemm_min = (t.gemm_rows + g - 1) / g * g;
    if (t.gemm_rows > 0 && gemm_min <= rows) s5 = std::max(s5, d * t.keys(gemm_min));
  }
  return 2 * s0 + s2 + s3 + s4 + s5;  // slots 0 and 1 hold rows x head dim each
}

}  // namespace detail

// The memory of o.n_seq caches of policy report r for n_ctx tokens each, attended by
// o.n_threads threads.
inline kv_plan plan(const policy_report& r, std::size_t n_ctx, const plan_options& o = {}) {
  kv_plan p;
  p.n_ctx = n_ctx;
  p.n_seq = o.n_seq;
  p.n_threads = o.n_threads;
  p.kv = o.n_seq * r.bytes(n_ctx, o.max_batch);
  p.side = o.n_seq * sizeof(float) * detail::side_floats(r, o.subtract_k_mean);
  p.scratch = o.n_threads * sizeof(float) * detail::scratch_floats(r, o.tiling);
  return p;
}

// The largest context (tokens per sequence, at most `limit`) whose plan fits `budget` bytes;
// 0 when not even one token does. Bytes grow with the context, so a binary search finds it.
inline std::size_t largest_context(const policy_report& r, std::size_t budget,
                                   const plan_options& o = {}, std::size_t limit = 1u << 24) {
  if (plan(r, 1, o).total() > budget) return 0;
  std::size_t lo = 1, hi = limit;  // plan(lo) fits; the answer is in [lo, hi]
  while (lo < hi) {
    const std::size_t mid = lo + (hi - lo + 1) / 2;
    if (plan(r, mid, o).total() <= budget)
      lo = mid;
    else
      hi = mid - 1;
  }
  return lo;
}

}  // namespace strata
