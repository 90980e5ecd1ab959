// strata-perplexity: perplexity of a model on a text file, computed as llama-perplexity does,
// with the KV cache policy of your choice; KL divergence against a saved base run.
#include <cstdio>
#include <exception>
#include <string>

#include "error.hpp"
#include "kv/kv_select.hpp"
#include "model/thread_pool.hpp"
#include "run/cli.hpp"
#include "run/memory_plan.hpp"
#include "run/perplexity.hpp"

namespace {

const char* kUsage = R"(usage: strata-perplexity [options]
  -m, --model FILE          GGUF model (default: SmolLM2-135M-Instruct Q4_1 in ~/.cache/strata/models)
  -f, --file FILE           text file to score (e.g. wiki.test.raw)
  -c, --ctx-size N          window size, in [8, 1048576] (default 512)
  --chunks N                score at most N windows, in [1, 1073741824] (default: all)
  -t, --threads N           threads, in [1, 1024] (default: all cores)
  -b, --batch-size N        tokens per forward batch, in [1, 65536] (default 512)
  -ctk, --cache-type-k T    K cache type: {codecs} (default f16)
  -ctv, --cache-type-v T    V cache type (default f16)
  --kv-policy STRING        a strata policy (la1 la2 la5 la6 la7 boundary-v, or rules such as
                            "v:first2,last2=q8_0;v=turbo2;k=q8_0"); wins over -ctk/-ctv
  --kl-divergence-base FILE save this run's log-probs (the base for --kl-divergence)
  --kl-divergence           with --kl-divergence-base FILE: compare this run against FILE
  --exact                   f32 activations in every matmul and an f32 KV cache (reference mode)
  --q8-act                  8-bit activations in one int8 plane, as llama.cpp (faster prefill;
                            default: two planes, about 15 bits, top-1 as --exact)
  --no-progress             no progress bar
)";

}  // namespace

int main(int argc, char** argv) {
  try {
    engine::cli::args a(argc, argv, "strata-perplexity");
    std::string model_path = engine::cli::default_model_path(), file, kld_file;
    bool kld = false, progress = true;
    engine::perplexity_options opt;
    engine::kv_options kv;
    int threads = 0;
    while (a.next()) {
      if (a.is("-m", "--model"))
        model_path = a.str();
      else if (a.is("-f", "--file"))
        file = a.str();
      else if (a.is("-c", "--ctx-size"))
        opt.n_ctx = int(a.integer(8, 1 << 20));
      else if (a.is("--chunks"))
        opt.n_chunks = int(a.integer(1, 1 << 30));
      else if (a.is("-t", "--threads"))
        threads = int(a.integer(1, 1024));
      else if (a.is("-b", "--batch-size"))
        opt.fwd.n_batch = int(a.integer(1, 1 << 16));
      else if (a.is("-ctk", "--cache-type-k"))
        kv.ctk = a.str();
      else if (a.is("-ctv", "--cache-type-v"))
        kv.ctv = a.str();
      else if (a.is("--kv-policy"))
        kv.policy = a.str();
      else if (a.is("--kl-divergence-base"))
        kld_file = a.str();
      else if (a.is("--kl-divergence"))
        kld = true;
      else if (a.is("--exact"))
        opt.fwd.exact = kv.reference = true;
      else if (a.is("--q8-act"))
        opt.fwd.act_q8 = true;
      else if (a.is("--no-progress"))
        progress = false;
      else if (a.is("-h", "--help")) {
        engine::cli::print_usage(kUsage);
        return 0;
      } else
        a.unknown();
    }
    if (file.empty()) a.fail("no text file (-f FILE)");
    if (kld && kld_file.empty()) a.fail("--kl-divergence needs --kl-divergence-base FILE");
    (kld ? opt.kld_base_in : opt.kld_base_out) = kld_file;
    if (!opt.kld_base_out.empty())
      engine::cli::refuse_output_over_inputs(opt.kld_base_out, "--kl-divergence-base",
                                             {{"-m", model_path}, {"-f", file}});
    opt.progress = progress;
    kv.max_batch = opt.fwd.n_batch;

    auto lm = engine::cli::load(model_path, true);
    engine::thread_pool pool(threads);
    const std::string text = engine::cli::read_file(file);
    const double t0 = engine::cli::now_s();
    const std::vector<int32_t> tokens = lm.tok->encode(text, true, false);
    const double tok_s = engine::cli::now_s() - t0;
    opt.add_bos = lm.tok->add_bos();
    opt.bos = lm.tok->bos();
    const auto& c = lm.net->config();
    if (tokens.size() < size_t(opt.n_ctx))
      a.fail("the text has " + std::to_string(tokens.size()) +
             " tokens, fewer than one window of -c " + std::to_string(opt.n_ctx));
    engine::cli::warn_sizes(threads, opt.n_ctx, c);
    {  // Refuse a run that cannot fit before anything big is allocated.
      engine::memory_plan plan;
      plan.add("KV cache (" + kv.policy_string() + (kv.reference ? ", f32 reference" : "") + ", " +
                   std::to_string(opt.n_ctx) + " tokens)",
               engine::kv_bytes(*lm.net, opt.n_ctx, kv));
      plan.add("logits (" + std::to_string(opt.n_ctx) + " x " + std::to_string(c.n_vocab) + " f32)",
               uint64_t(opt.n_ctx) * uint64_t(c.n_vocab) * 4);
      plan.require_fits("strata-perplexity");
    }
    auto probe = engine::make_kv(*lm.net, opt.n_ctx, kv);
    std::printf("model: %s (%s, %d layers, %.1f M params), loaded in %.0f ms\n", model_path.c_str(),
                c.arch_name.c_str(), c.n_layer, double(lm.net->n_params()) / 1e6, lm.load_ms);
    std::printf("text: %s, %zu tokens (tokenized in %.2f s); n_ctx %d, threads %d%s\n",
                file.c_str(), tokens.size(), tok_s, opt.n_ctx, pool.size(),
                opt.fwd.exact    ? ", exact mode"
                : opt.fwd.act_q8 ? ", one int8 activation plane (--q8-act)"
                                 : "");
    std::printf("KV cache: %s, %s for %d tokens (%.2f bits/value; f16 would take %s)\n",
                probe->describe().c_str(), engine::cli::human_bytes(double(probe->bytes())).c_str(),
                opt.n_ctx, probe->bits_per_value(),
                engine::cli::human_bytes(double(probe->f16_bytes())).c_str());
    std::fflush(stdout);
    auto make = [&](int n_ctx) {
      if (n_ctx == opt.n_ctx && probe) return std::move(probe);
      return engine::make_kv(*lm.net, n_ctx, kv);
    };
    const engine::perplexity_result r = engine::run_perplexity(*lm.net, tokens, make, pool, opt);
    std::printf("%d chunks, %lld tokens scored in %.2f s (%.1f tokens/s)\n", r.n_chunks,
                static_cast<long long>(r.n_scored), r.seconds,
                double(r.n_chunks) * opt.n_ctx / r.seconds);
    if (r.has_kld) {
      std::printf("base PPL          %.4f\n", r.base_ppl);
      std::printf("Mean KLD:         %.6f +/- %.6f\n", r.kld_mean, r.kld_err);
      std::printf("Same top p:       %.3f +/- %.3f %%\n", 100.0 * r.top1, 100.0 * r.top1_err);
    }
    if (!opt.kld_base_out.empty())
      std::printf("saved base log-probs to %s\n", opt.kld_base_out.c_str());
    std::printf("Final estimate: PPL = %.4f +/- %.5f\n", r.ppl, r.ppl_err);
    return 0;
  } catch (const std::exception& e) {
    const std::string w = e.what();
    std::fprintf(stderr, "%s\n", w.rfind("error: ", 0) == 0 ? w.c_str() : ("error: " + w).c_str());
    return 1;
  }
}
