// engine::model_config -- the hyper-parameters of a model, read from its GGUF metadata.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace engine {

class gguf;

enum class arch { llama, qwen2, qwen3, gemma3 };

// How RoPE pairs the dimensions of a head: llama GGUFs store Q/K permuted so that adjacent
// pairs (2i, 2i+1) rotate together ("normal"); qwen2/qwen3/gemma3 rotate (i, i + n_rot/2)
// ("neox"), as llama.cpp does per architecture.
enum class rope_style { normal, neox };

enum class ffn_activation { silu, gelu_tanh };

// Per transformer layer: attention kind and RoPE parameters (gemma3's sliding-window layers use
// their own RoPE base).
struct layer_config {
  int window = 0;  // 0: global attention; else the query sees the last `window` tokens
  float rope_base = 10000.0f;
  float rope_scale = 1.0f;  // position multiplier (1 / linear scaling factor)
};

struct model_config {
  arch architecture = arch::llama;
  std::string arch_name;  // general.architecture
  int n_layer = 0;
  int n_embd = 0;     // residual stream width
  int n_ff = 0;       // feed-forward hidden width
  int n_head = 0;     // query heads
  int n_head_kv = 0;  // key/value heads (GQA: n_head is a multiple)
  int head_k = 0;     // key (and query) values per head
  int head_v = 0;     // value values per head
  int n_rot = 0;      // leading dims of each head that RoPE rotates
  int n_vocab = 0;
  int n_ctx_train = 0;
  float rms_eps = 1e-5f;
  rope_style rope = rope_style::normal;
  ffn_activation act = ffn_activation::silu;
  float attn_scale = 1.0f;     // applied to q.k
  float embd_scale = 1.0f;     // token embeddings are multiplied by this (gemma3: sqrt(n_embd))
  float logit_softcap = 0.0f;  // > 0: logits = cap * tanh(logits / cap)
  int sliding_window = 0;      // gemma3: window of the sliding-window layers (0 = none)
  std::vector<layer_config> layers;

  int q_dim() const { return n_head * head_k; }
  int k_dim() const { return n_head_kv * head_k; }
  int v_dim() const { return n_head_kv * head_v; }
  int n_swa_layers() const;

  // Reads <arch>.* keys; throws engine::error for an unknown architecture (naming it), a
  // missing key, or inconsistent values.
  static model_config from_gguf(const gguf& file);
};

std::string to_string(arch a);

}  // namespace engine
