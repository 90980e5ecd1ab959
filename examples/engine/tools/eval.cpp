// strata-eval: known-answer questions (a JSONL file) answered through the model's chat template
// under one or more KV caches; accuracy ± standard error, agreement with the f16 cache's
// answers, tokens/s and KV size per cache, as a markdown table or JSON.
#include <cstdio>
#include <string>
#include <vector>

#include "error.hpp"
#include "model/thread_pool.hpp"
#include "run/cli.hpp"
#include "run/eval.hpp"

int main(int argc, char** argv) {
  return engine::cli::run_tool([&] {
    namespace cli = engine::cli;
    std::string model_path = cli::default_model_path(), file, format = "table";
    engine::eval_options opt;
    opt.sp.temp = 0.2f;
    opt.sp.seed = 1;
    engine::kv_options base;
    std::vector<std::string> policies;
    int threads = 0;
    cli::flags f("strata-eval", "usage: strata-eval -f FILE.jsonl [options]",
                 "Each line of FILE: {\"prompt\": ..., \"answer\": \"text\" or [\"a\", \"b\"]} or\n"
                 "{\"prompt\": ..., \"regex\": ...}, optional id, category, case_sensitive,\n"
                 "temp, n_predict, repeats (docs/engine.md). Without --kv-policy the cache of\n"
                 "-ctk/-ctv runs; an f16 cache runs too when none is asked (the reference of\n"
                 "the agreement columns).");
    cli::model_flag(f, model_path);
    f.text({"-f", "--file"}, "FILE", "the questions, one JSON object per line (required)",
           [&](std::string v) { file = std::move(v); });
    f.integer({"-n", "--n-predict"}, "N", "most tokens per answer, in {range} (default 150)", 1,
              1 << 20, [&](int64_t v) { opt.n_predict = int(v); });
    f.integer({"-r", "--repeats"}, "N",
              "answers per question, repeat r with seed + r, in {range} (default 1)", 1, 1000,
              [&](int64_t v) { opt.repeats = int(v); });
    f.integer({"-c", "--ctx-size"}, "N",
              "KV cache size in tokens, in {range} (default: the longest prompt\n"
              "plus its n_predict)",
              16, 1 << 22, [&](int64_t v) { opt.n_ctx = int(v); });
    f.text({"-sys", "--system"}, "TEXT", "system message (default: the template's own)",
           [&](std::string v) { opt.system = std::move(v); });
    cli::threads_flag(f, threads);
    cli::sampling_flags(f, opt.sp);
    cli::seed_flag(f, opt.sp.seed, "sampling seed of the first repeat", "default 1");
    cli::cache_type_flags(f, base);
    cli::kv_policies_flag(f, policies);
    f.custom({"-o", "--output"}, "FMT", "table (default) or json", [&](cli::args& a) {
      format = a.str();
      if (format != "table" && format != "json")
        a.fail("unknown output format '" + format + "' (table, json)");
    });
    std::string json_path;
    f.text({"--json"}, "FILE", "also write the JSON report (every answer included) to FILE",
           [&](std::string v) { json_path = std::move(v); });
    cli::activation_flags(f, opt.fwd);
    if (!f.parse(argc, argv)) return 0;
    if (file.empty()) f.fail("no question file (-f FILE.jsonl)");
    if (!json_path.empty())
      cli::refuse_output_over_inputs(json_path, "--json", {{"-f", file}, {"-m", model_path}});
    const auto items = engine::load_eval_items(file);
    base.max_batch = opt.fwd.n_batch;
    cli::expand_kv_policies(base, policies, opt.caches, opt.cache_names);
    auto lm = cli::load(model_path, true);
    for (const auto& k : opt.caches) engine::make_kv(*lm.net, 16, k);  // check every spec first
    engine::thread_pool pool(threads);
    opt.progress = true;
    const auto report = engine::run_eval(*lm.net, *lm.tok, pool, items, opt);
    engine::print_eval(stdout, format, *lm.net, pool.size(), items, opt, report);
    if (!json_path.empty()) {
      std::FILE* out = std::fopen(json_path.c_str(), "w");
      if (!out) throw engine::make_error("cannot write '" + json_path + "'", "strata-eval --json");
      engine::print_eval(out, "json", *lm.net, pool.size(), items, opt, report);
      if (std::fclose(out) != 0)
        throw engine::make_error("cannot write '" + json_path + "'", "strata-eval --json");
    }
    return 0;
  });
}
