// strata-needle: pass key retrieval (a needle in a haystack) at chosen depths, per KV policy.
#include <cstdio>
#include <exception>
#include <string>

#include "error.hpp"
#include "model/thread_pool.hpp"
#include "run/cli.hpp"
#include "run/needle.hpp"

namespace {

const char* kEpilog =
    R"(Each cache answers every prompt in one session: a prompt reuses the K/V of the tokens it shares
with the previous one (the filler before the key) and prefills the rest ("reused" column).
Exit status: 0 when every run found its key, 2 when some did not, 1 on errors.
)";

}  // namespace

int main(int argc, char** argv) {
  return engine::cli::run_tool([&] {
    namespace cli = engine::cli;
    std::string model_path = cli::default_model_path();
    engine::needle_options opt;
    engine::kv_options base;
    std::vector<std::string> policies;
    int threads = 0;
    cli::flags f("strata-needle", "usage: strata-needle [options]", kEpilog);
    cli::model_flag(f, model_path);
    cli::ctx_flag(f, opt.n_ctx, 64, 1 << 22, "prompt length in tokens");
    f.custom({"--depth"}, "LIST",
             "where the key sits, fractions of the filler (default 0.1,0.5,0.9)",
             [&](cli::args& a) {
               opt.depths.clear();
               for (const std::string& s : a.str_list()) {
                 char* end = nullptr;
                 const double d = std::strtod(s.c_str(), &end);
                 if (*end != '\0' || !(d >= 0.0 && d <= 1.0))
                   a.fail("bad depth '" + s + "' (fractions in [0, 1])");
                 opt.depths.push_back(d);
               }
             });
    f.integer({"--trials"}, "N", "keys per depth, in {range} (default 1)", 1, 1000,
              [&](int64_t v) { opt.trials = int(v); });
    cli::threads_flag(f, threads);
    cli::cache_type_flags(f, base);
    cli::kv_policies_flag(f, policies);
    f.on({"--no-template"}, "plain text prompt even when the model has a chat template",
         [&] { opt.use_template = false; });
    cli::seed_flag(f, opt.seed, "picks the pass keys", "default " + std::to_string(opt.seed));
    cli::activation_flags(f, opt.fwd);
    if (!f.parse(argc, argv)) return 0;
    base.max_batch = opt.fwd.n_batch;
    engine::cli::expand_kv_policies(base, policies, opt.caches, opt.cache_names);
    auto lm = engine::cli::load(model_path, true);
    engine::cli::warn_sizes(threads, opt.n_ctx, lm.net->config());
    engine::thread_pool pool(threads);
    for (auto& k : opt.caches) engine::cli::resolve_auto_policy(k, lm, model_path, opt.n_ctx, pool);
    for (const auto& k : opt.caches) engine::make_kv(*lm.net, 16, k);  // validate first
    const auto rows = engine::run_needle(*lm.net, *lm.tok, pool, opt);
    std::printf("| kv | depth | prompt tokens | reused | key | answer | found | s |\n");
    std::printf("| --- | ---: | ---: | ---: | --- | --- | --- | ---: |\n");
    int found = 0;
    for (const auto& r : rows) {
      std::string ans = r.answer;
      for (char& ch : ans)
        if (ch == '\n' || ch == '|') ch = ' ';
      std::printf("| %s | %.2f | %d | %d | %s | %s | %s | %.1f |\n", r.cache.c_str(), r.depth,
                  r.n_prompt, r.n_reused, r.key.c_str(), ans.c_str(), r.found ? "yes" : "NO",
                  r.seconds);
      found += r.found;
    }
    std::printf("found %d of %zu\n", found, rows.size());
    return found == int(rows.size()) ? 0 : 2;
  });
}
