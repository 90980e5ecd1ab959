// engine::perplexity -- perplexity the way llama-perplexity computes it, and KL divergence
// against saved base logits.
//
// The text is tokenized once (BOS first when the model adds one) and cut into windows of n_ctx
// tokens; each window starts a fresh cache, its first token is replaced by BOS when the model
// adds one, and only the second half of each window is scored (tokens n_ctx/2+1 .. n_ctx-1 are
// predicted from at least n_ctx/2 tokens of context). PPL = exp(mean NLL); the uncertainty is
// the standard error of the mean NLL times PPL, as llama-perplexity prints it.
#pragma once

#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "kv/kv.hpp"
#include "model/model.hpp"

namespace engine {

class thread_pool;

struct perplexity_options {
  int n_ctx = 512;
  int n_chunks = -1;     // < 0: every full window of the text
  bool add_bos = false;  // the model's tokenizer adds BOS
  int32_t bos = -1;
  forward_options fwd;
  std::string kld_base_out;  // save the log-probs of every scored token here
  std::string kld_base_in;   // compare with the log-probs saved here (KL divergence)
  bool progress = false;     // a progress line with ETA on stderr
  std::FILE* out = stdout;   // per-chunk lines go here
};

struct perplexity_result {
  double ppl = 0, ppl_err = 0;
  int n_chunks = 0;
  int64_t n_scored = 0;
  std::vector<double> chunk_ppl;  // running PPL after each chunk (llama-perplexity's [i]x)
  // With kld_base_in:
  bool has_kld = false;
  double kld_mean = 0, kld_err = 0;  // mean KL(base || this run) per token, its std. error
  double top1 = 0, top1_err = 0;     // fraction of tokens whose argmax agrees with the base
  double base_ppl = 0;               // PPL of the base run (from its saved log-probs)
  double seconds = 0;
};

// tokens: the whole text, tokenized (with BOS first when the model adds one).
// make_cache: a fresh KV cache of n_ctx positions (called once; cleared between windows).
perplexity_result run_perplexity(model& m, const std::vector<int32_t>& tokens,
                                 const std::function<std::unique_ptr<kv_store>(int)>& make_cache,
                                 thread_pool& pool, const perplexity_options& opt);

// log-softmax of one row, in double accumulation.
void log_softmax(const float* logits, int n, float* out);

}  // namespace engine
