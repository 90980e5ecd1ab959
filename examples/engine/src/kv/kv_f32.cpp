#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "error.hpp"
#include "kv/kv.hpp"
#include "model/thread_pool.hpp"

namespace engine {

kv_store::kv_store(const model_config& c, int capacity)
    : n_layer_(c.n_layer),
      capacity_(capacity),
      n_head_(c.n_head),
      n_head_kv_(c.n_head_kv),
      head_k_(c.head_k),
      head_v_(c.head_v) {
  if (capacity <= 0) throw make_error("context size must be > 0", "kv cache");
  for (const layer_config& l : c.layers) window_.push_back(l.window);
}

size_t kv_store::f16_bytes() const {
  return size_t(n_layer_) * size_t(capacity_) * size_t(n_head_kv_) * size_t(head_k_ + head_v_) * 2;
}

double kv_store::bits_per_value() const {
  const double values =
      double(n_layer_) * double(capacity_) * double(n_head_kv_) * double(head_k_ + head_v_);
  return double(bytes()) * 8.0 / values;
}

kv_f32::kv_f32(const model_config& c, int capacity) : kv_store(c, capacity) {
  k_.resize(n_layer_);
  v_.resize(n_layer_);
  for (int l = 0; l < n_layer_; ++l) {
    k_[l].assign(size_t(capacity_) * n_head_kv_ * head_k_, 0.0f);
    v_[l].assign(size_t(capacity_) * n_head_kv_ * head_v_, 0.0f);
  }
}

size_t kv_f32::bytes() const {
  return size_t(n_layer_) * size_t(capacity_) * size_t(n_head_kv_) * size_t(head_k_ + head_v_) * 4;
}

void kv_f32::truncate(int pos) { size_ = std::clamp(pos, 0, size_); }

void kv_f32::append(int layer, int pos0, int n, const float* k, const float* v) {
  if (layer < 0 || layer >= n_layer_) throw make_error("bad layer", "kv_f32::append");
  if (pos0 < 0 || pos0 > size_ || n < 0 || pos0 + n > capacity_)
    throw make_error("positions " + std::to_string(pos0) + ".." + std::to_string(pos0 + n) +
                         " outside the cache (capacity " + std::to_string(capacity_) + ")",
                     "kv_f32::append");
  const size_t kr = size_t(n_head_kv_) * head_k_, vr = size_t(n_head_kv_) * head_v_;
  std::memcpy(k_[layer].data() + size_t(pos0) * kr, k, sizeof(float) * kr * n);
  std::memcpy(v_[layer].data() + size_t(pos0) * vr, v, sizeof(float) * vr * n);
  // The cache's size follows the last layer: every layer appends the same positions.
  if (layer == n_layer_ - 1) size_ = pos0 + n;
}

void kv_f32::attend(int layer, int pos0, int n, const float* q, float* out, float scale,
                    thread_pool& pool) {
  if (pos0 < 0 || n < 0 || pos0 + n > capacity_)
    throw make_error("bad positions", "kv_f32::attend");
  const int group = n_head_ / n_head_kv_;
  const int window = window_[layer];
  const float* K = k_[layer].data();
  const float* V = v_[layer].data();
  const int hk = head_k_, hv = head_v_, nkv = n_head_kv_, nh = n_head_;
  pool.parallel_for(int64_t(n) * nh, [&](int64_t begin, int64_t end) {
    std::vector<float> s(static_cast<size_t>(pos0 + n));
    std::vector<float> acc(static_cast<size_t>(hv));
    for (int64_t job = begin; job < end; ++job) {
      const int i = int(job / nh), h = int(job % nh), g = h / group;
      const int p = pos0 + i;
      const int lo = window > 0 ? std::max(0, p - window + 1) : 0;
      const float* qh = q + (size_t(i) * nh + h) * hk;
      float mx = -std::numeric_limits<float>::infinity();
      for (int j = lo; j <= p; ++j) {
        const float* kj = K + (size_t(j) * nkv + g) * hk;
        float d = 0.0f;
        for (int c = 0; c < hk; ++c) d += qh[c] * kj[c];
        d *= scale;
        s[j] = d;
        mx = std::max(mx, d);
      }
      std::fill(acc.begin(), acc.end(), 0.0f);
      float sum = 0.0f;
      for (int j = lo; j <= p; ++j) {
        const float w = std::exp(s[j] - mx);
        sum += w;
        const float* vj = V + (size_t(j) * nkv + g) * hv;
        for (int c = 0; c < hv; ++c) acc[c] += w * vj[c];
      }
      float* o = out + (size_t(i) * nh + h) * hv;
      const float inv = 1.0f / sum;
      for (int c = 0; c < hv; ++c) o[c] = acc[c] * inv;
    }
  });
}

}  // namespace engine
