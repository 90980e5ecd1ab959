// strata-chat: chat with a GGUF model over a strata KV cache. One-shot with -p, otherwise
// interactive (one line per turn, Ctrl-D ends), streaming the answer as it is generated.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <string>

#include "error.hpp"
#include "kv/kv_select.hpp"
#include "model/thread_pool.hpp"
#include "run/cli.hpp"
#include "run/generate.hpp"
#include "run/memory_plan.hpp"
#include "run/process_plan.hpp"
#include "text/chat_template.hpp"

namespace {

struct stats_printer {
  const engine::kv_store& kv;
  void operator()(const engine::generation_stats& st) const {
    const double pp = st.prompt_s > 0 ? st.n_prompt / st.prompt_s : 0.0;
    const double tg = st.gen_s > 0 ? st.n_gen / st.gen_s : 0.0;
    const double saved = 100.0 * (1.0 - double(kv.bytes()) / double(kv.f16_bytes()));
    const engine::resident_set rss = engine::process_rss();
    std::fprintf(
        stderr,
        "\n[prompt %d tokens (%d reused) %.1f t/s | generated %d tokens %.1f t/s | KV %s: %s "
        "for %d tokens, %.2f bits/value, f16 would take %s: %.1f%% saved%s | RSS %s, peak %s]\n",
        st.n_prompt, st.n_reused, pp, st.n_gen, tg, kv.describe().c_str(),
        engine::cli::human_bytes(double(kv.bytes())).c_str(), kv.capacity(), kv.bits_per_value(),
        engine::cli::human_bytes(double(kv.f16_bytes())).c_str(), saved,
        st.n_shifted ? (", context shifted by " + std::to_string(st.n_shifted)).c_str() : "",
        engine::cli::human_bytes(double(rss.now)).c_str(),
        engine::cli::human_bytes(double(rss.peak)).c_str());
  }
};

}  // namespace

int main(int argc, char** argv) {
  return engine::cli::run_tool([&] {
    namespace cli = engine::cli;
    std::string model_path = cli::default_model_path(), prompt, system;
    bool one_shot = false, shift = false, raw = false;
    int n_predict = 512, threads = 0;
    engine::sampler_params sp;
    sp.seed = uint64_t(cli::now_s() * 1e6);
    engine::kv_options kv;
    kv.ctk = "q8_0";
    kv.ctv = "turbo3";
    engine::forward_options fwd;
    cli::flags f("strata-chat", "usage: strata-chat [options]");
    cli::model_flag(f, model_path);
    f.text({"-p", "--prompt"}, "TEXT",
           "one-shot: answer TEXT and exit (otherwise interactive; Ctrl-D ends)",
           [&](std::string v) {
             prompt = std::move(v);
             one_shot = true;
           });
    f.text({"-sys", "--system"}, "TEXT", "system message",
           [&](std::string v) { system = std::move(v); });
    cli::context_request ctx;
    cli::context_flag(f, ctx, "context (KV cache) size in tokens");
    cli::mem_flags(f, ctx);
    f.integer({"-n", "--n-predict"}, "N", "most tokens per answer, in {range} (default 512)", 1,
              1 << 22, [&](int64_t v) { n_predict = int(v); });
    cli::threads_flag(f, threads);
    cli::sampling_flags(f, sp);
    cli::seed_flag(f, sp.seed, "sampling seed", "default: from the clock");
    cli::cache_type_flags(f, kv);
    cli::kv_policy_flag(f, kv);
    f.on({"--ctx-shift"},
         "when the context is full, drop the oldest half of the conversation\n"
         "(default: stop with an error)",
         [&] { shift = true; });
    cli::activation_flags(f, fwd, &kv);
    bool profile_on = false, profile_layers = false;
    engine::profile prof;
    double measured_s = 0;
    cli::profile_flags(f, profile_on, profile_layers);
    f.on({"--raw"}, "no chat template: the prompt is plain text to continue", [&] { raw = true; });
    if (!f.parse(argc, argv)) return 0;
    kv.max_batch = fwd.n_batch;

    auto lm = engine::cli::load(model_path, true);
    engine::thread_pool pool(threads);
    // An auto policy is chosen for -c (for -c auto: at the model's trained context, capped at 32K).
    engine::cli::resolve_auto_policy(
        kv, lm, model_path,
        ctx.automatic
            ? std::min(lm.net->config().n_ctx_train > 0 ? lm.net->config().n_ctx_train : 4096,
                       32768)
            : ctx.n_ctx,
        pool);
    // The whole process: the session holds one row of logits.
    engine::process_shape shape{.n_ctx = ctx.n_ctx, .n_batch = fwd.n_batch, .threads = pool.size()};
    shape.resident_rest = engine::resident_rest(lm, 0);
    if (ctx.automatic) shape.n_ctx = cli::auto_context_or_fail(f, lm, kv, shape, ctx);
    const int n_ctx = shape.n_ctx;
    engine::cli::warn_sizes(threads, n_ctx, lm.net->config());
    {  // Refuse a context that cannot fit before the cache is allocated.
      const engine::memory_plan plan = engine::process_plan(lm, kv, shape);
      if (ctx.print_plan) {
        cli::print_plan(plan, "strata-chat", ctx);
        return 0;
      }
      cli::require_fits(plan, "strata-chat", ctx);
    }
    auto cache = engine::make_kv(*lm.net, n_ctx, kv);
    const auto& c = lm.net->config();
    std::fprintf(
        stderr, "model: %s (%s, %d layers, %.1f M params, %s), loaded in %.0f ms, %d threads\n",
        model_path.c_str(), c.arch_name.c_str(), c.n_layer, double(lm.net->n_params()) / 1e6,
        engine::cli::human_bytes(double(lm.net->weight_bytes())).c_str(), lm.load_ms, pool.size());
    std::fprintf(
        stderr,
        "KV cache: %s, %s for %d tokens (%.2f bits/value); f16 would take %s (%.1f%% saved)\n",
        cache->describe().c_str(), engine::cli::human_bytes(double(cache->bytes())).c_str(), n_ctx,
        cache->bits_per_value(), engine::cli::human_bytes(double(cache->f16_bytes())).c_str(),
        100.0 * (1.0 - double(cache->bytes()) / double(cache->f16_bytes())));

    if (profile_on) fwd.prof = &prof;
    engine::session s(*lm.net, *lm.tok, *cache, pool, fwd);
    s.set_context_shift(shift, 0);
    engine::sampler smp(sp);
    const stats_printer print_stats{*cache};
    std::vector<engine::chat_message> msgs;
    if (!system.empty()) msgs.push_back({"system", system});
    auto stream = [](const std::string& piece) {
      std::fwrite(piece.data(), 1, piece.size(), stdout);
      std::fflush(stdout);
      return true;
    };
    auto turn = [&](const std::string& user) {
      std::string text;
      if (raw) {
        text = (s.tokens().empty() ? "" : "\n") + user;
      } else {
        msgs.push_back({"user", user});
        text = engine::apply_chat_template(lm.net->file(), msgs, true);
      }
      std::vector<int32_t> toks;
      if (raw) {
        toks = s.tokens();
        const auto more = lm.tok->encode(text, s.tokens().empty(), false);
        toks.insert(toks.end(), more.begin(), more.end());
      } else {
        toks = lm.tok->encode(text, true, true);
      }
      engine::generation_stats st;
      s.prefill(toks, st);
      const auto out = s.generate(smp, n_predict, stream, st);
      std::fputs("\n", stdout);
      std::fflush(stdout);
      if (!raw) msgs.push_back({"assistant", lm.tok->decode(out, false)});
      print_stats(st);
      measured_s += st.prompt_s + st.gen_s;
    };

    if (one_shot) {
      turn(prompt);
      if (profile_on) cli::print_profile(prof, profile_layers, measured_s);
      return 0;
    }
    const bool tty = isatty(fileno(stdin));
    if (tty) std::fprintf(stderr, "interactive chat: one line per turn, Ctrl-D to end\n");
    std::string line;
    while (true) {
      if (tty) std::fprintf(stderr, "> ");
      if (!std::getline(std::cin, line)) break;
      if (line.empty()) continue;
      turn(line);
    }
    if (tty) std::fprintf(stderr, "\n");
    if (profile_on) cli::print_profile(prof, profile_layers, measured_s);
    return 0;
  });
}
