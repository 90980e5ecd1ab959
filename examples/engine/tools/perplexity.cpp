// strata-perplexity: perplexity of a model on a text file, computed as llama-perplexity does,
// with the KV cache policy of your choice; KL divergence against a saved base run.
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include "error.hpp"
#include "kv/kv_select.hpp"
#include "model/thread_pool.hpp"
#include "run/cli.hpp"
#include "run/memory_plan.hpp"
#include "run/perplexity.hpp"
#include "run/process_plan.hpp"

int main(int argc, char** argv) {
  return engine::cli::run_tool([&] {
    namespace cli = engine::cli;
    std::string model_path = cli::default_model_path(), file, kld_file;
    bool kld = false, progress = true;
    engine::perplexity_options opt;
    engine::kv_options kv;
    int threads = 0;
    cli::flags f("strata-perplexity", "usage: strata-perplexity [options]");
    cli::model_flag(f, model_path);
    f.text({"-f", "--file"}, "FILE", "text file to score (e.g. wiki.test.raw)",
           [&](std::string v) { file = std::move(v); });
    f.custom({"-c", "--ctx-size"}, "N", "window size, in [8, 1048576] (default 512)",
             [&](cli::args& a) {
               const std::string v = a.str();
               if (v == "auto")
                 a.fail(
                     "-c auto is for strata-chat (the largest cache that fits); here -c is the "
                     "evaluation window: give its size in tokens");
               char* end = nullptr;
               const long long n = std::strtoll(v.c_str(), &end, 10);
               if (v.empty() || *end != '\0' || n < 8 || n > (1 << 20))
                 a.fail("bad value '" + v + "' for " + a.flag() + " (an integer in [8, 1048576])");
               opt.n_ctx = int(n);
             });
    cli::context_request mem;  // --mem and --mem-plan (-c is the window here)
    cli::mem_flags(f, mem);
    f.integer({"--chunks"}, "N", "score at most N windows, in {range} (default: all)", 1, 1 << 30,
              [&](int64_t v) { opt.n_chunks = int(v); });
    cli::threads_flag(f, threads);
    cli::batch_flag(f, opt.fwd);
    cli::cache_type_flags(f, kv);
    cli::kv_policy_flag(f, kv);
    f.text({"--kl-divergence-base"}, "FILE",
           "save this run's log-probs (the base for --kl-divergence)",
           [&](std::string v) { kld_file = std::move(v); });
    f.on({"--kl-divergence"}, "with --kl-divergence-base FILE: compare this run against FILE",
         [&] { kld = true; });
    cli::activation_flags(f, opt.fwd, &kv);
    bool profile_on = false, profile_layers = false;
    engine::profile prof;
    cli::profile_flags(f, profile_on, profile_layers);
    f.on({"--no-progress"}, "no progress bar", [&] { progress = false; });
    if (!f.parse(argc, argv)) return 0;
    if (file.empty()) f.fail("no text file (-f FILE)");
    if (kld && kld_file.empty()) f.fail("--kl-divergence needs --kl-divergence-base FILE");
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
    engine::cli::resolve_auto_policy(kv, lm, model_path, opt.n_ctx, pool);
    if (tokens.size() < size_t(opt.n_ctx))
      f.fail("the text has " + std::to_string(tokens.size()) +
             " tokens, fewer than one window of -c " + std::to_string(opt.n_ctx));
    engine::cli::warn_sizes(threads, opt.n_ctx, c);
    {  // Refuse a run that cannot fit before anything big is allocated: the whole process, with
       // the window's logits, the text and its token ids.
      const engine::process_shape shape{
          .n_ctx = opt.n_ctx,
          .n_batch = opt.fwd.n_batch,
          .logits_rows = opt.n_ctx,
          .logprob_rows = 2,
          .samplers = 0,
          .threads = pool.size(),
          .input_bytes = text.size() + tokens.size() * sizeof(int32_t),
          .input_what = "text and token ids (" + std::to_string(tokens.size()) + " tokens)"};
      const engine::memory_plan plan = engine::process_plan(lm, kv, shape);
      if (mem.print_plan) {
        cli::print_plan(plan, "strata-perplexity", mem);
        return 0;
      }
      cli::require_fits(plan, "strata-perplexity", mem);
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
    if (profile_on) opt.fwd.prof = &prof;
    const engine::perplexity_result r = engine::run_perplexity(*lm.net, tokens, make, pool, opt);
    if (profile_on) cli::print_profile(prof, profile_layers, r.seconds);
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
  });
}
