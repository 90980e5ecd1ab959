// engine::kv_recorder -- a KV store that keeps an f32 copy of every K/V row appended to it
// while an inner cache does the work, and appends those rows to other caches later: one prefill
// fills many caches (strata-bench's shared depth fill).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "kv/kv.hpp"

namespace engine {

class kv_recorder final : public kv_store {
 public:
  kv_recorder(const model_config& c, std::unique_ptr<kv_store> inner);

  int capacity() const override { return inner_->capacity(); }
  int size() const override { return inner_->size(); }
  void append(int layer, int pos0, int n, const float* k, const float* v) override;
  // Also keeps each layer's first batch of queries (pos0 == 0), which copy_into hands to the
  // target's prepare with its first batch (a k-balance cache calibrates on them).
  void prepare(int layer, int pos0, int n, const float* q, const float* k) override;
  void attend(int layer, int pos0, int n, const float* q, float* out, float scale,
              thread_pool& pool) override;
  void truncate(int pos) override { inner_->truncate(pos); }
  size_t bytes() const override { return inner_->bytes(); }
  std::string describe() const override { return inner_->describe(); }

  // Appends the recorded rows of positions 0..n-1 to `kv` in the order a forward pass does
  // (`batch` positions at a time, every layer per batch). Throws engine::error when fewer
  // than n positions were recorded.
  void copy_into(kv_store& kv, int n, int batch) const;

 private:
  std::unique_ptr<kv_store> inner_;
  size_t k_row_ = 0, v_row_ = 0;
  int recorded_ = 0;                         // positions recorded on the last layer
  std::vector<std::vector<float>> k_, v_;    // per layer: [capacity][n_head_kv][head]
  std::vector<std::vector<float>> q_first_;  // per layer: the first batch's queries
};

}  // namespace engine
