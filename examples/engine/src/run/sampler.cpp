#include "run/sampler.hpp"

#include <algorithm>
#include <cmath>

#include "error.hpp"

namespace engine {

int32_t argmax(const float* logits, int n) {
  int32_t best = 0;
  for (int i = 1; i < n; ++i)
    if (logits[i] > logits[best]) best = i;
  return best;
}

sampler::sampler(const sampler_params& p) : p_(p), rng_(p.seed) {
  if (p.top_p <= 0.0f) throw make_error("--top-p must be > 0", "sampler");
}

int32_t sampler::sample(const float* logits, int n_vocab) {
  if (p_.temp <= 0.0f) return argmax(logits, n_vocab);
  cand_.resize(size_t(n_vocab));
  for (int i = 0; i < n_vocab; ++i) cand_[size_t(i)] = {logits[i], i};
  auto by_logit = [](const auto& a, const auto& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  };
  size_t k = cand_.size();
  if (p_.top_k > 0 && size_t(p_.top_k) < k) {
    k = size_t(p_.top_k);
    std::partial_sort(cand_.begin(), cand_.begin() + k, cand_.end(), by_logit);
  } else {
    std::sort(cand_.begin(), cand_.end(), by_logit);
  }
  cand_.resize(k);
  // Softmax at temperature 1 for top-p (as llama.cpp's top-p sees the raw distribution).
  const float mx = cand_[0].first;
  std::vector<double> pr(k);
  double sum = 0.0;
  for (size_t i = 0; i < k; ++i) sum += pr[i] = std::exp(double(cand_[i].first - mx));
  if (p_.top_p < 1.0f) {
    double cum = 0.0;
    size_t keep = k;
    for (size_t i = 0; i < k; ++i) {
      cum += pr[i] / sum;
      if (cum >= p_.top_p) {
        keep = i + 1;
        break;
      }
    }
    k = keep;
  }
  // Temperature, then draw.
  double total = 0.0;
  for (size_t i = 0; i < k; ++i) total += pr[i] = std::exp(double(cand_[i].first - mx) / p_.temp);
  std::uniform_real_distribution<double> u(0.0, total);
  double r = u(rng_);
  for (size_t i = 0; i < k; ++i) {
    r -= pr[i];
    if (r <= 0.0) return cand_[i].second;
  }
  return cand_[k - 1].second;
}

}  // namespace engine
