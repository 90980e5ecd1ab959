// Context shift without re-prefill: kv_store::erase drops a middle range of positions and
// re-RoPEs the later keys in place (strata's runtime_kv_cache::erase). Checked on the real
// models against a fresh prefill of the kept tokens: with f16 the two differ only by what the
// shift itself means (the kept K/V were computed with the dropped tokens in view), and a
// compressed cache's error against f16 after the shift stays within 3x its error without one
// (measured up to 1.9x); a session that shifts runs no token twice.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "kv/kv_select.hpp"
#include "model/thread_pool.hpp"
#include "run/cli.hpp"
#include "run/generate.hpp"
#include "run/sampler.hpp"

namespace {

// KL(p || q) of the softmaxes of two logit rows.
double kld(const float* p, const float* q, int n) {
  double mp = p[0], mq = q[0];
  for (int i = 1; i < n; ++i) mp = std::max(mp, double(p[i])), mq = std::max(mq, double(q[i]));
  double sp = 0, sq = 0;
  for (int i = 0; i < n; ++i) sp += std::exp(p[i] - mp), sq += std::exp(q[i] - mq);
  double d = 0;
  for (int i = 0; i < n; ++i) {
    const double lp = p[i] - mp - std::log(sp), lq = q[i] - mq - std::log(sq);
    d += std::exp(lp) * (lp - lq);
  }
  return d;
}

std::vector<int32_t> text_tokens(const engine::tokenizer& tok, int n) {
  std::string text = engine::cli::read_file(std::string(STRATA_DATA_DIR) + "/wiki.test.raw");
  text.resize(8192);  // a few thousand tokens at most
  auto t = tok.encode(text, true, false);
  REQUIRE(int(t.size()) >= n);
  t.resize(size_t(n));
  return t;
}

std::vector<std::string> models() {
  std::vector<std::string> m{engine::cli::default_model_path()};
  const std::string gemma = std::string(STRATA_CACHE_DIR) + "/models/gemma-3-270m-q4_k_m.gguf";
  if (std::filesystem::exists(gemma))
    m.push_back(gemma);
  else
    MESSAGE("Gemma 3 part skipped: " << gemma << " not found");
  return m;
}

}  // namespace

TEST_CASE("context shift: erase + re-RoPE against a fresh prefill of the kept tokens") {
  constexpr int n = 200, keep = 8, drop = 64, extra = 40, cap = 256;
  engine::thread_pool pool(2);
  for (const std::string& path : models()) {
    const auto lm = engine::cli::load(path, true);
    const int n_vocab = lm.net->config().n_vocab;
    const auto tokens = text_tokens(*lm.tok, n + extra);
    std::vector<int32_t> kept(tokens.begin(), tokens.begin() + keep);
    kept.insert(kept.end(), tokens.begin() + keep + drop, tokens.begin() + n);
    // The shift itself changes the answer a little (the kept tokens' K/V were computed with the
    // dropped ones in view): measured on f16, it bounds the check of the re-RoPE.
    const auto run = [&](const std::string& policy, bool shift, std::vector<float>& logits) {
      engine::kv_options o;
      o.policy = policy;
      auto kv = engine::make_kv(*lm.net, cap, o);
      if (shift) {
        lm.net->forward({tokens.data(), size_t(n)}, 0, *kv, pool, nullptr, 0);
        REQUIRE(kv->erase(keep, keep + drop));
        CHECK(kv->size() == n - drop);
      } else {
        lm.net->forward(kept, 0, *kv, pool, nullptr, 0);
      }
      logits.resize(size_t(extra) * size_t(n_vocab));
      for (int i = 0; i < extra; ++i) {
        const int32_t t = tokens[size_t(n + i)];
        lm.net->forward({&t, 1}, n - drop + i, *kv, pool, logits.data() + size_t(i) * n_vocab, 1);
      }
    };
    const auto mean_kld = [&](const std::vector<float>& p, const std::vector<float>& q) {
      double d = 0;
      for (int i = 0; i < extra; ++i)
        d += kld(p.data() + size_t(i) * n_vocab, q.data() + size_t(i) * n_vocab, n_vocab) / extra;
      return d;
    };
    std::vector<float> f16_fresh, f16_shifted, fresh, shifted;
    run("-ctk f16 -ctv f16", false, f16_fresh);
    run("-ctk f16 -ctv f16", true, f16_shifted);
    const double shift_itself = mean_kld(f16_fresh, f16_shifted);
    MESSAGE(path << ": KLD of the shift itself (f16, fresh vs shifted) " << shift_itself);
    CHECK(shift_itself < 0.25);  // measured 0.09 and 0.011; a wrong re-RoPE (delta of the wrong
                                 // sign) gives 1.3 and 3.0, V rows left unmoved 5.5 and 2.5
    for (const std::string policy : {"-ctk q8_0 -ctv turbo3", "k=turbo4;v=turbo3;recent=16"}) {
      CAPTURE(path);
      CAPTURE(policy);
      run(policy, false, fresh);
      run(policy, true, shifted);
      const double codec = mean_kld(f16_fresh, fresh),
                   codec_shifted = mean_kld(f16_shifted, shifted);
      MESSAGE(path << " " << policy << ": KLD vs f16, fresh " << codec << ", shifted "
                   << codec_shifted);
      // The moved keys go through one more quantization round trip (decode, RoPE, encode), and
      // the shifted state is a different one (the model reads the junction less surely): the
      // ratio measured 0.9-1.9 (Gemma 3, turbo4/turbo3), V rows left unmoved give 2.3-11.
      CHECK(codec_shifted <= 3.0 * codec);
    }
  }
}

TEST_CASE("context shift: a session that shifts recomputes no token") {
  const auto lm = engine::cli::load(engine::cli::default_model_path(), true);
  engine::thread_pool pool(2);
  engine::kv_options o;
  o.policy = "-ctk q8_0 -ctv turbo3";
  auto kv = engine::make_kv(*lm.net, 128, o);
  engine::session s(*lm.net, *lm.tok, *kv, pool, engine::forward_options{});
  s.set_context_shift(true, 4);
  engine::generation_stats st;
  s.prefill(text_tokens(*lm.tok, 100), st);
  engine::sampler smp(engine::sampler_params{.temp = 0.0f});
  const auto out = s.generate(
      smp, 60, [](const std::string&) { return true; }, st);
  CHECK(st.n_prompt == 100);
  CHECK(st.n_shifted > 0);
  CHECK(st.n_recomputed == 0);
  CHECK(int(s.tokens().size()) == kv->size());
  CHECK(kv->size() <= 128);
  CHECK(int(s.tokens().size()) == 100 + int(out.size()) - st.n_shifted);
}
