// strata-bench: prompt processing (pp) and generation (tg) tokens/s at chosen context depths
// and KV cache policies, as a markdown table, CSV or JSON.
#include <algorithm>
#include <cstdio>
#include <exception>
#include <string>

#include "error.hpp"
#include "model/thread_pool.hpp"
#include "run/bench.hpp"
#include "run/cli.hpp"
#include "run/memory_plan.hpp"

int main(int argc, char** argv) {
  return engine::cli::run_tool([&] {
    namespace cli = engine::cli;
    std::string model_path = cli::default_model_path(), format = "table";
    engine::bench_options opt;
    engine::kv_options base;
    std::vector<std::string> policies;
    int threads = 0;
    cli::flags f("strata-bench", "usage: strata-bench [options]");
    cli::model_flag(f, model_path);
    f.integer({"-p", "--n-prompt"}, "N",
              "prompt tokens of the pp test, in {range} (default 512; 0 skips it)", 0, 1 << 20,
              [&](int64_t v) { opt.n_prompt = int(v); });
    f.integer({"-n", "--n-gen"}, "N",
              "generated tokens of the tg test, in {range} (default 128; 0 skips it)", 0, 1 << 20,
              [&](int64_t v) { opt.n_gen = int(v); });
    f.int_list({"-d", "--depth"}, "LIST",
               "tokens already in the cache, e.g. 0,4096, each in {range} (default 0)", 0, 1 << 24,
               [&](std::vector<int64_t> v) {
                 opt.depths.clear();
                 for (int64_t d : v) opt.depths.push_back(int(d));
               });
    f.integer({"-r", "--repetitions"}, "N",
              "timed repetitions after one warm-up, in {range}; the median is shown\n(default 3)",
              1, 1000, [&](int64_t v) { opt.reps = int(v); });
    f.int_list({"-np", "--parallel"}, "LIST",
               "sequences decoded at once, each N in {range}, e.g. 1,2,4,8: a\n"
               "tg<n>x<N> row of aggregate tokens/s per N (own caches, each with\n"
               "its own prompt of -p tokens)",
               1, 256, [&](std::vector<int64_t> v) {
                 opt.parallel.clear();
                 for (int64_t n : v) opt.parallel.push_back(int(n));
               });
    cli::threads_flag(f, threads);
    cli::batch_flag(f, opt.fwd);
    cli::cache_type_flags(f, base);
    cli::kv_policies_flag(f, policies);
    f.custom({"--fill"}, "MODE",
             "how the cache gets its depth tokens: shared (default) runs them once\n"
             "through an f16 cache and copies their K/V rows into every cache\n"
             "compared (each encodes them with its own codecs; the timed tests are\n"
             "the same, filling 22 caches costs one prefill); each: every cache\n"
             "runs its own prefill of them, as llama-bench does",
             [&](cli::args& a) {
               const std::string m = a.str();
               if (m != "shared" && m != "each")
                 a.fail("unknown --fill mode '" + m + "' (shared, each)");
               opt.shared_fill = m == "shared";
             });
    f.custom({"-o", "--output"}, "FMT", "table (default), csv or json", [&](cli::args& a) {
      format = a.str();
      if (format != "table" && format != "csv" && format != "json" && format != "md")
        a.fail("unknown output format '" + format + "' (table, csv, json)");
    });
    cli::activation_flags(f, opt.fwd);
    bool profile_layers = false;  // bench prints the totals per row
    cli::profile_flags(f, opt.profile, profile_layers);
    if (!f.parse(argc, argv)) return 0;
    if (opt.n_prompt == 0 && opt.n_gen == 0) f.fail("nothing to run (-p 0 and -n 0)");
    base.max_batch = opt.fwd.n_batch;
    engine::cli::expand_kv_policies(base, policies, opt.caches, opt.cache_names);
    const bool any_auto =
        std::any_of(opt.caches.begin(), opt.caches.end(),
                    [](const engine::kv_options& k) { return cli::is_auto_policy(k.policy); });
    auto lm = engine::cli::load(model_path, any_auto);
    engine::thread_pool pool(threads);
    opt.progress = format == "table";
    {  // auto policies are chosen for the largest context a row holds
      const int max_depth =
          opt.depths.empty() ? 0 : *std::max_element(opt.depths.begin(), opt.depths.end());
      const int n_ctx = max_depth + std::max(opt.n_prompt, opt.n_gen);
      for (auto& k : opt.caches) engine::cli::resolve_auto_policy(k, lm, model_path, n_ctx, pool);
    }
    // Check every cache spec before spending time.
    for (const auto& k : opt.caches) engine::make_kv(*lm.net, 16, k);
    {  // The largest cache a row will hold (caches are made one at a time), and the shared fill.
      const int max_depth =
          opt.depths.empty() ? 0 : *std::max_element(opt.depths.begin(), opt.depths.end());
      const int n_ctx = max_depth + std::max(opt.n_prompt, opt.n_gen);
      engine::memory_plan plan;
      uint64_t largest = 0;
      for (const auto& k : opt.caches)
        largest = std::max(largest, engine::kv_bytes(*lm.net, n_ctx, k));
      plan.add("largest KV cache (" + std::to_string(n_ctx) + " tokens)", largest);
      if (!opt.parallel.empty() && opt.n_gen > 0) {  // -np N: N caches at once
        const int np = *std::max_element(opt.parallel.begin(), opt.parallel.end());
        const int ctx = max_depth + opt.n_prompt + opt.n_gen;
        uint64_t each = 0;
        for (const auto& k : opt.caches) each = std::max(each, engine::kv_bytes(*lm.net, ctx, k));
        plan.add(std::to_string(np) + " KV caches for -np (" + std::to_string(ctx) + " tokens)",
                 uint64_t(np) * each);
      }
      if (opt.shared_fill && max_depth > 0) {
        engine::kv_options f16;
        f16.max_batch = opt.fwd.n_batch;
        plan.add("shared f16 fill (" + std::to_string(max_depth) + " tokens, recorded)",
                 2 * engine::kv_bytes(*lm.net, max_depth, f16));
      }
      plan.require_fits("strata-bench");
    }
    const auto rows = engine::run_bench(*lm.net, pool, opt);
    engine::print_bench(stdout, format == "md" ? "table" : format, *lm.net, pool.size(), rows);
    return 0;
  });
}
