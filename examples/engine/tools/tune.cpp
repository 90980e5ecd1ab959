// strata-tune: how much each KV layer's K and V add to the output error on cheaper codecs
// (predicted KLD per layer, side and codec; K/V norms and outlier channels), and the policies an
// automatic choice would pick (--choose auto:bits=X / auto:kld=Y).
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "error.hpp"
#include "model/thread_pool.hpp"
#include "run/auto_policy.hpp"
#include "run/cli.hpp"
#include "run/policy_choice.hpp"
#include "run/tune.hpp"

namespace {

const char* kEpilog =
    R"(Without -f the text is the calibration text shipped with the engine (data/calibration.txt),
the one --kv-policy auto uses. The error of each layer and side is the relative change of that
layer's attention output when it alone uses the codec, measured in one f16 pass; the gain that
turns it into a KL divergence comes from one run of --calibration-policy against the f16 logits.
--validate N adds N true single-layer runs and the rank correlation of prediction and truth.
)";

}  // namespace

int main(int argc, char** argv) {
  return engine::cli::run_tool([&] {
    namespace cli = engine::cli;
    std::string model_path = cli::default_model_path();
    std::string file, output = "table";
    std::vector<std::string> choose;
    engine::tune_options opt;
    int threads = 0;
    cli::flags f("strata-tune", "usage: strata-tune [options]", kEpilog);
    cli::model_flag(f, model_path);
    f.text({"-f", "--file"}, "FILE", "calibration text (default: the shipped one)",
           [&](std::string v) { file = std::move(v); });
    cli::ctx_flag(f, opt.n_ctx, 16, 1 << 20, "window size");
    f.integer({"--chunks"}, "N", "windows of the text, in {range} (default 6)", 1, 1 << 20,
              [&](int64_t v) { opt.n_chunks = int(v); });
    cli::threads_flag(f, threads);
    cli::batch_flag(f, opt.fwd);
    f.text({"--calibration-policy"}, "STRING",
           "the whole-model policy whose KLD sets the gain (default \"" + opt.calib_policy + "\")",
           [&](std::string v) { opt.calib_policy = std::move(v); });
    f.integer({"--validate"}, "N", "true single-layer KLD runs, in {range} (default 0)", 0, 1000,
              [&](int64_t v) { opt.validate = int(v); });
    f.text({"--menu"}, "A,B,...",
           "the codecs to measure (default: the automatic policy's menu, run/tune.hpp)",
           [&](std::string v) {
             opt.menu.clear();
             size_t at = 0;
             while (at <= v.size()) {
               const size_t comma = std::min(v.find(',', at), v.size());
               const std::string name = v.substr(at, comma - at);
               if (name.empty())
                 throw engine::make_error("empty codec name in --menu", "strata-tune");
               opt.menu.push_back(name);
               at = comma + 1;
             }
           });
    f.text({"--validate-codec"}, "NAME", "codec of the single-layer runs (default turbo3)",
           [&](std::string v) { opt.validate_codec = std::move(v); });
    f.text({"--choose"}, "auto:...",
           "print the policy --kv-policy auto:bits=X / auto:kld=Y would pick at -c (repeatable)",
           [&](std::string v) { choose.push_back(std::move(v)); });
    f.text({"-o", "--output"}, "FORMAT", "table or json (default table)", [&](std::string v) {
      if (v != "table" && v != "json")
        throw engine::make_error("bad -o '" + v + "' (table or json)", "strata-tune");
      output = std::move(v);
    });
    std::string load_path;
    f.text({"--load"}, "FILE",
           "print a saved result (-o json output, or a --kv-policy auto cache file) instead of "
           "measuring",
           [&](std::string v) { load_path = std::move(v); });
    f.on({"--progress"}, "a line per window on stderr", [&] { opt.progress = true; });
    cli::activation_flags(f, opt.fwd);
    if (!f.parse(argc, argv)) return 0;
    std::vector<engine::choice_target> targets;
    for (const auto& c : choose) {
      const auto t = engine::parse_auto_policy(c);
      if (!t) f.fail("--choose '" + c + "' is not an auto policy (auto, auto:bits=X, auto:kld=Y)");
      targets.push_back(*t);
    }
    auto lm = cli::load(model_path, true);
    engine::thread_pool pool(threads);
    const std::string text = file.empty() ? engine::calibration_text() : cli::read_file(file);
    const std::vector<int32_t> tokens = lm.tok->encode(text, true, false);
    const double t0 = cli::now_s();
    engine::tune_result r;
    if (!load_path.empty()) {
      r = engine::tune_from_json(cli::read_file(load_path));
      opt.n_ctx = r.n_ctx;
    } else {
      r = engine::run_tune(*lm.net, tokens, lm.tok->add_bos() ? lm.tok->bos() : -1, pool, opt);
    }
    const double seconds = load_path.empty() ? cli::now_s() - t0 : 0.0;
    if (output == "json") {
      std::printf("%s\n", engine::to_json(r).c_str());
    } else {
      std::printf("model: %s, %zu calibration tokens (%s), %d windows of %d, threads %d\n",
                  model_path.c_str(), tokens.size(), file.empty() ? "shipped text" : file.c_str(),
                  r.n_chunks, r.n_ctx, pool.size());
      std::printf("codec menu: ");
      for (const auto& c : r.menu) std::printf("%s ", c.c_str());
      std::printf("\n\n%s\n", engine::tune_table(r).c_str());
      std::printf("time: %.1f s (probe pass %.1f s, calibration run %.1f s, checks %.1f s)\n",
                  seconds, r.seconds_probe, r.seconds_calib, r.seconds_checks);
    }
    for (size_t i = 0; i < targets.size(); ++i) {
      const engine::policy_choice c =
          engine::choose_policy(r, lm.net->layers(), opt.n_ctx, opt.fwd.n_batch, targets[i]);
      std::fprintf(output == "json" ? stderr : stdout,
                   "%s: %s (%.3f bits/value at %d tokens, predicted KLD %.5f)\n", choose[i].c_str(),
                   c.policy.c_str(), c.bits, opt.n_ctx, c.predicted_kld);
    }
    return 0;
  });
}
