// engine::kv_store -- the KV cache as the forward pass sees it: append a layer's keys/values
// for a run of positions, then attend with queries at those positions. Two implementations:
// kv_f32 (plain f32 rows, the reference) and kv_strata (strata::kv_cache with a runtime policy).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "model/config.hpp"

namespace engine {

class thread_pool;

class kv_store {
 public:
  virtual ~kv_store() = default;

  // Positions the cache can hold.
  virtual int capacity() const = 0;
  // Positions stored (0..size()-1) after the last completed append.
  virtual int size() const = 0;

  // Stores keys and values of `n` tokens at positions pos0..pos0+n-1 for `layer`.
  // k: [n][n_head_kv * head_k], v: [n][n_head_kv * head_v] (head-major within a row).
  // pos0 must be <= size(); appending at pos0 < size() overwrites (drops) what followed.
  virtual void append(int layer, int pos0, int n, const float* k, const float* v) = 0;

  // Called just before append with the same batch's queries ([n][n_head * head_k]) and keys:
  // a cache may calibrate on them (kv_strata: the policy clause k-balance). Default: nothing.
  virtual void prepare(int /*layer*/, int /*pos0*/, int /*n*/, const float* /*q*/,
                       const float* /*k*/) {}

  // Causal attention of `n` queries at positions pos0..pos0+n-1 (their K/V already appended)
  // over positions 0..pos0+n-1, masked to the layer's sliding window where it has one.
  // q: [n][n_head * head_k], out: [n][n_head * head_v]; scores are scaled by `scale`.
  virtual void attend(int layer, int pos0, int n, const float* q, float* out, float scale,
                      thread_pool& pool) = 0;

  // Forgets every position >= pos (pos = 0 clears the cache).
  virtual void truncate(int pos) = 0;

  // Removes positions [begin, end) (clamped to [0, size())): later tokens move down by
  // end - begin, their keys re-RoPEd, without recomputing anything (a context shift).
  // Returns false, changing nothing, when this cache cannot (the caller then re-prefills).
  virtual bool erase(int /*begin*/, int /*end*/) { return false; }

  // Bytes the cache holds for its full capacity, and what f16 K/V would take for the same
  // layout (the same tokens per layer).
  virtual size_t bytes() const = 0;
  virtual size_t f16_bytes() const;

  // "f32/f32", "f16/f16", a policy name...
  virtual std::string describe() const = 0;

  // Bits per stored K/V value, averaged over layers (bytes() * 8 / values).
  virtual double bits_per_value() const;

 protected:
  explicit kv_store(const model_config& c, int capacity);
  int n_layer_;
  int capacity_;
  int n_head_;
  int n_head_kv_;
  int head_k_;
  int head_v_;
  std::vector<int> window_;  // per layer: 0 or the sliding window
};

// Plain f32 rows: the reference cache (exact mode, tests, and the fallback).
class kv_f32 final : public kv_store {
 public:
  kv_f32(const model_config& c, int capacity);
  int capacity() const override { return capacity_; }
  int size() const override { return size_; }
  void append(int layer, int pos0, int n, const float* k, const float* v) override;
  void attend(int layer, int pos0, int n, const float* q, float* out, float scale,
              thread_pool& pool) override;
  void truncate(int pos) override;
  size_t bytes() const override;
  std::string describe() const override { return "f32/f32"; }

 private:
  int size_ = 0;
  std::vector<std::vector<float>> k_;  // per layer: [capacity][n_head_kv][head_k]
  std::vector<std::vector<float>> v_;  // per layer: [capacity][n_head_kv][head_v]
};

}  // namespace engine
