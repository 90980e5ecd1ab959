#include "kv/kv_probe.hpp"

#include "kv/kv_strata.hpp"
#include "model/model.hpp"

namespace engine {

std::string probe_variant::policy() const {
  std::string s = k_side ? "-ctk " + codec + " -ctv f16" : "-ctk f16 -ctv " + codec;
  if (k_balance) s.append(" k-balance");
  return s;
}

kv_probe::kv_probe(const model& m, int n_ctx, int max_batch, std::vector<probe_variant> variants)
    : kv_store(m.config(), n_ctx), variants_(std::move(variants)) {
  main_ = std::make_unique<kv_strata>(m, n_ctx, "-ctk f16 -ctv f16", max_batch);
  for (const auto& v : variants_)
    alt_.push_back(std::make_unique<kv_strata>(m, n_ctx, v.policy(), max_batch));
  sums_.resize(size_t(n_layer_));
  for (auto& s : sums_) {
    s.err_sq.assign(variants_.size(), 0.0);
    s.k_ch_sq.assign(size_t(n_head_kv_) * size_t(head_k_), 0.0);
    s.v_ch_sq.assign(size_t(n_head_kv_) * size_t(head_v_), 0.0);
  }
}

kv_probe::~kv_probe() = default;

int kv_probe::size() const { return main_->size(); }

void kv_probe::prepare(int layer, int pos0, int n, const float* q, const float* k) {
  main_->prepare(layer, pos0, n, q, k);
  for (auto& a : alt_) a->prepare(layer, pos0, n, q, k);
}

void kv_probe::append(int layer, int pos0, int n, const float* k, const float* v) {
  main_->append(layer, pos0, n, k, v);
  for (auto& a : alt_) a->append(layer, pos0, n, k, v);
  probe_layer_sums& s = sums_[size_t(layer)];
  const size_t kw = size_t(n_head_kv_) * size_t(head_k_), vw = size_t(n_head_kv_) * size_t(head_v_);
  for (int t = 0; t < n; ++t) {
    for (size_t i = 0; i < kw; ++i) {
      const double x = k[size_t(t) * kw + i];
      s.k_sq += x * x;
      s.k_ch_sq[i] += x * x;
    }
    for (size_t i = 0; i < vw; ++i) {
      const double x = v[size_t(t) * vw + i];
      s.v_sq += x * x;
      s.v_ch_sq[i] += x * x;
    }
  }
  s.rows += uint64_t(n) * uint64_t(n_head_kv_);
}

void kv_probe::attend(int layer, int pos0, int n, const float* q, float* out, float scale,
                      thread_pool& pool) {
  main_->attend(layer, pos0, n, q, out, scale, pool);
  const size_t count = size_t(n) * size_t(n_head_) * size_t(head_v_);
  probe_layer_sums& s = sums_[size_t(layer)];
  for (size_t i = 0; i < count; ++i) s.out_sq += double(out[i]) * out[i];
  scratch_.resize(count);
  for (size_t a = 0; a < alt_.size(); ++a) {
    alt_[a]->attend(layer, pos0, n, q, scratch_.data(), scale, pool);
    double e = 0;
    for (size_t i = 0; i < count; ++i) {
      const double d = double(scratch_[i]) - out[i];
      e += d * d;
    }
    s.err_sq[a] += e;
  }
}

void kv_probe::truncate(int pos) {
  main_->truncate(pos);
  for (auto& a : alt_) a->truncate(pos);
}

size_t kv_probe::bytes() const {
  size_t b = main_->bytes();
  for (const auto& a : alt_) b += a->bytes();
  return b;
}

}  // namespace engine
