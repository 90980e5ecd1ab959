// engine::model -- the transformer forward pass of a GGUF model (llama, qwen2, qwen3, gemma3).
//
// Shapes (n = tokens in the batch):
//   x      [n][n_embd]            residual stream
//   q      [n][n_head][head_k]    queries, k [n][n_head_kv][head_k], v [n][n_head_kv][head_v]
//   att    [n][n_head][head_v]    attention output before attn_output
//   gate/up[n][n_ff]              feed-forward hidden
//   logits [n_logits][n_vocab]
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <strata/layer_map.hpp>

#include "io/gguf.hpp"
#include "model/config.hpp"
#include "model/profile.hpp"

namespace engine {

class kv_store;
class thread_pool;

// One transformer block's weights. Matrices point into the mapped file (ne[0] = inputs);
// the small vectors (norms, biases) are dequantized to f32 at load.
struct layer_weights {
  const tensor* attn_q = nullptr;       // [n_embd] -> [n_head * head_k]
  const tensor* attn_k = nullptr;       // [n_embd] -> [n_head_kv * head_k]
  const tensor* attn_v = nullptr;       // [n_embd] -> [n_head_kv * head_v]
  const tensor* attn_output = nullptr;  // [n_head * head_v] -> [n_embd]
  const tensor* ffn_gate = nullptr;     // [n_embd] -> [n_ff]
  const tensor* ffn_up = nullptr;       // [n_embd] -> [n_ff]
  const tensor* ffn_down = nullptr;     // [n_ff] -> [n_embd]
  std::vector<float> attn_norm;         // [n_embd]
  std::vector<float> ffn_norm;          // [n_embd]
  std::vector<float> q_norm, k_norm;    // [head_k] (qwen3, gemma3) or empty
  std::vector<float> post_attn_norm;    // [n_embd] (gemma3) or empty
  std::vector<float> post_ffn_norm;     // [n_embd] (gemma3) or empty
  std::vector<float> bq, bk, bv;        // biases (qwen2) or empty
};

// One sequence's next token for model::decode: `token` at position `pos` of its own cache `kv`
// (pos <= kv->size(), as for forward); `logits` receives [n_vocab] floats (nullptr: not wanted).
struct decode_item {
  int32_t token;
  int pos;
  kv_store* kv;
  float* logits;  // [n_vocab]
};

struct forward_options {
  bool exact = false;       // f32 activations in every matmul (the reference mode)
  bool act_q8 = false;      // one int8 plane per 32 activations (llama.cpp's Q8) instead of two
  int n_batch = 512;        // tokens per internal batch
  profile* prof = nullptr;  // when set, forward passes add their time to it (model/profile.hpp)
};

class model {
 public:
  // Loads the weights of an open file (kept alive by the model).
  explicit model(std::shared_ptr<const gguf> file);

  const model_config& config() const { return config_; }
  const gguf& file() const { return *file_; }
  // The layer map this model describes to the KV cache (sliding-window layers for gemma3).
  strata::layer_map layers() const;
  // Parameters in the weight tensors and their bytes in the file.
  int64_t n_params() const { return n_params_; }
  size_t weight_bytes() const { return weight_bytes_; }
  // The weight bytes one decode step reads: all of them, less the token embedding when the model
  // has its own output matrix (a step then reads one embedding row).
  size_t step_weight_bytes() const;
  // Llama 3 RoPE frequency factors (n_rot / 2 divisors), or empty.
  const std::vector<float>& rope_freqs() const { return rope_freqs_; }

  // Runs `tokens` at positions pos0.. through the model, storing their K/V in `kv`
  // (pos0 <= kv.size(); positions past pos0 are overwritten). When `logits` is given it receives
  // the logits of the last `n_logits` tokens, [n_logits][n_vocab]. Throws engine::error on a
  // context overflow, a bad token id or a non-finite activation.
  void forward(std::span<const int32_t> tokens, int pos0, kv_store& kv, thread_pool& pool,
               float* logits, int n_logits, const forward_options& opt = {});

  // One step of several independent sequences: the items' tokens go through every weight
  // matmul as one batch (the weights are read once for all of them), each item's attention
  // reads and appends its own cache. The matmuls are batch-invariant, so each item's logits are
  // bit-identical to forward() of that token alone. Every item needs its own cache. Throws
  // engine::error as forward does, before any cache changes when an item is bad.
  void decode(std::span<const decode_item> items, thread_pool& pool,
              const forward_options& opt = {});

 private:
  // Tokens [first, first + n) of a batch, at positions pos0.. of one cache.
  struct segment {
    kv_store* kv;
    int pos0;
    int first;
    int n;
  };
  // Runs `n` tokens (segments cover them in order) through the model; logits of tokens
  // first_logit..n-1 go to `logits` as [n - first_logit][n_vocab] (none when nullptr).
  // invariant: every matmul batch-invariant (decode), else prefill may sum in a faster order.
  void run_batch(const int32_t* tokens, int n, std::span<const segment> segs, thread_pool& pool,
                 float* logits, int first_logit, const forward_options& opt, bool invariant);

  std::shared_ptr<const gguf> file_;
  model_config config_;
  const tensor* tok_embd_ = nullptr;  // [n_embd] x n_vocab rows
  const tensor* output_ = nullptr;    // [n_embd] -> [n_vocab] (tok_embd_ when tied)
  std::vector<float> output_norm_;
  std::vector<float> rope_freqs_;  // Llama 3 frequency factors or empty
  std::vector<layer_weights> layers_;
  int64_t n_params_ = 0;
  size_t weight_bytes_ = 0;

  // Scratch for one batch.
  std::vector<float> x_, xb_, q_, k_, v_, att_, o_, gate_, up_;
  std::vector<float> logits_;  // decode: [n_items][n_vocab]
};

}  // namespace engine
