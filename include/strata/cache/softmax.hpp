#pragma once
// f32 online softmax for attention over key tiles ("running max"): each tile's scores become
// weights exp(s - m) against the running maximum m of their row; when m grows, the row's
// running sum and accumulated output are rescaled by exp(m_old - m_new).
//
// exp is a branch-free polynomial (Cody-Waite range reduction, degree-5 minimax on
// [-ln2/2, ln2/2], relative error < 2e-7) that compilers vectorize.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>

namespace strata::detail {

inline float fast_exp(float x) {
  x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
  const float n = std::nearbyint(x * 1.44269504088896341f);
  float r = x - n * 0.693359375f;
  r = r + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const std::int32_t e = (static_cast<std::int32_t>(n) + 127) << 23;
  float s;
  std::memcpy(&s, &e, sizeof s);
  return p * s;
}

// One row of one key tile. `s[0..n)` holds the row's scores; only [a, b) are visible (the
// others are masked). On return s[j] holds the weight of key j (0 where masked), `m` and `l`
// are the row's running max and sum, and `acc[0..dim)` has been rescaled if m grew.
inline void online_softmax_row(float* s, std::size_t n, std::size_t a, std::size_t b,
                               float softcap, float& m, float& l, float* acc, std::size_t dim) {
  for (std::size_t j = 0; j < a; ++j) s[j] = 0.0f;
  for (std::size_t j = b; j < n; ++j) s[j] = 0.0f;
  if (a >= b) return;
  if (softcap > 0.0f) {
    const float inv = 1.0f / softcap;
    for (std::size_t j = a; j < b; ++j) s[j] = softcap * std::tanh(s[j] * inv);
  }
  float mt = s[a];
  for (std::size_t j = a + 1; j < b; ++j) mt = s[j] > mt ? s[j] : mt;
  if (mt > m) {
    if (m != -std::numeric_limits<float>::infinity()) {
      const float c = fast_exp(m - mt);
      l *= c;
      for (std::size_t i = 0; i < dim; ++i) acc[i] *= c;
    }
    m = mt;
  }
  float sum = 0.0f;
  const float mm = m;
  for (std::size_t j = a; j < b; ++j) {
    const float w = fast_exp(s[j] - mm);
    s[j] = w;
    sum += w;
  }
  l += sum;
}

}  // namespace strata::detail
