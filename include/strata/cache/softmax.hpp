#pragma once
// f32 online softmax for attention over key tiles ("running max"): each tile's scores become
// weights exp(s - m) against the running maximum m of their row; when m grows, the row's
// running sum and accumulated output are rescaled by exp(m_old - m_new).
//
// The row's maximum and weights come from strata::softmax_max / softmax_exp_sum, dispatched
// per target (kernels/softmax-inl.hpp; reference/softmax.hpp is their scalar reference).

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>

#include <strata/kernels/kernels.hpp>
#include <strata/reference/softmax.hpp>

namespace strata::detail {

// max of x[0..n), n > 0.
inline float max_of(const float* x, std::size_t n) { return softmax_max(x, n); }

// One row of one key tile. `s[0..n)` holds the row's scores; only [a, b) are visible (the
// others are masked). On return s[j] holds the weight of key j (0 where masked), `m` and `l`
// are the row's running max and sum, and `acc[0..dim)` has been rescaled if m grew.
inline void online_softmax_row(float* s, std::size_t n, std::size_t a, std::size_t b, float softcap,
                               float& m, float& l, float* acc, std::size_t dim) {
  for (std::size_t j = 0; j < a; ++j) s[j] = 0.0f;
  for (std::size_t j = b; j < n; ++j) s[j] = 0.0f;
  if (a >= b) return;
  if (softcap > 0.0f) {
    const float inv = 1.0f / softcap;
    for (std::size_t j = a; j < b; ++j) s[j] = softcap * std::tanh(s[j] * inv);
  }
  const float mt = max_of(s + a, b - a);
  if (mt > m) {
    if (m != -std::numeric_limits<float>::infinity()) {
      const float c = reference::fast_exp(m - mt);
      l *= c;
      for (std::size_t i = 0; i < dim; ++i) acc[i] *= c;
    }
    m = mt;
  }
  l += softmax_exp_sum(s + a, b - a, m);
}

}  // namespace strata::detail
