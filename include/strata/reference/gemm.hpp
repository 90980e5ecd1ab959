#pragma once
// The scalar references of the f32 matrix products of the attention loop's prefill path
// (cache/attend.hpp: scores = Q K^T and out += P V for groups of many query rows). gemm_f32:
//   c[i * ldc + j] = sum_p a[i * lda + p] * b[p * ldb + j]    (accumulate: c[...] += that sum)
// for i < m, j < n. Each sum starts from 0 and takes one fused multiply-add per term, in order
// p = 0 .. k - 1; with accumulate the sum is then added to c. The Highway kernel
// (kernels/gemm-inl.hpp) takes the same steps lane-wise, so where it has FMA (x86 AVX2/AVX3,
// NEON, SVE) it gives the same bits.

#include <cmath>
#include <cstddef>

namespace strata::reference {

inline void gemm_f32(const float* a, std::size_t lda, const float* b, std::size_t ldb, float* c,
                     std::size_t ldc, std::size_t m, std::size_t n, std::size_t k,
                     bool accumulate) {
  for (std::size_t i = 0; i < m; ++i)
    for (std::size_t j = 0; j < n; ++j) {
      float s = 0.0f;
      for (std::size_t p = 0; p < k; ++p) s = std::fma(a[i * lda + p], b[p * ldb + j], s);
      c[i * ldc + j] = accumulate ? c[i * ldc + j] + s : s;
    }
}

// The scores' product with b's rows as columns ("NT": both operands have k contiguous):
//   c[i * ldc + j] = sum_p a[i * lda + p] * b[j * ldb + p]
// summed in f64 and rounded once (the kernel sums each element in vector lanes and a reduction
// tree, as the dot kernels do: within float rounding of this).
inline void gemm_nt_f32(const float* a, std::size_t lda, const float* b, std::size_t ldb, float* c,
                        std::size_t ldc, std::size_t m, std::size_t n, std::size_t k) {
  for (std::size_t i = 0; i < m; ++i)
    for (std::size_t j = 0; j < n; ++j) {
      double s = 0.0;
      for (std::size_t p = 0; p < k; ++p) s += double(a[i * lda + p]) * double(b[j * ldb + p]);
      c[i * ldc + j] = float(s);
    }
}

}  // namespace strata::reference
