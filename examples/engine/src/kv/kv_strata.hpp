// engine::kv_strata -- the forward pass's KV store on strata::runtime_kv_cache: per-layer
// codecs from a policy string, attention straight from the compressed blocks.
#pragma once

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include <strata/cache/split_k.hpp>

#include "kv/kv.hpp"

namespace strata {
class runtime_kv_cache;
}

namespace engine {

class model;

class kv_strata final : public kv_store {
 public:
  // policy: a strata policy string ("-ctk f16 -ctv f16", "la7", "k=q8_0;v=turbo3", ...).
  // max_batch: the most tokens appended at once (sliding-window layers keep window +
  // max_batch - 1 tokens in a ring); 0 keeps every token on every layer.
  kv_strata(const model& m, int n_ctx, const std::string& policy, int max_batch);
  ~kv_strata() override;

  int capacity() const override { return capacity_; }
  int size() const override { return size_; }
  void append(int layer, int pos0, int n, const float* k, const float* v) override;
  void prepare(int layer, int pos0, int n, const float* q, const float* k) override;
  // Splits the layer over KV heads and threads; a decode step or a small batch over at least
  // 2 x split_min_keys() keys whose KV heads do not share out evenly over the threads (SmolLM2:
  // 3 heads, Gemma 3: 1, on 2 threads) also splits each head's keys (split-K,
  // strata/cache/split_k.hpp) and merges the parts.
  void attend(int layer, int pos0, int n, const float* q, float* out, float scale,
              thread_pool& pool) override;
  // The fewest keys per split-K chunk (default 1024, or the environment's STRATA_SPLIT_KEYS);
  // 0 turns split-K off.
  int split_min_keys() const { return split_keys_; }
  void set_split_min_keys(int keys) { split_keys_ = std::max(0, keys); }
  // Drops positions >= pos. When a sliding-window ring no longer holds the window that
  // position pos needs, the whole cache is cleared (size() == 0: the caller re-prefills).
  void truncate(int pos) override;
  // Moves the tail's keys by RoPE with the model's per-layer parameters. False when a
  // sliding-window layer would no longer hold the window the next position sees.
  bool erase(int begin, int end) override;
  size_t bytes() const override;
  size_t f16_bytes() const override;
  // Side data beside the rows (K means, k-balance scales) once set: runtime_kv_cache::side_bytes.
  size_t side_bytes() const;
  double bits_per_value() const override;
  std::string describe() const override;
  // The per-layer codec table (strata's policy report).
  std::string table() const;
  // The cache itself (its layer map, positions, decoded rows: runtime_kv_cache::read_k/read_v).
  const strata::runtime_kv_cache& cache() const { return *cache_; }

  // The cache's state file (strata::runtime_kv_cache::save / load). load_state replaces the
  // contents with a file saved from a cache of the same layer map, codecs and rotation holding
  // positions 0..n_tokens-1; anything else throws engine::error and leaves the cache empty.
  void save_state(const std::string& path) const;
  void load_state(const std::string& path, int n_tokens);

 private:
  std::unique_ptr<strata::runtime_kv_cache> cache_;
  std::string policy_;
  rope_style rope_ = rope_style::normal;  // the model's RoPE pairs (k-balance shares their scales)
  int n_rot_ = 0;
  std::vector<layer_config> rope_layers_;  // per layer: RoPE base and scale
  std::vector<float> rope_freqs_;          // Llama 3 frequency factors or empty
  int size_ = 0;
  int split_keys_ = 1024;
  // Split-K's part outputs (chunks 1..: [n][n_head][head_v] each), log-sum-exps (chunks 0..:
  // [n][n_head] each) and their views, kept between calls.
  std::vector<float> part_out_, part_lse_;
  std::vector<strata::attention_part> parts_;

  void attend_split(int layer, int pos0, int n, const float* q, float* out, float scale,
                    thread_pool& pool, strata::key_range keys, size_t chunks);
};

}  // namespace engine
