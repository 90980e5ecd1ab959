// strata-needle: pass key retrieval (a needle in a haystack) at chosen depths, per KV policy.
#include <cstdio>
#include <exception>
#include <string>

#include "error.hpp"
#include "model/thread_pool.hpp"
#include "run/cli.hpp"
#include "run/needle.hpp"

namespace {

const char* kUsage = R"(usage: strata-needle [options]
  -m, --model FILE        GGUF model (default: SmolLM2-135M-Instruct Q4_1 in ~/.cache/strata/models)
  -c, --ctx-size N        prompt length in tokens, in [64, 4194304] (default 2048)
  --depth LIST            where the key sits, fractions of the filler (default 0.1,0.5,0.9)
  --trials N              keys per depth, in [1, 1000] (default 1)
  -t, --threads N         threads, in [1, 1024] (default: all cores)
  -ctk, -ctv T            K / V cache type of the default cache: {codecs}
                          (default f16 / f16)
  --kv-policy STRING      a cache to compare; give the flag once per cache
  --no-template           plain text prompt even when the model has a chat template
  --seed N                picks the pass keys, in [0, 9223372036854775807] (default 42)
  --exact                 f32 activations in every matmul (reference mode)
  --q8-act                8-bit activations in one int8 plane, as llama.cpp (faster prefill;
                          default: two planes, about 15 bits, top-1 as --exact)
Each cache answers every prompt in one session: a prompt reuses the K/V of the tokens it shares
with the previous one (the filler before the key) and prefills the rest ("reused" column).
Exit status: 0 when every run found its key, 2 when some did not, 1 on errors.
)";

}  // namespace

int main(int argc, char** argv) {
  try {
    engine::cli::args a(argc, argv, "strata-needle");
    std::string model_path = engine::cli::default_model_path();
    engine::needle_options opt;
    engine::kv_options base;
    std::vector<std::string> policies;
    int threads = 0;
    while (a.next()) {
      if (a.is("-m", "--model"))
        model_path = a.str();
      else if (a.is("-c", "--ctx-size"))
        opt.n_ctx = int(a.integer(64, 1 << 22));
      else if (a.is("--depth")) {
        opt.depths.clear();
        for (const std::string& s : a.str_list()) {
          char* end = nullptr;
          const double d = std::strtod(s.c_str(), &end);
          if (*end != '\0' || !(d >= 0.0 && d <= 1.0))
            a.fail("bad depth '" + s + "' (fractions in [0, 1])");
          opt.depths.push_back(d);
        }
      } else if (a.is("--trials"))
        opt.trials = int(a.integer(1, 1000));
      else if (a.is("-t", "--threads"))
        threads = int(a.integer(1, 1024));
      else if (a.is("-ctk", "--cache-type-k"))
        base.ctk = a.str();
      else if (a.is("-ctv", "--cache-type-v"))
        base.ctv = a.str();
      else if (a.is("--kv-policy"))
        policies.push_back(a.str());
      else if (a.is("--no-template"))
        opt.use_template = false;
      else if (a.is("--seed"))
        opt.seed = uint64_t(a.integer(0, INT64_MAX));
      else if (a.is("--exact"))
        opt.fwd.exact = true;
      else if (a.is("--q8-act"))
        opt.fwd.act_q8 = true;
      else if (a.is("-h", "--help")) {
        engine::cli::print_usage(kUsage);
        return 0;
      } else
        a.unknown();
    }
    base.max_batch = opt.fwd.n_batch;
    engine::cli::expand_kv_policies(base, policies, opt.caches, opt.cache_names);
    auto lm = engine::cli::load(model_path, true);
    engine::cli::warn_sizes(threads, opt.n_ctx, lm.net->config());
    engine::thread_pool pool(threads);
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
  } catch (const std::exception& e) {
    const std::string w = e.what();
    std::fprintf(stderr, "%s\n", w.rfind("error: ", 0) == 0 ? w.c_str() : ("error: " + w).c_str());
    return 1;
  }
}
