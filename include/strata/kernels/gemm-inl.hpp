// The f32 matrix products of the attention loop's prefill path (no codec), per Highway target;
// strata/reference/gemm.hpp has the scalar references and says what is computed. A fragment of
// kernels-inl.hpp.
//
// gemm: c (+)= a b with a: m x k (row stride lda), b: k x n (row stride ldb), c: m x n (ldc),
// the weighted sum of a tile's values (P V).
//
// Register-blocked: a block of kRows rows of c by kVecs vectors of columns stays in registers
// over the whole k loop; per step of k it loads kVecs vectors of b's row p and broadcasts one
// value of a per row (AVX3: 6 rows x 4 vectors = 24 of the 32 registers, 10 loads per 24 FMAs;
// 16-register targets: 6 x 2). Each element's sum starts from 0 and takes one MulAdd per term in
// order p (the reference's steps); columns past the last whole vector go to the reference.
//
// gemm_nt: c = a b^T with b: n x k (row stride ldb), the scores (Q K^T) straight from decoded key
// rows. Its lanes run along k, as the dot kernels': a block of kNtRows rows of a by 4 rows of b
// keeps 4 x kNtRows vectors of lane sums over the k loop, then each is reduced by one
// transpose-add tree per 4 (reduce_sum4). Summing k in N lanes and a tree keeps the scores as
// accurate as the dot kernels' (one sequential chain per score, as gemm's, lost up to 1.8x on
// the f32 cache's output error at head dim 256: measured in attention_quality_test).

HWY_BEFORE_NAMESPACE();
namespace strata::kernels::HWY_NAMESPACE {

#if HWY_TARGET != HWY_SCALAR && !HWY_HAVE_SCALABLE
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
inline constexpr std::size_t kGemmRows = 6, kGemmVecs = 4;
#else
inline constexpr std::size_t kGemmRows = 6, kGemmVecs = 2;
#endif

// MR rows x NV vectors of c at c, from MR rows of a and the same columns of b.
template <std::size_t MR, std::size_t NV, class D>
HWY_INLINE void gemm_block(D d, const float* HWY_RESTRICT a, std::size_t lda,
                           const float* HWY_RESTRICT b, std::size_t ldb, float* HWY_RESTRICT c,
                           std::size_t ldc, std::size_t k, bool accumulate) {
  const std::size_t N = hn::Lanes(d);
  hn::Vec<D> acc[MR][NV];
#pragma GCC unroll 8
  for (std::size_t r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (std::size_t v = 0; v < NV; ++v) acc[r][v] = hn::Zero(d);
  for (std::size_t p = 0; p < k; ++p) {
    const float* bp = b + p * ldb;
    hn::Vec<D> bv[NV];
#pragma GCC unroll 4
    for (std::size_t v = 0; v < NV; ++v) bv[v] = hn::LoadU(d, bp + v * N);
#pragma GCC unroll 8
    for (std::size_t r = 0; r < MR; ++r) {
      const auto av = hn::Set(d, a[r * lda + p]);
#pragma GCC unroll 4
      for (std::size_t v = 0; v < NV; ++v) acc[r][v] = hn::MulAdd(av, bv[v], acc[r][v]);
    }
  }
#pragma GCC unroll 8
  for (std::size_t r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (std::size_t v = 0; v < NV; ++v) {
      float* o = c + r * ldc + v * N;
      hn::StoreU(accumulate ? hn::Add(hn::LoadU(d, o), acc[r][v]) : acc[r][v], d, o);
    }
}

// All m rows of c for NV vectors of columns: blocks of kRows rows, then one of the rest.
template <std::size_t NV, class D>
HWY_INLINE void gemm_panel(D d, const float* a, std::size_t lda, const float* b, std::size_t ldb,
                           float* c, std::size_t ldc, std::size_t m, std::size_t k,
                           bool accumulate) {
  std::size_t i = 0;
  for (; i + kGemmRows <= m; i += kGemmRows)
    gemm_block<kGemmRows, NV>(d, a + i * lda, lda, b, ldb, c + i * ldc, ldc, k, accumulate);
  if (i == m) return;
  [&]<std::size_t... R>(std::index_sequence<R...>) {
    ((m - i == R + 1
          ? gemm_block<R + 1, NV>(d, a + i * lda, lda, b, ldb, c + i * ldc, ldc, k, accumulate)
          : void()),
     ...);
  }
  (std::make_index_sequence<kGemmRows - 1>{});
}

#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
inline constexpr std::size_t kNtRows = 6;
#else
inline constexpr std::size_t kNtRows = 2;
#endif

// MR rows of a against NB (<= 4) rows of b: c[r * ldc + j] for r < MR, j < NB.
template <std::size_t MR, std::size_t NB, class D>
HWY_INLINE void gemm_nt_block(D d, const float* HWY_RESTRICT a, std::size_t lda,
                              const float* HWY_RESTRICT b, std::size_t ldb, float* HWY_RESTRICT c,
                              std::size_t ldc, std::size_t k) {
  const std::size_t N = hn::Lanes(d);
  hn::Vec<D> acc[MR][4];
#pragma GCC unroll 8
  for (std::size_t r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (std::size_t j = 0; j < 4; ++j) acc[r][j] = hn::Zero(d);
  std::size_t p = 0;
  for (; p + N <= k; p += N) {
    hn::Vec<D> bv[NB];
#pragma GCC unroll 4
    for (std::size_t j = 0; j < NB; ++j) bv[j] = hn::LoadU(d, b + j * ldb + p);
#pragma GCC unroll 8
    for (std::size_t r = 0; r < MR; ++r) {
      const auto av = hn::LoadU(d, a + r * lda + p);
#pragma GCC unroll 4
      for (std::size_t j = 0; j < NB; ++j) acc[r][j] = hn::MulAdd(av, bv[j], acc[r][j]);
    }
  }
#pragma GCC unroll 8
  for (std::size_t r = 0; r < MR; ++r) {
    HWY_ALIGN float s[4];
    reduce_sum4(d, acc[r][0], acc[r][1], acc[r][2], acc[r][3], s);
    for (std::size_t j = 0; j < NB; ++j) {
      float x = s[j];
      for (std::size_t q = p; q < k; ++q) x += a[r * lda + q] * b[j * ldb + q];  // k % N
      c[r * ldc + j] = x;
    }
  }
}

// MR rows of a against all n rows of b.
template <std::size_t MR, class D>
HWY_INLINE void gemm_nt_rows(D d, const float* a, std::size_t lda, const float* b, std::size_t ldb,
                             float* c, std::size_t ldc, std::size_t n, std::size_t k) {
  std::size_t j = 0;
  for (; j + 4 <= n; j += 4) gemm_nt_block<MR, 4>(d, a, lda, b + j * ldb, ldb, c + j, ldc, k);
  for (; j < n; ++j) gemm_nt_block<MR, 1>(d, a, lda, b + j * ldb, ldb, c + j, ldc, k);
}
#endif

struct gemm_kernels {
  static void gemm_nt(const float* a, std::size_t lda, const float* b, std::size_t ldb, float* c,
                      std::size_t ldc, std::size_t m, std::size_t n, std::size_t k) {
#if HWY_TARGET == HWY_SCALAR || HWY_HAVE_SCALABLE
    reference::gemm_nt_f32(a, lda, b, ldb, c, ldc, m, n, k);
#else
    const hn::ScalableTag<float> d;
    std::size_t i = 0;
    for (; i + kNtRows <= m; i += kNtRows)
      gemm_nt_rows<kNtRows>(d, a + i * lda, lda, b, ldb, c + i * ldc, ldc, n, k);
    for (; i < m; ++i) gemm_nt_rows<1>(d, a + i * lda, lda, b, ldb, c + i * ldc, ldc, n, k);
#endif
  }

  static void gemm(const float* a, std::size_t lda, const float* b, std::size_t ldb, float* c,
                   std::size_t ldc, std::size_t m, std::size_t n, std::size_t k, bool accumulate) {
#if HWY_TARGET == HWY_SCALAR || HWY_HAVE_SCALABLE
    reference::gemm_f32(a, lda, b, ldb, c, ldc, m, n, k, accumulate);
#else
    const hn::ScalableTag<float> d;
    const std::size_t N = hn::Lanes(d);
    std::size_t j = 0;
    for (; j + kGemmVecs * N <= n; j += kGemmVecs * N)
      gemm_panel<kGemmVecs>(d, a, lda, b + j, ldb, c + j, ldc, m, k, accumulate);
    for (; j + N <= n; j += N) gemm_panel<1>(d, a, lda, b + j, ldb, c + j, ldc, m, k, accumulate);
    if (j < n) reference::gemm_f32(a, lda, b + j, ldb, c + j, ldc, m, n - j, k, accumulate);
#endif
  }
};

}  // namespace strata::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();
