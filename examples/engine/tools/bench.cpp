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

namespace {

const char* kUsage = R"(usage: strata-bench [options]
  -m, --model FILE        GGUF model (default: SmolLM2-135M-Instruct Q4_1 in ~/.cache/strata/models)
  -p, --n-prompt N        prompt tokens of the pp test, in [0, 1048576] (default 512; 0 skips it)
  -n, --n-gen N           generated tokens of the tg test, in [0, 1048576] (default 128; 0 skips it)
  -d, --depth LIST        tokens already in the cache, e.g. 0,4096, each in [0, 16777216] (default 0)
  -r, --repetitions N     timed repetitions after one warm-up, in [1, 1000]; the median is shown (default 3)
  -t, --threads N         threads, in [1, 1024] (default: all cores)
  -b, --batch-size N      tokens per forward batch, in [1, 65536] (default 512)
  -ctk, -ctv T            K / V cache type of the default cache: {codecs}
                          (default f16 / f16)
  --kv-policy STRING      a cache to compare (a strata policy string); give the flag once per
                          cache: --kv-policy f16 --kv-policy la7 --kv-policy "k=q8_0;v=turbo3"
  --fill MODE             how the cache gets its depth tokens: shared (default) runs them once
                          through an f16 cache and copies their K/V rows into every cache
                          compared (each encodes them with its own codecs; the timed tests are
                          the same, filling 22 caches costs one prefill); each: every cache
                          runs its own prefill of them, as llama-bench does
  -o, --output FMT        table (default), csv or json
  --exact                 f32 activations in every matmul (reference mode)
  --q8-act                8-bit activations in one int8 plane, as llama.cpp (faster prefill;
                          default: two planes, about 15 bits, top-1 as --exact)
)";

}  // namespace

int main(int argc, char** argv) {
  try {
    engine::cli::args a(argc, argv, "strata-bench");
    std::string model_path = engine::cli::default_model_path(), format = "table";
    engine::bench_options opt;
    engine::kv_options base;
    std::vector<std::string> policies;
    int threads = 0;
    while (a.next()) {
      if (a.is("-m", "--model"))
        model_path = a.str();
      else if (a.is("-p", "--n-prompt"))
        opt.n_prompt = int(a.integer(0, 1 << 20));
      else if (a.is("-n", "--n-gen"))
        opt.n_gen = int(a.integer(0, 1 << 20));
      else if (a.is("-d", "--depth")) {
        opt.depths.clear();
        for (int64_t d : a.int_list(0, 1 << 24)) opt.depths.push_back(int(d));
      } else if (a.is("-r", "--repetitions"))
        opt.reps = int(a.integer(1, 1000));
      else if (a.is("-t", "--threads"))
        threads = int(a.integer(1, 1024));
      else if (a.is("-b", "--batch-size"))
        opt.fwd.n_batch = int(a.integer(1, 1 << 16));
      else if (a.is("-ctk", "--cache-type-k"))
        base.ctk = a.str();
      else if (a.is("-ctv", "--cache-type-v"))
        base.ctv = a.str();
      else if (a.is("--kv-policy"))
        policies.push_back(a.str());
      else if (a.is("--fill")) {
        const std::string f = a.str();
        if (f != "shared" && f != "each") a.fail("unknown --fill mode '" + f + "' (shared, each)");
        opt.shared_fill = f == "shared";
      } else if (a.is("-o", "--output")) {
        format = a.str();
        if (format != "table" && format != "csv" && format != "json" && format != "md")
          a.fail("unknown output format '" + format + "' (table, csv, json)");
      } else if (a.is("--exact"))
        opt.fwd.exact = true;
      else if (a.is("--q8-act"))
        opt.fwd.act_q8 = true;
      else if (a.is("-h", "--help")) {
        engine::cli::print_usage(kUsage);
        return 0;
      } else
        a.unknown();
    }
    if (opt.n_prompt == 0 && opt.n_gen == 0) a.fail("nothing to run (-p 0 and -n 0)");
    base.max_batch = opt.fwd.n_batch;
    engine::cli::expand_kv_policies(base, policies, opt.caches, opt.cache_names);
    auto lm = engine::cli::load(model_path, false);
    engine::thread_pool pool(threads);
    opt.progress = format == "table";
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
  } catch (const std::exception& e) {
    const std::string w = e.what();
    std::fprintf(stderr, "%s\n", w.rfind("error: ", 0) == 0 ? w.c_str() : ("error: " + w).c_str());
    return 1;
  }
}
