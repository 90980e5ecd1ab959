#pragma once
// What the cache holds per KV layer: its geometry, the token ring shared by its K and V rows
// (row_store.hpp), the recent window's f16 rows (policy_spec::recent) and the K transform
// (k_transform.hpp). The cache's API (runtime_kv_cache.hpp), its attention loop (attend.hpp)
// and its state files (state_io.hpp) work on these.

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include <strata/cache/k_transform.hpp>
#include <strata/cache/row_store.hpp>

namespace strata::detail {

struct layer_state {
  bool owns = false;  // false: the layer shares another layer's cache, or has none
  std::size_t n_kv_heads = 0, n_heads = 0, head_dim = 0;
  bool sliding = false;
  std::size_t window = 0;

  // The token ring: logical token t (0 = oldest, at position pos0 + t) sits in slot
  // (start + t) % cap of k and v.
  std::size_t cap = 0, start = 0, count = 0;
  std::int64_t pos0 = 0;
  row_store k, v;
  // Recent window: f16 rows of positions [r_lo, pos_end()) at slot position % slots, per side
  // that has one (rk.on(), rv.on()); r_cap = the larger side's slots.
  row_store rk, rv;
  std::size_t r_cap = 0;
  std::int64_t r_lo = 0;
  k_transform kt;

  std::int64_t pos_end() const noexcept { return pos0 + std::int64_t(count); }
  std::size_t slot(std::size_t token) const noexcept { return (start + token) % cap; }
  // First position read from the recent rows (clamped to the cached range).
  std::int64_t recent_lo() const noexcept {
    return std::clamp(std::max(r_lo, pos_end() - std::int64_t(r_cap)), pos0, pos_end());
  }
  // Slot of position pos + t in the recent rows.
  std::size_t recent_slot(std::int64_t pos, std::size_t t) const noexcept {
    const std::int64_t r = std::int64_t(r_cap), p = (pos + std::int64_t(t)) % r;
    return std::size_t(p < 0 ? p + r : p);
  }
  // Calls fn(first slot, n) for the runs of the layer's tokens in logical order (the ring wraps
  // at most once).
  template <class Fn> void for_each_run(Fn&& fn) const {
    if (count == 0) return;
    const std::size_t first = std::min(count, cap - start);
    fn(start, first);
    if (first < count) fn(std::size_t(0), count - first);
  }
  // Drops the n oldest tokens (at most count); the others keep their positions. An emptied
  // ring restarts at slot 0 unless `keep_start` (append makes room that way: the batch it
  // appends goes where the dropped tokens were).
  void drop_oldest(std::size_t n, bool keep_start = false) {
    const std::size_t d = std::min(n, count);
    start = count == d && !keep_start ? 0 : (start + d) % cap;
    count -= d;
    pos0 += std::int64_t(d);
  }
  void empty_at(std::int64_t pos) { count = 0, start = 0, pos0 = pos, r_lo = pos; }
};

}  // namespace strata::detail
