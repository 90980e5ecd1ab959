// The register-blocked value driver at full AVX-512 width (AVX3 targets), for any codec with a
// zmm_reader (roles-inl.hpp): acc_i += sum_j w_ij * scale_j * value_j with 16-value chunks
// (int8 converted, f16 by vcvtph2ps, turbo's codebook in one vpermps) and the accumulators of
// QT query rows x NC chunks in registers across the 64 value rows of a tile (32 zmm registers:
// 4 x 4 or 2 x 8 accumulators, the rest for chunks, tables and weights). Values are exact f32
// and each element's sum runs in value-row order, in one of the two orders of the 256-bit
// drivers, so the results are theirs bit for bit:
//   kTileSums = true:  each tile's sum from zero, then added to out (lane_axpy, plane_axpy)
//   kTileSums = false: one chain through all rows, continuing from what `out` holds (float_axpy
//                      on out itself; fused_axpy on a zeroed buffer then added: zmm_axpy_chain)
// A fragment of kernels-inl.hpp.

HWY_BEFORE_NAMESPACE();
namespace strata::kernels::HWY_NAMESPACE {

#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
inline constexpr std::size_t kZmmTile = 64;  // value rows per tile

// Chunks C0 .. C0 + NC - 1 (counted over blocks b, b + 1, ...: chunk k is chunk k % CB of block
// b + k / CB) of QT query rows over nj value rows. The weight of row j for block b + k / CB and
// query r: wt[(k / CB) * bs + r * rs + j]. pf (a tile's first pass): at row j, row j + kJ (the
// next tile's, when one of the n_left rows from here) is prefetched, pf_bytes of it: one row per
// row, not a tile's rows at once (a burst of prefetches stalls on the fill buffers; measured).
template <class Codec, std::size_t QT, std::size_t C0, std::size_t NC, bool kTileSums>
HWY_INLINE void zmm_axpy_pass(const float* wt, std::size_t bs, std::size_t rs, std::size_t nj,
                              const char* rows, std::size_t value_stride, std::size_t b,
                              const typename zmm_reader<Codec>::tables& t, float* o,
                              std::size_t dim, bool pf, std::size_t n_left, std::size_t pf_bytes) {
  constexpr std::size_t kJ = kZmmTile;
  using R = zmm_reader<Codec>;
  using block = typename R::block;
  constexpr std::size_t V = R::kValues, CB = V / 16;
  const auto at = [&](std::size_t k) {  // the element of chunk k (of the pass) in a row of o
    return (b + (C0 + k) / CB) * V + R::pos((C0 + k) % CB);
  };
  __m512 acc[QT][NC];
#pragma GCC unroll 8
  for (std::size_t r = 0; r < QT; ++r)
#pragma GCC unroll 8
    for (std::size_t k = 0; k < NC; ++k)
      acc[r][k] = kTileSums ? _mm512_setzero_ps() : _mm512_loadu_ps(o + r * dim + at(k));
  for (std::size_t j = 0; j < nj; ++j) {
    if (pf) prefetch_ahead(rows, j + kJ - kPrefetchRows, n_left, value_stride, pf_bytes);
    const block* blk = reinterpret_cast<const block*>(rows + j * value_stride) + b;
    [&]<std::size_t... Ks>(std::index_sequence<Ks...>) {
      (([&] {
         constexpr std::size_t k = C0 + Ks;
         const __m512 v = R::template chunk<k % CB>(t, blk[k / CB]);
         const float* wk = wt + (k / CB) * bs + j;
#pragma GCC unroll 4
         for (std::size_t r = 0; r < QT; ++r)
           acc[r][Ks] = _mm512_fmadd_ps(v, _mm512_set1_ps(wk[r * rs]), acc[r][Ks]);
       }()),
       ...);
    }
    (std::make_index_sequence<NC>{});
  }
#pragma GCC unroll 8
  for (std::size_t r = 0; r < QT; ++r)
#pragma GCC unroll 8
    for (std::size_t k = 0; k < NC; ++k) {
      float* p = o + r * dim + at(k);
      _mm512_storeu_ps(p, kTileSums ? _mm512_add_ps(_mm512_loadu_ps(p), acc[r][k]) : acc[r][k]);
    }
}

// out_i += sum_j w_ij * value_j in the order kTileSums says (above). dim % kValues == 0.
template <class Codec, bool kTileSums>
HWY_INLINE void zmm_axpy(const float* w, std::size_t n_q, std::size_t w_stride, const void* values,
                         std::size_t value_stride, std::size_t n_values, std::size_t dim,
                         float* out) {
  static_assert(require<zmm_reading<Codec>>(role::zmm_reader));
  using R = zmm_reader<Codec>;
  using block = typename R::block;
  constexpr std::size_t V = R::kValues, CB = V / 16, kJ = kZmmTile;
  const std::size_t nb = dim / V;
  const typename R::tables t;
  const char* base = static_cast<const char*>(values);
  HWY_ALIGN float ws[4 * 4 * kJ];
  const auto tile = [&](std::size_t i, auto qt) {
    constexpr std::size_t QT = decltype(qt)::value;
    // chunks per pass (QT x NC accumulators) and blocks per pass (when a block has fewer)
    constexpr std::size_t NC = QT <= 2 ? 8 : 4, BP = CB >= NC ? 1 : NC / CB;
    static_assert(CB >= NC ? CB % NC == 0 : NC % CB == 0);
    static_assert(!R::kScaled || BP * QT <= 16);
    const float* wr = w + i * w_stride;
    float* o = out + i * dim;
    for (std::size_t j0 = 0; j0 < n_values; j0 += kJ) {
      const std::size_t nj = std::min(kJ, n_values - j0);
      const char* rows = base + j0 * value_stride;
      const std::size_t row_bytes = nb * sizeof(block), n_left = n_values - j0;
      for (std::size_t b = 0; b < nb; b += BP) {
        const std::size_t bp = std::min(BP, nb - b);
        // the weights of blocks b .. b + bp - 1: w_rj * scale (ws[(bo * QT + r) * kJ + j]), or
        // w itself
        const float* wt = wr + j0;
        std::size_t bs = 0, rs = w_stride;
        if constexpr (R::kScaled) {
          // the scales of a block's rows, then 16 products per multiply (the same f32 products)
          HWY_ALIGN float sc[kJ];
          for (std::size_t bo = 0; bo < bp; ++bo) {
            for (std::size_t j = 0; j < nj; ++j)
              sc[j] = R::scale(reinterpret_cast<const block*>(rows + j * value_stride)[b + bo]);
            for (std::size_t r = 0; r < QT; ++r) {
              const float* src = wr + r * w_stride + j0;
              float* dst = ws + (bo * QT + r) * kJ;
              std::size_t j = 0;
              for (; j + 16 <= nj; j += 16)
                _mm512_store_ps(dst + j,
                                _mm512_mul_ps(_mm512_loadu_ps(src + j), _mm512_load_ps(sc + j)));
              for (; j < nj; ++j) dst[j] = src[j] * sc[j];
            }
          }
          wt = ws, bs = QT * kJ, rs = kJ;
        }
        if constexpr (CB >= NC) {
          [&]<std::size_t... Ps>(std::index_sequence<Ps...>) {
            (zmm_axpy_pass<Codec, QT, Ps * NC, NC, kTileSums>(wt, bs, rs, nj, rows, value_stride, b,
                                                              t, o, dim, b == 0 && Ps == 0, n_left,
                                                              row_bytes),
             ...);
          }
          (std::make_index_sequence<CB / NC>{});
        } else if (bp == BP) {
          zmm_axpy_pass<Codec, QT, 0, NC, kTileSums>(wt, bs, rs, nj, rows, value_stride, b, t, o,
                                                     dim, b == 0, n_left, row_bytes);
        } else {  // the last blocks of a row, one at a time
          for (std::size_t bo = 0; bo < bp; ++bo)
            zmm_axpy_pass<Codec, QT, 0, CB, kTileSums>(wt + bo * bs, bs, rs, nj, rows, value_stride,
                                                       b + bo, t, o, dim, b + bo == 0, n_left,
                                                       row_bytes);
        }
      }
    }
  };
  for_query_tiles(n_q, tile);
}

// fused_axpy's order: one chain per element through all rows from zero, then added to out.
template <class Codec>
HWY_INLINE void zmm_axpy_chain(const float* w, std::size_t n_q, std::size_t w_stride,
                               const void* values, std::size_t value_stride, std::size_t n_values,
                               std::size_t dim, float* out) {
  auto acc = hwy::AllocateAligned<float>(n_q * dim);
  std::memset(acc.get(), 0, n_q * dim * sizeof(float));
  zmm_axpy<Codec, false>(w, n_q, w_stride, values, value_stride, n_values, dim, acc.get());
  for (std::size_t i = 0; i < n_q * dim; ++i) out[i] += acc[i];
}
#endif  // AVX3

}  // namespace strata::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();
