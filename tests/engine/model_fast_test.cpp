// Fast mode (quantized activations in the matmuls of quantized weights: two int8 planes by
// default, one with --q8-act) against the exact mode (f32 activations): top-1 agreement and
// perplexity, through the perplexity tool's code (which also exercises its KL-divergence files).
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include "kv/kv.hpp"
#include "model/model.hpp"
#include "model/thread_pool.hpp"
#include "run/cli.hpp"
#include "run/perplexity.hpp"
#include "text/tokenizer.hpp"

#ifndef STRATA_TEST_TMP
#define STRATA_TEST_TMP "/tmp"
#endif

namespace {

struct comparison {
  double ppl_exact, ppl_fast, top1, kld;  // default activations (two planes)
  double ppl_q8, top1_q8, kld_q8;         // one int8 plane (llama.cpp's Q8)
};

comparison compare(const std::string& model_path, int n_ctx, int n_chunks, size_t text_bytes) {
  const std::string text_path = std::string(STRATA_DATA_DIR) + "/wiki.test.raw";
  auto lm = engine::cli::load(model_path, true);
  const std::string text = engine::cli::read_file(text_path).substr(0, text_bytes);
  const auto tokens = lm.tok->encode(text, true, false);
  engine::thread_pool pool(0);
  const auto& cfg = lm.net->config();
  auto make = [&](int n) { return std::make_unique<engine::kv_f32>(cfg, n); };
  const std::string base =
      (std::filesystem::path(STRATA_TEST_TMP) / "model_fast_test.kld").string();
  engine::perplexity_options opt;
  opt.n_ctx = n_ctx;
  opt.n_chunks = n_chunks;
  opt.add_bos = lm.tok->add_bos();
  opt.bos = lm.tok->bos();
  opt.out = nullptr;
  opt.fwd.exact = true;
  opt.kld_base_out = base;
  const auto exact = engine::run_perplexity(*lm.net, tokens, make, pool, opt);
  opt.fwd.exact = false;
  opt.kld_base_out.clear();
  opt.kld_base_in = base;
  const auto fast = engine::run_perplexity(*lm.net, tokens, make, pool, opt);
  opt.fwd.act_q8 = true;
  const auto q8 = engine::run_perplexity(*lm.net, tokens, make, pool, opt);
  std::filesystem::remove(base);
  REQUIRE(fast.has_kld);
  REQUIRE(q8.has_kld);
  CHECK(fast.base_ppl == doctest::Approx(exact.ppl).epsilon(1e-3));  // f16 log-probs saved
  return {exact.ppl, fast.ppl, fast.top1, fast.kld_mean, q8.ppl, q8.top1, q8.kld_mean};
}

}  // namespace

TEST_CASE("stories260K: fast mode agrees with exact mode (top-1 >= 99%, PPL within 0.5%)") {
  const std::string path = std::string(STRATA_DATA_DIR) + "/stories260K.gguf";
  if (!std::filesystem::exists(path) ||
      !std::filesystem::exists(std::string(STRATA_DATA_DIR) + "/wiki.test.raw")) {
    MESSAGE("skipped: stories260K.gguf or wiki.test.raw not found in " STRATA_DATA_DIR);
    return;
  }
  const comparison c = compare(path, 128, 16, 40000);
  MESSAGE("stories260K: PPL exact " << c.ppl_exact << ", fast " << c.ppl_fast << ", top-1 "
                                    << c.top1 << ", KLD " << c.kld);
  CHECK(c.top1 >= 0.99);
  CHECK(std::fabs(c.ppl_fast / c.ppl_exact - 1.0) <= 0.005);
}

TEST_CASE("SmolLM2-135M Q4_1: fast mode agrees with exact mode (top-1 >= 99%, PPL within 0.5%)") {
  const std::string path =
      std::string(STRATA_CACHE_DIR) + "/models/SmolLM2-135M-Instruct.Q4_1.gguf";
  if (!std::filesystem::exists(path) ||
      !std::filesystem::exists(std::string(STRATA_DATA_DIR) + "/wiki.test.raw")) {
    MESSAGE("skipped: " << path << " or wiki.test.raw not found");
    return;
  }
  // One window of 256 tokens (127 scored): the exact mode is slow (f32 math on every weight).
  const comparison c = compare(path, 256, 1, 20000);
  MESSAGE("SmolLM2: PPL exact " << c.ppl_exact << ", fast " << c.ppl_fast << ", top-1 " << c.top1
                                << ", KLD " << c.kld << "; one int8 plane: PPL " << c.ppl_q8
                                << ", top-1 " << c.top1_q8 << ", KLD " << c.kld_q8);
  CHECK(c.top1 >= 0.99);
  CHECK(std::fabs(c.ppl_fast / c.ppl_exact - 1.0) <= 0.005);
  // One int8 plane (llama.cpp's Q8 activations) costs this model visibly more (96.9 % top-1
  // and KLD 0.003 over 1,020 positions in docs/results.md): the second plane must cut the KLD
  // at least tenfold.
  CHECK(c.top1_q8 >= 0.90);
  CHECK(std::fabs(c.ppl_q8 / c.ppl_exact - 1.0) <= 0.02);
  CHECK(c.kld * 10 <= c.kld_q8);
}
