// Attention straight from the compressed KV cache, one thread.
//
//   decode:   1 query, 32 query heads over 8 KV heads, head dim 128, 1K/4K/16K/32K cached
//             tokens, one layer, every codec (K = V) and the asymmetric pairs
//   prefill:  512 queries (causal, the last 512 positions) over 4K keys, same heads
//   prefill_rows: prefill with 8 / 32 / 128 / all query rows per K/V pass
//   decode_sparse_v: sparse V off / on (1e-6) over 16K outlier-heavy keys
//   model:    Boundary V (la7) against f16 and f32 on an 8-layer model (KV ordinals 0, 1, 6, 7
//             get q8_0 V, the rest turbo2 V; K q8_0), decode at 4K and 16K; time per layer
//
// Run (medians of 5 repetitions; docs/policies.md has the table):
//   build/bin/strata_attention_bench --benchmark_repetitions=5
//     --benchmark_report_aggregates_only=true     (one line)
//   decode_stream: decode over enough layers that the KV is at least 4x the last-level cache
//             (so every byte comes from memory), 16K and 32K tokens, Llama-8B layer shape (and
//             SmolLM2's and Gemma 3's for the symmetric caches); each row prints GB/s and
//             bw_fraction, its bytes per second over the streaming-read bandwidth of one core
//             measured in the same run (bench/machine.hpp; also the stream_read row)
//   decode_threads: two threads (pinned to CPUs 0 and 1) against one on one layer's decode at
//             16K keys, Llama-8B / SmolLM2 / Gemma 3 shapes, f16, q8_0, turbo4: split by KV
//             heads and key ranges (split-K), wall time, speedup and issue 23's goal per row
// STRATA_KEY_TILE=256 STRATA_SCORE_FLOATS=0 runs every cache with the old fixed 256-key tiles;
// STRATA_KEY_TILES=never stores turbo4 as plain rows (always: key tiles on every target);
// STRATA_TARGET=AVX2 (AVX3, AVX3_DL, SSE4, ...) forces a SIMD target; STRATA_TARGET=AVX2,AVX3 runs
// the decode_stream rows once per target in one run (the other rows then run on the best target).
// strata::kernels compiles the AVX3_DL target (its integer dot): see it here too, so the
// per-target loops run it (must come before any Highway header).
#define HWY_WANT_AVX3_DL
#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <strata/cache/runtime_kv_cache.hpp>
#include <strata/cache/split_k.hpp>
#include <strata/policy/parse.hpp>

#include "machine.hpp"

namespace {

constexpr std::size_t n_heads = 32, n_kv = 8, head_dim = 128;
const bool kTargetForced = !strata_bench::forced_target().empty();

// Attention shape of one layer: query heads, KV heads, head dim.
struct shape {
  std::size_t heads, kv, dim;
};
constexpr shape llama8b{n_heads, n_kv, head_dim};  // the default: Llama 3 8B's layer shape
constexpr shape smollm2{9, 3, 64};                 // SmolLM2-135M: GQA 3, head dim 64
constexpr shape gemma3{4, 1, 256};                 // Gemma 3 270M: GQA 4, head dim 256

const std::vector<float>& random_rows(std::size_t n) {
  static std::vector<float> data;
  if (data.size() < n) {
    std::mt19937_64 rng(42);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    data.resize(n);
    for (auto& x : data) x = nd(rng);
  }
  return data;
}

// The cache's tiling from the environment (docs/policies.md, tile size): STRATA_KEY_TILE
// (keys per dot/axpy call, at least) and STRATA_SCORE_FLOATS (score budget); query_rows > 0
// sets the query group.
strata::attention_tiling tiling_from_env(std::size_t query_rows = 0) {
  strata::attention_tiling t;
  if (const char* e = std::getenv("STRATA_KEY_TILE")) t.key_tile = std::size_t(std::atoll(e));
  if (const char* e = std::getenv("STRATA_SCORE_FLOATS"))
    t.score_floats = std::size_t(std::atoll(e));
  if (query_rows > 0) t.query_rows = query_rows;
  return t;
}

// STRATA_KEY_TILES=native|always|never: cache_options::key_tiles (turbo4's key tiles).
strata::key_tile_use key_tiles_from_env() {
  const char* e = std::getenv("STRATA_KEY_TILES");
  return e && *e ? strata::parse_key_tile_use(e) : strata::key_tile_use::native;
}

// A cache of n_layers layers holding n tokens of random K/V.
strata::runtime_kv_cache filled(const char* policy, std::size_t n_layers, std::size_t n,
                                shape sh = llama8b,
                                strata::attention_tiling tiling = tiling_from_env()) {
  const strata::layer_map m = strata::layer_map::dense(n_layers, sh.kv, sh.dim, sh.heads);
  strata::runtime_kv_cache c(m, strata::parse_policy(policy),
                             {.n_ctx = n, .tiling = tiling, .key_tiles = key_tiles_from_env()});
  const std::size_t row = sh.kv * sh.dim, chunk = 1024;
  const auto& kv = random_rows((chunk + 7) * row);
  for (std::size_t l = 0; l < n_layers; ++l)
    for (std::size_t t = 0; t < n; t += chunk) {
      const std::size_t nb = std::min(chunk, n - t);
      // Different data per chunk and layer, K and V differ: offsets into one random buffer.
      const float* k = kv.data() + ((t / chunk + l) % 7) * row;
      const float* v = kv.data() + ((t / chunk + l + 3) % 7) * row;
      c.append(l, std::int64_t(t), k, v, nb);
    }
  return c;
}

void decode(benchmark::State& st, const char* policy, std::size_t n_layers, shape sh = llama8b) {
  (void)kTargetForced;
  const std::size_t n = std::size_t(st.range(0));
  strata::runtime_kv_cache c = filled(policy, n_layers, n, sh);
  const auto& q = random_rows(sh.heads * sh.dim);
  std::vector<float> out(sh.heads * sh.dim);
  for (auto _ : st) {
    for (std::size_t l = 0; l < n_layers; ++l) {
      c.attend(l, q.data(), 1, std::int64_t(n - 1), out.data());
      benchmark::DoNotOptimize(out.data());
    }
  }
  st.counters["layers"] = double(n_layers);
  st.counters["KV_MB_per_layer"] = double(c.bytes()) / double(n_layers) / 1e6;
}

// Decode over ceil(4 x LLC / bytes per layer) layers of n tokens of shape sh: the cache cannot
// stay in the last-level cache between iterations, every layer's K and V are read once per
// step. target: the Highway target forced for this row (0: the run's).
void decode_stream(benchmark::State& st, const char* policy, shape sh, std::int64_t target) {
  const strata_bench::scoped_target forced(target);
  const std::size_t n = std::size_t(st.range(0));
  const strata::policy_report one =
      strata::report(strata::parse_policy(policy), strata::layer_map::dense(1, sh.kv, sh.dim));
  const std::size_t per_layer = one.bytes(n);
  const std::size_t n_layers = (4 * strata_bench::llc_bytes() + per_layer - 1) / per_layer;
  const double bw = strata_bench::stream_bandwidth();
  strata::runtime_kv_cache c = filled(policy, n_layers, n, sh);
  const auto& q = random_rows(sh.heads * sh.dim);
  std::vector<float> out(sh.heads * sh.dim);
  const double t0 = strata_bench::thread_seconds();
  for (auto _ : st)
    for (std::size_t l = 0; l < n_layers; ++l) {
      c.attend(l, q.data(), 1, std::int64_t(n - 1), out.data());
      benchmark::DoNotOptimize(out.data());
    }
  const double s = strata_bench::thread_seconds() - t0;  // CPU time, as the Time column's
  const double rate = double(c.bytes()) * double(st.iterations()) / s;  // bytes per second
  st.counters["layers"] = double(n_layers);
  st.counters["KV_MB"] = double(c.bytes()) / 1e6;
  st.counters["GB/s"] = rate / 1e9;
  st.counters["bw_fraction"] = rate / bw;
  st.counters["stream_GB/s"] = bw / 1e9;
}

// The streaming read itself as a row (4x LLC bytes per iteration, the sum of bench/machine.hpp):
// the bandwidth every decode_stream row is a fraction of, measured again beside them.
void stream_read(benchmark::State& st) {
  const std::size_t n = 4 * strata_bench::llc_bytes() / sizeof(std::uint64_t);
  std::vector<std::uint64_t> buf(n);
  for (std::size_t i = 0; i < n; ++i) buf[i] = i * 0x9E3779B97F4A7C15ull;
  const double t0 = strata_bench::thread_seconds();
  for (auto _ : st) benchmark::DoNotOptimize(strata_bench::stream_sum(buf.data(), n));
  const double s = strata_bench::thread_seconds() - t0;
  const double rate = double(n * sizeof(std::uint64_t)) * double(st.iterations()) / s;
  st.counters["MB"] = double(n * sizeof(std::uint64_t)) / 1e6;
  st.counters["GB/s"] = rate / 1e9;
  st.counters["bw_fraction"] = rate / strata_bench::stream_bandwidth();
  st.counters["LLC_MiB"] = double(strata_bench::llc_bytes()) / double(1 << 20);
}

// decode_stream rows: Llama-8B's layer shape for every cache below, SmolLM2's (head dim 64) and
// Gemma 3's (256) for the symmetric ones, 16K and 32K keys; once per target when STRATA_TARGET
// names several ("decode_stream/AVX2/turbo4/16384"), else "decode_stream/turbo4/16384".
int register_stream_rows() {
  struct row {
    const char* name;
    const char* policy;
    bool other_shapes;
  };
  static constexpr row rows[] = {
      {"f16", "f16", true},
      {"q8_0", "q8_0", true},
      {"q4_0", "q4_0", false},
      {"turbo6", "turbo6", true},
      {"turbo5", "turbo5", true},
      {"turbo4", "turbo4", true},
      {"turbo3", "turbo3", true},
      {"turbo2", "turbo2", true},
      {"q8_0_turbo4", "-ctk q8_0 -ctv turbo4", false},
      {"q8_0_turbo3", "-ctk q8_0 -ctv turbo3", false},
      {"q8_0_turbo2", "-ctk q8_0 -ctv turbo2", false},
  };
  std::vector<strata_bench::target> targets = strata_bench::named_targets();
  const bool per_target = targets.size() > 1;
  if (!per_target) targets = {{"", 0}};
  benchmark::RegisterBenchmark("stream_read", stream_read)->Unit(benchmark::kMillisecond);
  for (const auto& t : targets) {
    const std::string prefix =
        std::string("decode_stream/") + (per_target ? t.name + "/" : std::string());
    for (const char* sname : {"", "smollm2_", "gemma3_"}) {
      const shape sh = *sname == 's' ? smollm2 : *sname == 'g' ? gemma3 : llama8b;
      for (const row& r : rows) {
        if (*sname != '\0' && !r.other_shapes) continue;
        benchmark::RegisterBenchmark((prefix + sname + r.name).c_str(), decode_stream, r.policy, sh,
                                     t.bit)
            ->Arg(16384)
            ->Arg(32768)
            ->Unit(benchmark::kMillisecond);
      }
    }
  }
  return 0;
}
const int kStreamRows = register_stream_rows();

// ---- Two threads on one layer's decode (issue 23: split by KV heads, and by key ranges with
// a merge of the partial softmax states, strata/cache/split_k.hpp) -----------------------------
// decode_threads/<shape>_<cache>/threads:N/16384: a decode step over the layers of a cache of
// at least 4x the last-level cache (as decode_stream), one layer at a time, on N = 1 thread
// (one attend call per layer) or 2 (the calling thread on CPU 0 and a worker on CPU 1, pinned:
// strata_bench::pinned_pair; each takes half of the layer's (KV head, key chunk) jobs, the
// chunks of key_chunks(n_kv_heads, 2, keys, 1024), then the caller merges the chunks). Wall
// time (both threads work). Counters: GB/s, bw_fraction (of one core's streaming read for N = 1,
// of two cores' for N = 2, both measured in the run), cpu_path_ms (per step, the sum over layers
// of the slower thread's CPU time: what two free cores would take, on a shared machine), and on
// the 2-thread row speedup (wall, over the 1-thread row just before it), speedup_cpu_path (the
// same on the CPU critical path) and goal = min(1.7, 0.8 x two-core bandwidth / the 1-thread
// row's rate), issue 23's bar for that speedup.

// The cache of the last decode_threads row (its 1- and 2-thread rows share the fill).
struct threads_cache {
  std::string key;
  std::unique_ptr<strata::runtime_kv_cache> cache;
  std::size_t layers = 0;
  // per step, of the 1-thread row: wall seconds, CPU critical path, bytes per wall second
  double one_thread_seconds = 0, one_thread_path = 0, one_thread_rate = 0;
};
threads_cache& last_threads_cache() {
  static threads_cache c;
  return c;
}

void decode_threads(benchmark::State& st, const char* policy, shape sh, const char* label,
                    int threads) {
  const std::size_t n = std::size_t(st.range(0));
  threads_cache& tc = last_threads_cache();
  const std::string key = std::string(label) + "/" + std::to_string(n);
  if (tc.key != key) {
    const strata::policy_report one =
        strata::report(strata::parse_policy(policy), strata::layer_map::dense(1, sh.kv, sh.dim));
    const std::size_t per_layer = one.bytes(n);
    tc.cache.reset();
    tc.layers = (4 * strata_bench::llc_bytes() + per_layer - 1) / per_layer;
    tc.cache = std::make_unique<strata::runtime_kv_cache>(filled(policy, tc.layers, n, sh));
    tc.key = key;
    tc.one_thread_seconds = 0;
  }
  const strata::runtime_kv_cache& c = *tc.cache;
  const std::size_t n_layers = tc.layers;
  const auto& q = random_rows(sh.heads * sh.dim);
  const std::size_t rows = sh.heads, d = sh.dim;
  const std::size_t chunks =
      threads > 1 ? strata::key_chunks(sh.kv, std::size_t(threads), n, 1024) : 1;
  const std::size_t jobs = sh.kv * chunks;
  std::vector<std::vector<float>> out(chunks, std::vector<float>(rows * d)),
      lse(chunks, std::vector<float>(rows));
  std::vector<strata::attention_part> parts;
  for (std::size_t i = 0; i < chunks; ++i) parts.push_back({out[i].data(), lse[i].data()});
  const strata::key_range keys{0, std::int64_t(n)};
  // Thread t's share of a layer's jobs (job j: KV head j % kv, key chunk j / kv).
  auto work = [&](std::size_t layer, int t) {
    for (std::size_t j = jobs * std::size_t(t) / std::size_t(threads);
         j < jobs * std::size_t(t + 1) / std::size_t(threads); ++j) {
      const std::size_t h = j % sh.kv, i = j / sh.kv;
      strata::attention_params p;
      p.kv_head_begin = h;
      p.kv_head_end = h + 1;
      if (chunks > 1) {
        p.key_begin = keys.chunk(chunks, i).begin;
        p.key_end = keys.chunk(chunks, i).end;
        p.lse = lse[i].data();
      }
      c.attend(layer, q.data(), 1, std::int64_t(n - 1), out[i].data(), p);
    }
  };
  const double bw =
      threads > 1 ? strata_bench::stream_bandwidth_two() : strata_bench::stream_bandwidth();
  std::unique_ptr<strata_bench::pinned_pair> pair;
  std::unique_ptr<strata_bench::pinned_here> here;
  if (threads > 1)
    pair = std::make_unique<strata_bench::pinned_pair>();
  else
    here = std::make_unique<strata_bench::pinned_here>(0);
  // The critical path in CPU time: per layer, the larger of the threads' CPU seconds in their
  // jobs (plus the merge's), summed. Unlike wall time it does not count the time a thread is
  // descheduled, so it says what two free cores would take on a shared machine.
  double path = 0, cpu[2] = {0, 0};
  auto timed_work = [&](std::size_t l, int t) {
    const double c0 = strata_bench::thread_seconds();
    work(l, t);
    cpu[t] = strata_bench::thread_seconds() - c0;
  };
  const double t0 = strata_bench::wall_seconds();
  for (auto _ : st)
    for (std::size_t l = 0; l < n_layers; ++l) {
      if (pair)
        pair->run([&](int t) { timed_work(l, t); });
      else
        timed_work(l, 0);
      const double m0 = strata_bench::thread_seconds();
      if (chunks > 1) strata::merge_attention(parts, rows, d, out[0].data());
      benchmark::DoNotOptimize(out[0].data());
      path += std::max(cpu[0], pair ? cpu[1] : 0.0) + strata_bench::thread_seconds() - m0;
    }
  const double s = (strata_bench::wall_seconds() - t0) / double(st.iterations());
  const double s_path = path / double(st.iterations());
  pair.reset();
  here.reset();
  const double rate = double(c.bytes()) / s;
  st.counters["layers"] = double(n_layers);
  st.counters["key_chunks"] = double(chunks);
  st.counters["GB/s"] = rate / 1e9;
  st.counters["bw_fraction"] = rate / bw;
  st.counters["cpu_path_ms"] = s_path * 1e3;
  if (threads == 1) {
    tc.one_thread_seconds = s;
    tc.one_thread_path = s_path;
    tc.one_thread_rate = rate;
  } else if (tc.one_thread_seconds > 0) {
    st.counters["speedup"] = tc.one_thread_seconds / s;
    st.counters["speedup_cpu_path"] = tc.one_thread_path / s_path;
    st.counters["goal"] = std::min(1.7, 0.8 * bw / tc.one_thread_rate);
  }
}

int register_threads_rows() {
  struct row {
    const char* name;
    const char* policy;
  };
  static constexpr row rows[] = {{"f16", "f16"}, {"q8_0", "q8_0"}, {"turbo4", "turbo4"}};
  static std::vector<std::string> labels;  // the rows keep pointers into these
  labels.reserve(9);
  for (const char* sname : {"llama8b_", "smollm2_", "gemma3_"}) {
    const shape sh = *sname == 's' ? smollm2 : *sname == 'g' ? gemma3 : llama8b;
    for (const row& r : rows) {
      labels.push_back(std::string(sname) + r.name);
      for (int threads : {1, 2})
        benchmark::RegisterBenchmark(
            ("decode_threads/" + labels.back() + "/threads:" + std::to_string(threads)).c_str(),
            decode_threads, r.policy, sh, labels.back().c_str(), threads)
            ->Arg(16384)
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime();
    }
  }
  return 0;
}
const int kThreadsRows = register_threads_rows();

void prefill(benchmark::State& st, const char* policy) {
  const std::size_t n = 4096, n_q = 512;
  strata::runtime_kv_cache c = filled(
      policy, 1, n, llama8b, tiling_from_env(std::size_t(std::max<std::int64_t>(0, st.range(0)))));
  const auto& q = random_rows(n_q * n_heads * head_dim);
  std::vector<float> out(n_q * n_heads * head_dim);
  for (auto _ : st) {
    c.attend(0, q.data(), n_q, std::int64_t(n - n_q), out.data());
    benchmark::DoNotOptimize(out.data());
  }
  st.counters["KV_MB"] = double(c.bytes()) / 1e6;
}

#define STRATA_DECODE(name, policy)          \
  BENCHMARK_CAPTURE(decode, name, policy, 1) \
      ->Arg(1024)                            \
      ->Arg(4096)                            \
      ->Arg(16384)                           \
      ->Arg(32768)                           \
      ->Unit(benchmark::kMillisecond)
#define STRATA_PREFILL(name, policy) \
  BENCHMARK_CAPTURE(prefill, name, policy)->Arg(0)->Unit(benchmark::kMillisecond)

STRATA_DECODE(f32, "f32");
STRATA_DECODE(f16, "f16");
STRATA_DECODE(bf16, "bf16");
STRATA_DECODE(q8_0, "q8_0");
STRATA_DECODE(q4_0, "q4_0");
STRATA_DECODE(turbo4, "turbo4");
STRATA_DECODE(turbo3, "turbo3");
STRATA_DECODE(turbo2, "turbo2");
STRATA_DECODE(q8_0_turbo4, "-ctk q8_0 -ctv turbo4");
STRATA_DECODE(q8_0_turbo3, "-ctk q8_0 -ctv turbo3");
STRATA_DECODE(q8_0_turbo2, "-ctk q8_0 -ctv turbo2");
STRATA_DECODE(vq2, "vq2");
STRATA_DECODE(q8_0_vq2, "-ctk q8_0 -ctv vq2");

STRATA_PREFILL(f32, "f32");
STRATA_PREFILL(f16, "f16");
STRATA_PREFILL(bf16, "bf16");
STRATA_PREFILL(q8_0, "q8_0");
STRATA_PREFILL(q4_0, "q4_0");
STRATA_PREFILL(turbo4, "turbo4");
STRATA_PREFILL(turbo3, "turbo3");
STRATA_PREFILL(turbo2, "turbo2");
STRATA_PREFILL(q8_0_turbo4, "-ctk q8_0 -ctv turbo4");
STRATA_PREFILL(q8_0_turbo2, "-ctk q8_0 -ctv turbo2");
STRATA_PREFILL(q8_0_vq2, "-ctk q8_0 -ctv vq2");

BENCHMARK_CAPTURE(decode, model8_f32, "f32", 8)
    ->Arg(4096)
    ->Arg(16384)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(decode, model8_f16, "f16", 8)
    ->Arg(4096)
    ->Arg(16384)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(decode, model8_boundary_v, "la7", 8)
    ->Arg(4096)
    ->Arg(16384)
    ->Unit(benchmark::kMillisecond);

// The layer shapes of the two real models of docs/results.md (one layer, decode): SmolLM2-135M
// (9 query heads / 3 KV heads, head dim 64) and Gemma 3 270M (4 / 1, head dim 256).
#define STRATA_DECODE_SHAPE(name, policy)                       \
  BENCHMARK_CAPTURE(decode, smollm2_##name, policy, 1, smollm2) \
      ->Arg(4096)                                               \
      ->Arg(16384)                                              \
      ->Unit(benchmark::kMillisecond);                          \
  BENCHMARK_CAPTURE(decode, gemma3_##name, policy, 1, gemma3)   \
      ->Arg(4096)                                               \
      ->Arg(16384)                                              \
      ->Unit(benchmark::kMillisecond)
STRATA_DECODE_SHAPE(f16, "f16");
STRATA_DECODE_SHAPE(q8_0, "q8_0");
STRATA_DECODE_SHAPE(q4_0, "q4_0");
STRATA_DECODE_SHAPE(turbo4, "turbo4");
STRATA_DECODE_SHAPE(turbo3, "turbo3");
STRATA_DECODE_SHAPE(turbo2, "turbo2");
STRATA_DECODE_SHAPE(q8_0_turbo4, "-ctk q8_0 -ctv turbo4");
STRATA_DECODE_SHAPE(q8_0_turbo3, "-ctk q8_0 -ctv turbo3");
STRATA_DECODE_SHAPE(q8_0_turbo2, "-ctk q8_0 -ctv turbo2");
STRATA_DECODE_SHAPE(q8_0_vq2, "-ctk q8_0 -ctv vq2");

// Query rows per K/V pass (the cache's default is 32): 8 / 32 / 128 / 2048 (= all 512 x 4).
BENCHMARK_CAPTURE(prefill, rows_f16, "f16")
    ->Arg(8)
    ->Arg(32)
    ->Arg(128)
    ->Arg(2048)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(prefill, rows_turbo4, "turbo4")
    ->Arg(8)
    ->Arg(32)
    ->Arg(128)
    ->Arg(2048)
    ->Unit(benchmark::kMillisecond);

// Sparse V on peaked attention: outlier-heavy keys (the fork's generator, times 2), 16K tokens,
// threshold 0 (off) or 1e-6.
void decode_sparse_v(benchmark::State& st, const char* policy) {
  const std::size_t n = 16384;
  const strata::layer_map m = strata::layer_map::dense(1, n_kv, head_dim, n_heads);
  strata::runtime_kv_cache c(m, strata::parse_policy(policy),
                             {.n_ctx = n, .tiling = tiling_from_env()});
  std::vector<float> k(random_rows(1024 * n_kv * head_dim));
  for (std::size_t i = 0; i < k.size(); ++i) {
    const std::size_t ch = i % head_dim;
    if (ch % 17 == 0) k[i] *= 6.0f;
    if (ch % 29 == 0) k[i] += 3.0f;
    k[i] *= 2.0f;
  }
  const auto& v = random_rows(1024 * n_kv * head_dim);
  for (std::size_t t = 0; t < n; t += 1024) c.append(0, std::int64_t(t), k.data(), v.data(), 1024);
  const float* q0 = random_rows(1024 * n_kv * head_dim).data() + 7;
  std::vector<float> q(q0, q0 + n_heads * head_dim);
  std::vector<float> out(n_heads * head_dim);
  strata::attention_params p;
  p.sparse_v = st.range(0) ? 1e-6f : 0.0f;
  for (auto _ : st) {
    c.attend(0, q.data(), 1, std::int64_t(n - 1), out.data(), p);
    benchmark::DoNotOptimize(out.data());
  }
}
BENCHMARK_CAPTURE(decode_sparse_v, f16, "f16")->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(decode_sparse_v, turbo4, "turbo4")->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(decode_sparse_v, q8_0_turbo2, "-ctk q8_0 -ctv turbo2")
    ->Arg(0)
    ->Arg(1)
    ->Unit(benchmark::kMillisecond);

}  // namespace
