// engine::read_bandwidth -- the bytes per second a thread pool reads from memory, and the
// decode-speed limit that follows from it (issue 23: "per generated token the engine must read
// the weights once and the KV cache once: those bytes at the measured read bandwidth are the
// limit").
#pragma once

#include <cstdint>

namespace engine {

class thread_pool;

// Every thread of `pool` sums its share of a buffer of 4x the last-level cache (sysfs; 32 MiB
// when it says nothing), best of 5 timed passes after one warm-up, wall time. Measured once per
// pool size in a process (about 0.2 s).
double read_bandwidth(thread_pool& pool);

// Tokens per second at the bandwidth limit: `tokens` tokens per step, each step reading the
// weights once and `kv_bytes` of cache.
double bandwidth_limit_tps(double bytes_per_s, uint64_t weight_bytes, uint64_t kv_bytes,
                           int tokens);

}  // namespace engine
