// engine::bench -- prompt-processing and generation speed at chosen context depths and KV
// policies, measured the way llama-bench does (pp: one batch of n_prompt random tokens;
// tg: n_gen single-token steps), with the KV bytes and bits per value of each policy.
#pragma once

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "kv/kv_select.hpp"
#include "model/model.hpp"

namespace engine {

class thread_pool;

struct bench_options {
  std::vector<int> depths = {0};  // tokens already in the cache before each test
  int n_prompt = 512;             // pp test size (0: skip)
  int n_gen = 128;                // tg test size (0: skip)
  int reps = 3;                   // repetitions; the median is reported
  std::vector<kv_options> caches = {kv_options{}};
  std::vector<std::string> cache_names = {"f16/f16"};
  forward_options fwd;
  uint64_t seed = 1;
  // true: the depth tokens run once through an f16 cache and their K/V rows are copied (and
  // encoded) into every cache compared; false: every cache runs its own prefill of them.
  bool shared_fill = true;
  bool progress = false;
  bool profile = false;  // --profile: each row's timed repetitions also go through a profile
  // -np/--parallel: per N, a "tg{n_gen}x{N}" row: N sequences, each with its own cache (depth
  // tokens, then its own n_prompt-token prompt, not timed), then n_gen model::decode steps of
  // all N at once; tokens/s counts every sequence's tokens (aggregate).
  std::vector<int> parallel;
};

struct bench_row {
  std::string cache;  // policy name as given
  int depth = 0;
  std::string test;  // "pp512", "tg128", "tg128x4" (4 sequences decoded together)
  int n_tokens = 0;
  double tps = 0;  // median tokens/s
  double tps_min = 0, tps_max = 0;
  size_t kv_bytes = 0;  // allocated for depth + test tokens (all sequences' caches)
  size_t kv_f16_bytes = 0;
  double bits_per_value = 0;
  std::shared_ptr<profile> prof;  // --profile: the timed repetitions' profile (else null)
  double timed_s = 0;             // seconds of the timed repetitions, as the tool measured them
  uint64_t rss_peak = 0;          // the process's peak resident set after the row (VmHWM)
  // tg rows: the tokens/s at which a step's bytes (the weights once, each sequence's KV cache at
  // the test's mean length) take the pool's measured read bandwidth (run/bandwidth.hpp); 0 for
  // pp rows.
  double read_bw = 0;  // bytes/s
  double limit_tps = 0;
  uint64_t step_kv_bytes = 0;
};

std::vector<bench_row> run_bench(model& m, thread_pool& pool, const bench_options& opt);

// Output formats: "table" (markdown, like llama-bench), "csv", "json".
void print_bench(std::FILE* out, const std::string& format, const model& m, int n_threads,
                 const std::vector<bench_row>& rows);

}  // namespace engine
