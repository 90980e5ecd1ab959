// engine::kv_probe -- an f16 KV cache that, while the forward pass runs on it, measures per layer
// how much each cheaper codec on K alone or on V alone would change that layer's attention
// output (the sensitivity strata-tune reports), and collects K/V norm and channel statistics.
//
// Every variant is a full strata cache (K on the variant's codec and V on f16, or the reverse),
// fed the same rows; its attention output for the same queries is compared with the f16 one.
// The forward pass only ever sees the f16 output, so the measurement does not disturb itself.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kv/kv.hpp"

namespace engine {

class model;

// One alternative cache: `codec` (a strata codec name) on one side, f16 on the other.
struct probe_variant {
  std::string codec;
  bool k_side = true;      // the codec is on K (else on V)
  bool k_balance = false;  // with the policy clause k-balance
  // The policy string of this variant's cache.
  std::string policy() const;
};

// Sums over every query row and head a layer attended with, and over every row it stored.
struct probe_layer_sums {
  double out_sq = 0;                     // sum of squared f16 attention outputs
  std::vector<double> err_sq;            // per variant: sum of squared (variant - f16) differences
  double k_sq = 0, v_sq = 0;             // sums of squared K / V values
  uint64_t rows = 0;                     // K (V) head vectors stored
  std::vector<double> k_ch_sq, v_ch_sq;  // per channel (KV head x dim): sum of squares
};

class kv_probe final : public kv_store {
 public:
  kv_probe(const model& m, int n_ctx, int max_batch, std::vector<probe_variant> variants);
  ~kv_probe() override;

  int capacity() const override { return capacity_; }
  int size() const override;
  void append(int layer, int pos0, int n, const float* k, const float* v) override;
  void prepare(int layer, int pos0, int n, const float* q, const float* k) override;
  void attend(int layer, int pos0, int n, const float* q, float* out, float scale,
              thread_pool& pool) override;
  void truncate(int pos) override;
  size_t bytes() const override;
  std::string describe() const override { return "f16/f16 (probe)"; }

  const std::vector<probe_variant>& variants() const { return variants_; }
  // Per model layer.
  const probe_layer_sums& sums(int layer) const { return sums_[size_t(layer)]; }

 private:
  std::vector<probe_variant> variants_;
  std::unique_ptr<kv_store> main_;
  std::vector<std::unique_ptr<kv_store>> alt_;
  std::vector<probe_layer_sums> sums_;
  std::vector<float> scratch_;
};

}  // namespace engine
