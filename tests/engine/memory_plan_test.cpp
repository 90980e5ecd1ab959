// engine::memory_plan: the KV bytes it plans equal what the cache then holds (bytes()), the
// available memory is measured (or set by STRATA_MEMORY_AVAILABLE), and a plan that does not
// fit is an error listing every item with a hint. The tools refuse such a run before they
// allocate (tests/engine/tools_test.cpp).
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "../support/error_text.hpp"
#include "error.hpp"
#include "kv/kv_select.hpp"
#include "run/cli.hpp"
#include "run/memory_plan.hpp"
#include "run/policy_choice.hpp"

namespace {

void check_kv_bytes(const std::string& path, const std::vector<std::string>& policies) {
  if (!std::filesystem::exists(path)) {
    MESSAGE("skipped: " << path << " missing");
    return;
  }
  auto lm = engine::cli::load(path, false);
  for (const std::string& p : policies) {
    for (int n_ctx : {1, 77, 512}) {
      engine::kv_options o;
      o.policy = p;
      CAPTURE(p);
      CAPTURE(n_ctx);
      CHECK(engine::kv_bytes(*lm.net, n_ctx, o) == engine::make_kv(*lm.net, n_ctx, o)->bytes());
    }
  }
  engine::kv_options ref;
  ref.reference = true;
  CHECK(engine::kv_bytes(*lm.net, 300, ref) == engine::make_kv(*lm.net, 300, ref)->bytes());
}

}  // namespace

TEST_CASE("kv_bytes is the cache's own bytes(), without allocating it") {
  // stories260K: head dim 8, so only the element codecs fit.
  check_kv_bytes(std::string(STRATA_DATA_DIR) + "/stories260K.gguf",
                 {"-ctk f16 -ctv f16", "-ctk f32 -ctv bf16", "v:first2=f32;k=f16;v=bf16"});
  // SmolLM2 (head dim 64, 30 layers): every codec, presets, a recent window.
  const char* cache = std::getenv("STRATA_CACHE_DIR");
  const std::string dir = cache && *cache ? cache : std::string(STRATA_CACHE_DIR);
  check_kv_bytes(
      dir + "/models/SmolLM2-135M-Instruct.Q4_1.gguf",
      {"-ctk q8_0 -ctv turbo3", "la7", "-ctk turbo4 -ctv vq2", "-ctk q4_0 -ctv turbo2 recent=64"});
}

TEST_CASE("bits_per_value is the cache's bytes over f16's, as the policy chooser counts them") {
  // Gemma 3 at 2,048 tokens: its sliding-window layers hold window + max_batch - 1 tokens, so a
  // policy with other codecs on them must be weighted by what each layer stores (the chooser's
  // policy_bits); averaging the layers' bits per token read 4.52 where the bytes give 4.49.
  const char* cache = std::getenv("STRATA_CACHE_DIR");
  const std::string dir = cache && *cache ? cache : std::string(STRATA_CACHE_DIR);
  struct point {
    std::string model, policy;
    int n_ctx;
  };
  const std::string smol = dir + "/models/SmolLM2-135M-Instruct.Q4_1.gguf",
                    gemma = dir + "/models/gemma-3-270m-q4_k_m.gguf";
  for (const point& pt :
       {point{smol, "-ctk q8_0 -ctv turbo3", 77}, point{smol, "k=turbo5;k:0-3=q8_0r;v=turbo4", 300},
        point{gemma, "k=turbo5;k:0,3,5-6,17=turbo4;v=turbo4;v:0=q4_0r;k-balance", 2048},
        point{gemma, "k=turbo6;v=turbo6;v:5,10-11,17=turbo5", 4096}}) {
    if (!std::filesystem::exists(pt.model)) {
      MESSAGE("skipped: " << pt.model << " missing");
      continue;
    }
    auto lm = engine::cli::load(pt.model, false);
    engine::kv_options o;
    o.policy = pt.policy;
    CAPTURE(pt.policy);
    CAPTURE(pt.n_ctx);
    const auto kv = engine::make_kv(*lm.net, pt.n_ctx, o);
    const double want = engine::policy_bits(lm.net->layers(), pt.policy, pt.n_ctx, o.max_batch);
    CHECK(kv->bits_per_value() == doctest::Approx(want).epsilon(1e-9));
    // and it is the bytes the cache allocated, over f16's (no side data without k-balance)
    if (pt.policy.find("k-balance") == std::string::npos)
      CHECK(kv->bits_per_value() ==
            doctest::Approx(double(kv->bytes()) * 16.0 / double(kv->f16_bytes())).epsilon(1e-9));
  }
}

TEST_CASE("available memory: measured, or set by STRATA_MEMORY_AVAILABLE") {
  const engine::memory_available m = engine::available_memory();
  CHECK(m.bytes > (uint64_t(1) << 20));
  CHECK(!m.source.empty());
  setenv("STRATA_MEMORY_AVAILABLE", "12345", 1);
  const engine::memory_available e = engine::available_memory();
  CHECK(e.bytes == 12345);
  CHECK(e.source == "STRATA_MEMORY_AVAILABLE");
  setenv("STRATA_MEMORY_AVAILABLE", "lots", 1);
  CHECK(strata_test::error_text([] { engine::available_memory(); }).find("not a byte count") !=
        std::string::npos);
  unsetenv("STRATA_MEMORY_AVAILABLE");
}

TEST_CASE("a plan that does not fit names every item, the total, what is available and a hint") {
  engine::memory_plan p;
  p.add("KV cache (q8_0/turbo3, 1048576 tokens)", uint64_t(5) << 30);
  p.add("logits (1048576 x 262144 f32)", uint64_t(1) << 40);
  CHECK(p.total() == (uint64_t(5) << 30) + (uint64_t(1) << 40));
  const engine::memory_available small{uint64_t(8) << 30, "test"};
  const std::string msg =
      strata_test::error_text([&] { p.require_fits("strata-perplexity", small); });
  CHECK(msg.rfind("error: this run needs 1.00 TiB", 0) == 0);
  CHECK(msg.find("but 8.00 GiB are available (test)") != std::string::npos);
  CHECK(msg.find("KV cache (q8_0/turbo3, 1048576 tokens): 5.00 GiB") != std::string::npos);
  CHECK(msg.find("hint: ") != std::string::npos);
  CHECK(msg.find("(strata-perplexity)") != std::string::npos);
  engine::memory_plan fits;
  fits.add("KV", 1000);
  CHECK_NOTHROW(fits.require_fits("x", small));
}
