// strata-plan: what KV caches of several policies take at several contexts, and the largest
// context that fits a memory budget, for a model file or a model shape given by flags
// (strata::plan, strata/plan.hpp). Nothing is allocated.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include <strata/plan.hpp>
#include <strata/policy/parse.hpp>

#include "kv/kv_select.hpp"
#include "model/model.hpp"
#include "model/thread_pool.hpp"
#include "run/cli.hpp"
#include "run/memory_plan.hpp"
#include "run/process_plan.hpp"

namespace {

const char* kEpilog =
    R"(Without -m and without --layers the default model is planned. With a shape (--layers,
--kv-heads, --head-dim; --swa-pattern/--swa-window for hybrid sliding-window models) no file is
read and --weights says what the weights take. "fits" is the largest context per sequence whose
KV rows, side data and attention scratch fit in --mem after the weights (and, with -m, the
rest of the process as strata-chat plans it: engine::process_plan, --mem-plan in chat).
)";

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0, kMiB = 1024.0 * 1024.0;

struct shape_flags {
  int layers = 0, kv_heads = 8, head_dim = 128, heads = 0, swa_pattern = 0, swa_window = 0;
};

strata::layer_map map_of(const shape_flags& s) {
  std::vector<strata::layer_info> v(std::size_t(s.layers));
  for (int i = 0; i < s.layers; ++i) {
    strata::layer_info& l = v[std::size_t(i)];
    l.n_kv_heads = std::uint32_t(s.kv_heads);
    l.head_dim = std::uint32_t(s.head_dim);
    l.n_heads = std::uint32_t(s.heads > 0 ? s.heads : 4 * s.kv_heads);
    if (s.swa_pattern > 0 && (i + 1) % s.swa_pattern != 0) {
      l.kind = strata::attention_kind::sliding;
      l.window = std::uint32_t(s.swa_window);
    }
  }
  return strata::layer_map(std::move(v));
}

// "75,365"
std::string grouped(std::uint64_t v) {
  const std::string digits = std::to_string(v);
  std::string out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

// "320 MiB", "1,280 MiB", "4.6 MiB"
std::string mib(std::size_t bytes) {
  const double m = double(bytes) / kMiB;
  if (m >= 100 || m == double(std::uint64_t(m))) return grouped(std::uint64_t(m + 0.5)) + " MiB";
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.1f MiB", m);
  return buf;
}

std::string ctx_label(std::int64_t n) {
  return n % 1024 == 0 ? std::to_string(n / 1024) + "K" : std::to_string(n);
}

}  // namespace

int main(int argc, char** argv) {
  return engine::cli::run_tool([&] {
    namespace cli = engine::cli;
    std::string model_path;
    shape_flags shape;
    double mem_gib = 0, weights_gib = 0;
    int n_seq = 1, threads = 1;
    std::vector<std::int64_t> contexts = {2048, 8192, 32768, 65536, 131072};
    std::vector<std::string> policies;
    engine::forward_options fwd;
    cli::flags f("strata-plan", "usage: strata-plan [-m FILE | --layers N ...] [options]", kEpilog);
    cli::model_flag(f, model_path);
    f.integer({"--layers"}, "N", "a model shape instead of a file: layers, in {range}", 1, 4096,
              [&](std::int64_t v) { shape.layers = int(v); });
    f.integer({"--kv-heads"}, "N", "KV heads per layer, in {range} (default 8)", 1, 1024,
              [&](std::int64_t v) { shape.kv_heads = int(v); });
    f.integer({"--head-dim"}, "N", "values per head vector, in {range} (default 128)", 1, 4096,
              [&](std::int64_t v) { shape.head_dim = int(v); });
    f.integer({"--heads"}, "N", "query heads, in {range} (default 4 x KV heads)", 1, 8192,
              [&](std::int64_t v) { shape.heads = int(v); });
    f.integer({"--swa-pattern"}, "P",
              "every P-th layer global, the others sliding, in {range} (default: all global)", 1,
              4096, [&](std::int64_t v) { shape.swa_pattern = int(v); });
    f.integer({"--swa-window"}, "W", "sliding window in tokens, in {range}", 1, 1 << 24,
              [&](std::int64_t v) { shape.swa_window = int(v); });
    f.real({"--weights"}, "GiB", "with a shape: memory of the weights, in {range} (default 0)", 0,
           1 << 20, [&](double v) { weights_gib = v; });
    cli::mem_flag(f, mem_gib,
                  "memory budget of the whole process in GiB, in [0.001, 1048576] (default: none)");
    f.int_list({"-c", "--ctx-size"}, "LIST",
               "contexts in tokens, in {range} (default 2048,8192,32768,65536,131072)", 1, 1 << 26,
               [&](std::vector<std::int64_t> v) { contexts = std::move(v); });
    f.integer({"-np", "--parallel"}, "N", "sequences, one cache each, in {range} (default 1)", 1,
              4096, [&](std::int64_t v) { n_seq = int(v); });
    f.integer({"-t", "--threads"}, "N",
              "threads that attend (attention scratch each), in {range} (default 1)", 1, 1024,
              [&](std::int64_t v) { threads = int(v); });
    cli::batch_flag(f, fwd);
    cli::kv_policies_flag(f, policies);
    if (!f.parse(argc, argv)) return 0;
    if (shape.layers > 0 && !model_path.empty()) f.fail("-m and --layers exclude each other");
    if (shape.swa_pattern > 0 && shape.swa_window == 0) f.fail("--swa-pattern needs --swa-window");
    if (shape.heads > 0 && shape.heads % shape.kv_heads != 0)
      f.fail("--heads " + std::to_string(shape.heads) + " is not a multiple of --kv-heads " +
             std::to_string(shape.kv_heads));
    if (policies.empty())
      policies = {"-ctk f16 -ctv f16",
                  "-ctk q8_0 -ctv q8_0",
                  "-ctk q8_0 -ctv turbo4",
                  "-ctk q8_0 -ctv turbo3",
                  "la7",
                  "-ctk turbo4 -ctv turbo4",
                  "-ctk turbo3 -ctv turbo3"};

    strata::layer_map map;
    std::size_t fixed = 0;  // bytes beside the caches: weights, activations, logits
    std::string what;
    const bool any_auto = std::any_of(policies.begin(), policies.end(), cli::is_auto_policy);
    if (shape.layers > 0) {
      if (any_auto) f.fail("--kv-policy auto needs a model file (-m), not a shape");
      map = map_of(shape);
      fixed = std::size_t(weights_gib * kGiB);
      what = std::to_string(shape.layers) + " layers x " + std::to_string(shape.kv_heads) +
             " KV heads x head dim " + std::to_string(shape.head_dim) +
             (shape.swa_pattern > 0
                  ? ", sliding window " + std::to_string(shape.swa_window) + " except every " +
                        std::to_string(shape.swa_pattern) + "th layer"
                  : "");
    } else {
      if (model_path.empty()) model_path = cli::default_model_path();
      const auto lm = cli::load(model_path, any_auto);
      const engine::model_config& c = lm.net->config();
      if (any_auto) {  // chosen at the first context of -c
        engine::thread_pool pool(0);
        for (std::string& p : policies) {
          engine::kv_options k;
          k.policy = p;
          k.max_batch = fwd.n_batch;
          cli::resolve_auto_policy(k, lm, model_path, int(contexts.front()), pool);
          p = k.policy;
        }
      }
      map = lm.net->layers();
      // The whole process but the caches, as strata-chat -c auto plans it (engine::process_plan:
      // measured resident set, the mapped file, activations of -b tokens, one row of logits).
      engine::kv_options k;
      k.max_batch = fwd.n_batch;
      const engine::process_shape s{
          .n_ctx = 0, .n_seq = n_seq, .n_batch = fwd.n_batch, .threads = threads};
      fixed = engine::process_plan(lm, k, s).total();
      what = model_path + " (" + c.arch_name + ", " + std::to_string(c.n_layer) +
             " layers; weights " + mib(lm.net->weight_bytes()) +
             ", the process without its caches " + mib(fixed) + ")";
    }
    std::printf("strata-plan: %s\n", what.c_str());
    if (mem_gib > 0)
      std::printf(
          "budget: %.2f GiB for the whole process; %d sequence(s), %d attending thread(s)\n",
          mem_gib, n_seq, threads);
    std::printf("\n| policy | bits/value |");
    for (std::int64_t n : contexts) std::printf(" %s |", ctx_label(n).c_str());
    if (mem_gib > 0) std::printf(" fits in %.3g GiB |", mem_gib);
    std::printf("\n|---|---:|");
    for (std::size_t i = 0; i < contexts.size() + (mem_gib > 0 ? 1 : 0); ++i) std::printf("---:|");
    std::printf("\n");
    const strata::plan_options o{.max_batch = std::size_t(fwd.n_batch),
                                 .n_seq = std::size_t(n_seq),
                                 .n_threads = std::size_t(threads)};
    for (const std::string& p : policies) {
      const strata::policy_report r = strata::report(strata::parse_policy(p), map);
      std::printf("| %s | %.2f |", p.c_str(), r.bits());
      for (std::int64_t n : contexts)
        std::printf(" %s |", mib(strata::plan(r, std::size_t(n), o).kv).c_str());
      if (mem_gib > 0) {
        const std::size_t budget = std::size_t(mem_gib * kGiB);
        const std::size_t fit =
            budget > fixed ? strata::largest_context(r, budget - fixed, o, 1u << 26) : 0;
        std::printf(" %s |", fit == 0 ? "nothing" : (grouped(fit) + " tokens").c_str());
      }
      std::printf("\n");
    }
    std::printf(
        "\nKV rows of %d sequence(s) (strata::plan; the side data and scratch are in the "
        "budget, not in the columns).\n",
        n_seq);
    return 0;
  });
}
