#include "run/needle.hpp"

#include <algorithm>
#include <cmath>
#include <random>

#include "error.hpp"
#include "model/thread_pool.hpp"
#include "run/cli.hpp"
#include "run/generate.hpp"
#include "run/memory_plan.hpp"
#include "text/chat_template.hpp"

namespace engine {

namespace {

// The filler of the pass key retrieval task (Mohtashami & Jaggi, "Landmark Attention").
constexpr const char* kFiller =
    "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again. ";
constexpr const char* kIntro =
    "There is an important piece of information hidden inside a lot of irrelevant text. Find it "
    "and memorize it. I will quiz you about it.\n";

std::string needle_text(const std::string& key) {
  return "The pass key is " + key + ". Remember it. " + key + " is the pass key. ";
}

}  // namespace

std::string needle_prompt(const model& m, const tokenizer& tok, const needle_options& opt,
                          double depth, const std::string& key, bool* templated) {
  const bool tmpl = opt.use_template && m.file().has("tokenizer.chat_template");
  if (templated) *templated = tmpl;
  const std::string question = "\nWhat is the pass key?";
  const std::string answer_prefix = " The pass key is";
  // Token budget for the filler: everything else measured once.
  const int fixed =
      int(tok.encode(std::string(kIntro) + needle_text(key) + question + answer_prefix, false,
                     false)
              .size()) +
      (tmpl ? 48 : 2) + opt.n_predict;
  const int per = int(tok.encode(kFiller, false, false).size());
  const int n_units = std::max(1, (opt.n_ctx - fixed) / std::max(1, per));
  const int at = std::clamp(int(std::lround(depth * n_units)), 0, n_units);
  std::string hay = kIntro;
  for (int i = 0; i < n_units; ++i) {
    if (i == at) hay += needle_text(key);
    hay += kFiller;
  }
  if (at == n_units) hay += needle_text(key);
  hay += question;
  if (!tmpl) return hay + answer_prefix;
  return apply_chat_template(m.file(), {{"user", hay}}, true) + "The pass key is";
}

std::vector<needle_row> run_needle(model& m, const tokenizer& tok, thread_pool& pool,
                                   const needle_options& opt) {
  std::vector<needle_row> rows;
  std::mt19937_64 rng(opt.seed);
  std::uniform_int_distribution<int> digits(10000, 99999);
  // The same keys for every cache, so policies are compared on identical prompts.
  std::vector<std::string> keys;
  for (size_t i = 0; i < opt.depths.size() * size_t(opt.trials); ++i)
    keys.push_back(std::to_string(digits(rng)));
  // The prompts, tokenized once; every cache answers the same ones.
  struct prompt {
    double depth;
    std::string key;
    std::vector<int32_t> toks;
  };
  std::vector<prompt> prompts;
  size_t longest = 0;
  {
    size_t ki = 0;
    for (double depth : opt.depths)
      for (int trial = 0; trial < opt.trials; ++trial) {
        bool templated = false;
        const std::string& key = keys[ki++];
        const std::string text = needle_prompt(m, tok, opt, depth, key, &templated);
        prompts.push_back({depth, key, tok.encode(text, true, templated)});
        longest = std::max(longest, prompts.back().toks.size());
      }
  }
  for (size_t ci = 0; ci < opt.caches.size(); ++ci) {
    // One session per cache: a prompt reuses the cached K/V of the tokens it shares with the
    // previous one (the haystack before the key; causal attention makes them identical to a
    // fresh prefill) and prefills only the rest, as a server's prompt cache does.
    const int n_cache = int(longest) + opt.n_predict + 1;
    {  // Refuse a cache that cannot fit before allocating it.
      memory_plan plan;
      plan.add("KV cache (" + opt.cache_names[ci] + ", " + std::to_string(n_cache) + " tokens)",
               kv_bytes(m, n_cache, opt.caches[ci]));
      plan.require_fits("strata-needle");
    }
    auto kv = make_kv(m, n_cache, opt.caches[ci]);
    session s(m, tok, *kv, pool, opt.fwd);
    for (const prompt& p : prompts) {
      generation_stats st;
      const double t0 = cli::now_s();
      s.prefill(p.toks, st);
      sampler greedy(sampler_params{0.0f, 0, 1.0f, 0});
      const auto out = s.generate(greedy, opt.n_predict, nullptr, st);
      needle_row r;
      r.cache = opt.cache_names[ci];
      r.depth = p.depth;
      r.n_prompt = int(p.toks.size());
      r.n_reused = st.n_reused;
      r.key = p.key;
      r.answer = tok.decode(out, false);
      r.found = r.answer.find(p.key) != std::string::npos;
      r.seconds = cli::now_s() - t0;
      rows.push_back(r);
    }
  }
  return rows;
}

}  // namespace engine
