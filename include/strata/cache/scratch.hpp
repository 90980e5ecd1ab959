#pragma once
// Per-thread scratch memory of the cache: slot i of a few independent float buffers, grown on
// demand and kept for the thread's life (no locks, no allocation in the steady state).

#include <cstddef>
#include <vector>

namespace strata::detail {

inline constexpr int scratch_slots = 7;

inline float* scratch(std::size_t n, int slot) {
  thread_local std::vector<float> buf[scratch_slots];
  if (buf[slot].size() < n) buf[slot].resize(n);
  return buf[slot].data();
}

}  // namespace strata::detail
