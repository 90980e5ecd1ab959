#include "model/config.hpp"

#include <cmath>

#include "error.hpp"
#include "io/gguf.hpp"

namespace engine {

std::string to_string(arch a) {
  switch (a) {
    case arch::llama: return "llama";
    case arch::qwen2: return "qwen2";
    case arch::qwen3: return "qwen3";
    case arch::gemma3: return "gemma3";
  }
  return "unknown";
}

int model_config::n_swa_layers() const {
  int n = 0;
  for (const layer_config& l : layers) n += l.window > 0;
  return n;
}

namespace {

int positive(const gguf& f, const std::string& key, int64_t value) {
  if (value <= 0 || value > (int64_t{1} << 30))
    throw make_error("bad value " + std::to_string(value) + " for " + key, f.path());
  return static_cast<int>(value);
}

}  // namespace

model_config model_config::from_gguf(const gguf& f) {
  model_config c;
  c.arch_name = f.architecture();
  const std::string& a = c.arch_name;
  if (a == "llama")
    c.architecture = arch::llama;
  else if (a == "qwen2")
    c.architecture = arch::qwen2;
  else if (a == "qwen3")
    c.architecture = arch::qwen3;
  else if (a == "gemma3")
    c.architecture = arch::gemma3;
  else
    throw make_error(
        "unsupported architecture '" + a + "' (supported: llama, qwen2, qwen3, gemma3)", f.path());

  auto req = [&](const std::string& key) {
    return positive(f, a + "." + key, f.get_int(a + "." + key));
  };
  auto opt = [&](const std::string& key, int64_t fallback) {
    return positive(f, a + "." + key, f.get_int(a + "." + key, fallback));
  };
  c.n_layer = req("block_count");
  c.n_embd = req("embedding_length");
  c.n_ff = req("feed_forward_length");
  c.n_head = req("attention.head_count");
  c.n_head_kv = opt("attention.head_count_kv", c.n_head);
  if (c.n_head % c.n_head_kv != 0)
    throw make_error("head_count " + std::to_string(c.n_head) +
                         " is not a multiple of head_count_kv " + std::to_string(c.n_head_kv),
                     f.path());
  c.head_k = opt("attention.key_length", c.n_embd / c.n_head);
  c.head_v = opt("attention.value_length", c.head_k);
  c.n_rot = opt("rope.dimension_count", c.head_k);
  if (c.n_rot > c.head_k || c.n_rot % 2 != 0)
    throw make_error("rope.dimension_count " + std::to_string(c.n_rot) +
                         " does not fit head size " + std::to_string(c.head_k),
                     f.path());
  c.n_ctx_train = opt("context_length", 2048);
  c.rms_eps = static_cast<float>(f.get_float(a + ".attention.layer_norm_rms_epsilon", 1e-5));
  if (!(c.rms_eps > 0)) throw make_error("bad layer_norm_rms_epsilon", f.path());

  const tensor& embd = f.get_tensor("token_embd.weight");
  if (embd.ne[0] != c.n_embd)
    throw make_error("token_embd.weight has " + std::to_string(embd.ne[0]) +
                         " columns, embedding_length is " + std::to_string(c.n_embd),
                     f.path());
  c.n_vocab = static_cast<int>(embd.ne[1]);

  const float base = static_cast<float>(f.get_float(a + ".rope.freq_base", 10000.0));
  const std::string scaling = f.get_string(a + ".rope.scaling.type", "none");
  const double factor = f.get_float(a + ".rope.scaling.factor", 0.0);
  float scale = 1.0f;
  if (scaling == "linear") {
    if (factor > 0) scale = static_cast<float>(1.0 / factor);
  } else if (scaling != "none") {
    throw make_error("rope scaling '" + scaling + "' is not supported (none, linear)", f.path());
  }
  c.rope = c.architecture == arch::llama ? rope_style::normal : rope_style::neox;
  c.attn_scale = 1.0f / std::sqrt(static_cast<float>(c.head_k));
  c.logit_softcap = static_cast<float>(f.get_float(a + ".final_logit_softcapping", 0.0));
  c.layers.assign(c.n_layer, layer_config{0, base, scale});

  if (c.architecture == arch::gemma3) {
    c.act = ffn_activation::gelu_tanh;
    c.embd_scale = std::sqrt(static_cast<float>(c.n_embd));
    c.sliding_window = static_cast<int>(f.get_int(a + ".attention.sliding_window", 0));
    if (c.sliding_window < 0) throw make_error("negative sliding_window", f.path());
    // llama.cpp: every 6th layer is global, the others slide, with RoPE base 10000.
    const int pattern = opt("attention.sliding_window_pattern", 6);
    const float swa_base = static_cast<float>(f.get_float(a + ".rope.freq_base_swa", 10000.0));
    if (c.sliding_window > 0) {
      for (int il = 0; il < c.n_layer; ++il) {
        if (il % pattern < pattern - 1)
          c.layers[il] = layer_config{c.sliding_window, swa_base, 1.0f};
      }
    }
  }
  return c;
}

}  // namespace engine
