#include "kv/kv_recorder.hpp"

#include <algorithm>
#include <cstring>

#include "error.hpp"

namespace engine {

kv_recorder::kv_recorder(const model_config& c, std::unique_ptr<kv_store> inner)
    : kv_store(c, inner ? inner->capacity() : 0), inner_(std::move(inner)) {
  k_row_ = size_t(n_head_kv_) * size_t(head_k_);
  v_row_ = size_t(n_head_kv_) * size_t(head_v_);
  k_.resize(size_t(n_layer_));
  v_.resize(size_t(n_layer_));
  for (int l = 0; l < n_layer_; ++l) {
    k_[size_t(l)].resize(size_t(capacity_) * k_row_);
    v_[size_t(l)].resize(size_t(capacity_) * v_row_);
  }
}

void kv_recorder::append(int layer, int pos0, int n, const float* k, const float* v) {
  inner_->append(layer, pos0, n, k, v);  // checks layer and positions
  std::memcpy(k_[size_t(layer)].data() + size_t(pos0) * k_row_, k,
              sizeof(float) * k_row_ * size_t(n));
  std::memcpy(v_[size_t(layer)].data() + size_t(pos0) * v_row_, v,
              sizeof(float) * v_row_ * size_t(n));
  if (layer == n_layer_ - 1) recorded_ = pos0 + n;
}

void kv_recorder::prepare(int layer, int pos0, int n, const float* q, const float* k) {
  inner_->prepare(layer, pos0, n, q, k);
  if (pos0 != 0 || layer < 0 || layer >= n_layer_ || n <= 0) return;
  const size_t q_row = size_t(n_head_) * size_t(head_k_);
  q_first_.resize(size_t(n_layer_));
  q_first_[size_t(layer)].assign(q, q + q_row * size_t(n));
}

void kv_recorder::attend(int layer, int pos0, int n, const float* q, float* out, float scale,
                         thread_pool& pool) {
  inner_->attend(layer, pos0, n, q, out, scale, pool);
}

void kv_recorder::copy_into(kv_store& kv, int n, int batch) const {
  if (n > recorded_)
    throw make_error(
        "asked for " + std::to_string(n) + " positions, " + std::to_string(recorded_) + " recorded",
        "kv_recorder::copy_into");
  batch = std::max(1, batch);
  for (int b = 0; b < n; b += batch) {
    const int m = std::min(batch, n - b);
    for (int l = 0; l < n_layer_; ++l) {
      if (b == 0 && size_t(l) < q_first_.size() && !q_first_[size_t(l)].empty()) {
        const int nq = int(q_first_[size_t(l)].size() / (size_t(n_head_) * size_t(head_k_)));
        kv.prepare(l, 0, std::min(nq, m), q_first_[size_t(l)].data(), k_[size_t(l)].data());
      }
      kv.append(l, b, m, k_[size_t(l)].data() + size_t(b) * k_row_,
                v_[size_t(l)].data() + size_t(b) * v_row_);
    }
  }
}

}  // namespace engine
