#pragma once
// The scalar reference of the softmax's two loops over a row of scores (the cache's online
// softmax, cache/softmax.hpp): its maximum, and its weights exp(s - m) with their sum. The
// Highway kernels (kernels/softmax-inl.hpp) compute the same operations in the same order, so
// on x86 (where this code has no FMA to contract into) they give the same bits.
//
// exp is a branch-free polynomial (Cody-Waite range reduction, degree-5 minimax on
// [-ln2/2, ln2/2], relative error < 2e-7) that compilers vectorize.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace strata::reference {

inline float fast_exp(float x) {
  x = std::min(std::max(x, -87.0f), 88.0f);
  // Round x / ln2 to nearest with the 1.5 * 2^23 trick (no libm call, vectorizes).
  const float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
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

namespace simd {
// 4 floats / 4 ints as GCC/Clang vector extensions: SSE2 on baseline x86-64, NEON on
// AArch64, with no Highway dispatch in this header (the kernels' header owns this TU's).
typedef float f4 __attribute__((vector_size(16)));
typedef std::int32_t i4 __attribute__((vector_size(16)));
inline constexpr std::size_t lanes = 4;

inline f4 load(const float* p) {
  f4 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store(float* p, f4 v) { std::memcpy(p, &v, sizeof v); }
inline f4 splat(float x) { return f4{x, x, x, x}; }
inline f4 select(i4 mask, f4 a, f4 b) {  // mask ? a : b, lane-wise (mask lanes are 0 or -1)
  i4 ia, ib;
  std::memcpy(&ia, &a, sizeof ia);
  std::memcpy(&ib, &b, sizeof ib);
  const i4 r = (ia & mask) | (ib & ~mask);
  f4 out;
  std::memcpy(&out, &r, sizeof out);
  return out;
}
inline f4 max(f4 a, f4 b) { return select(a > b, a, b); }
inline f4 min(f4 a, f4 b) { return select(a < b, a, b); }

// fast_exp on 4 lanes, the same arithmetic as the scalar version.
inline f4 exp(f4 x) {
  x = min(max(x, splat(-87.0f)), splat(88.0f));
  const f4 n = (x * splat(1.44269504088896341f) + splat(12582912.0f)) - splat(12582912.0f);
  f4 r = x - n * splat(0.693359375f);
  r = r + n * splat(2.12194440e-4f);
  f4 p = splat(1.9875691500e-4f);
  p = p * r + splat(1.3981999507e-3f);
  p = p * r + splat(8.3334519073e-3f);
  p = p * r + splat(4.1665795894e-2f);
  p = p * r + splat(1.6666665459e-1f);
  p = p * r + splat(5.0000001201e-1f);
  p = p * r * r + r + splat(1.0f);
  const i4 e = (__builtin_convertvector(n, i4) + 127) << 23;
  f4 sc;
  std::memcpy(&sc, &e, sizeof sc);
  return p * sc;
}
}  // namespace simd

// max of x[0..n), n > 0.
inline float softmax_max(const float* x, std::size_t n) {
  float r = x[0];
  std::size_t j = 0;
  if (n >= simd::lanes) {
    simd::f4 m = simd::load(x);
    for (j = simd::lanes; j + simd::lanes <= n; j += simd::lanes)
      m = simd::max(m, simd::load(x + j));
    for (std::size_t i = 0; i < simd::lanes; ++i) r = m[i] > r ? m[i] : r;
  }
  for (std::size_t left = n - j; left > 0; --left, ++j) r = x[j] > r ? x[j] : r;
  return r;
}

// x[j] = exp(x[j] - m) for j < n; returns the sum: the 4-lane blocks' weights added lane-wise
// in order, the lanes as (0 + 1) + (2 + 3), then the last n % 4 weights one by one.
inline float softmax_exp_sum(float* x, std::size_t n, float m) {
  simd::f4 acc = simd::splat(0.0f);
  const simd::f4 vm = simd::splat(m);
  std::size_t j = 0;
  for (; j + simd::lanes <= n; j += simd::lanes) {
    const simd::f4 w = simd::exp(simd::load(x + j) - vm);
    simd::store(x + j, w);
    acc += w;
  }
  float sum = (acc[0] + acc[1]) + (acc[2] + acc[3]);
  for (std::size_t left = n - j; left > 0; --left, ++j) {
    x[j] = fast_exp(x[j] - m);
    sum += x[j];
  }
  return sum;
}

}  // namespace strata::reference
