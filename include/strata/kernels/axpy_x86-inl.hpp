// The register-blocked value drivers (x86 AVX2 / AVX3), per Highway target.
// For decode attention the value rows of a key tile are many and the query rows few (a GQA
// group): acc_i += sum_j w_ij * value_j runs per pass over a slice of the block (4 chunks of 8
// values) with the accumulators of every query row of the tile in registers across all value
// rows, so out is loaded and stored once per 64 rows instead of once per row. Values are exact
// f32 (int8 values converted, or the f32 codebook looked up with vpermps: turbo2/3 one
// lookup per 8 values, turbo4 two and a blend), each chunk in natural element order.
// lane_axpy drives any lane_reading codec, plane_axpy any plane_reading one (roles-inl.hpp).
// A fragment of kernels-inl.hpp.

HWY_BEFORE_NAMESPACE();
namespace strata::kernels::HWY_NAMESPACE {

#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
// ws[r * kJ + j] = w[r * w_stride + j0 + j] * scale(block b of row j) for the nj rows of a
// 64-row tile (rows = its first row); at b == 0 it also prefetches the next tile's rows.
template <std::size_t QT, std::size_t kJ, class Codec, class Scale>
HWY_INLINE void tile_weights(const float* w, std::size_t w_stride, std::size_t j0, std::size_t nj,
                             std::size_t n_values, const char* rows, std::size_t value_stride,
                             std::size_t b, std::size_t nb, Scale&& scale, float* ws) {
  using block = typename Codec::block;
  for (std::size_t j = 0; j < nj; ++j) {
    if (b == 0)
      prefetch_ahead(rows, j + kJ - kPrefetchRows, n_values - j0, value_stride, nb * sizeof(block));
    const float s = scale(reinterpret_cast<const block*>(rows + j * value_stride)[b]);
    for (std::size_t r = 0; r < QT; ++r) ws[r * kJ + j] = w[r * w_stride + j0 + j] * s;
  }
}

// One pass of QT query rows over nj value rows: chunks C0 .. C0 + NC - 1 of pass p of block b.
// ws[r * kJ + j] = w_rj * scale_j.
template <std::size_t QT, std::size_t kJ, class Codec, std::size_t C0, std::size_t NC>
HWY_INLINE void lane_axpy_pass(const float* ws, std::size_t nj, const char* base,
                               std::size_t value_stride, std::size_t b, std::size_t p,
                               const typename lane_reader<Codec>::tables& t, float* out,
                               std::size_t dim) {
  using R = lane_reader<Codec>;
  using block = typename Codec::block;
  __m256 acc[QT][NC];
  for (std::size_t r = 0; r < QT; ++r)
    for (std::size_t c = 0; c < NC; ++c) acc[r][c] = _mm256_setzero_ps();
  for (std::size_t j = 0; j < nj; ++j) {
    const block& blk = reinterpret_cast<const block*>(base + j * value_stride)[b];
    [&]<std::size_t... Cs>(std::index_sequence<Cs...>) {
      (([&] {
         const __m256 v = R::template chunk<C0 + Cs>(t, blk, p);
         for (std::size_t r = 0; r < QT; ++r)
           acc[r][Cs] = _mm256_fmadd_ps(v, _mm256_broadcast_ss(ws + r * kJ + j), acc[r][Cs]);
       }()),
       ...);
    }
    (std::make_index_sequence<NC>{});
  }
  constexpr std::size_t V = Codec::block_values;
  for (std::size_t r = 0; r < QT; ++r)
    for (std::size_t c = 0; c < NC; ++c) {
      float* o = out + r * dim + b * V + R::pos(p, C0 + c);
      _mm256_storeu_ps(o, _mm256_add_ps(_mm256_loadu_ps(o), acc[r][c]));
    }
}

template <class Codec>
HWY_INLINE void lane_axpy(const float* w, std::size_t n_q, std::size_t w_stride, const void* values,
                          std::size_t value_stride, std::size_t n_values, std::size_t dim,
                          float* out) {
  static_assert(require<lane_reading<Codec>>(role::lane_reader));
  using R = lane_reader<Codec>;
  using block = typename Codec::block;
  constexpr std::size_t V = Codec::block_values, kJ = 64;
  const std::size_t nb = dim / V;
  const typename R::tables t;
  const char* base = static_cast<const char*>(values);
  HWY_ALIGN float ws[4 * kJ];
  // 1-3 rows: a pass holds QT x 4 chunks of accumulators (with the chunk temporaries, the 16
  // vector registers); 4 rows (four_rows readers): two half passes of 2 chunks (4 x 2).
  const auto tile = [&](std::size_t i, auto qt) {
    constexpr std::size_t QT = decltype(qt)::value;
    const float* wr = w + i * w_stride;
    float* o = out + i * dim;
    for (std::size_t j0 = 0; j0 < n_values; j0 += kJ) {
      const std::size_t nj = std::min(kJ, n_values - j0);
      const char* rows = base + j0 * value_stride;
      for (std::size_t b = 0; b < nb; ++b) {
        tile_weights<QT, kJ, Codec>(
            wr, w_stride, j0, nj, n_values, rows, value_stride, b, nb,
            [](const block& x) { return f32_reader<Codec>::scale(x); }, ws);
        for (std::size_t p = 0; p < R::kPasses; ++p) {
          if constexpr (QT == 4) {
            lane_axpy_pass<QT, kJ, Codec, 0, 2>(ws, nj, rows, value_stride, b, p, t, o, dim);
            lane_axpy_pass<QT, kJ, Codec, 2, 2>(ws, nj, rows, value_stride, b, p, t, o, dim);
          } else {
            lane_axpy_pass<QT, kJ, Codec, 0, 4>(ws, nj, rows, value_stride, b, p, t, o, dim);
          }
        }
      }
    }
  };
  for_query_tiles<R::four_rows ? 4 : 3>(n_q, tile);
}

// turbo2/3 with groups of 128, by planes: the block's 32 low-plane bytes are read as 8 x u32
// (lane l = bytes 4l .. 4l + 3), so one load holds the 2-bit indices of all 128 values. For
// plane c, w_c = lo >> 2c (turbo3: the low two bits of each byte masked, bit 2 = the element's
// high bit); chunk k = w_c >> 8k looked up with vpermps (which reads bits 0-2 of each lane)
// holds elements 32c + 4l + k. A plane's 4 chunks are accumulated over the value rows of a
// tile and transposed (4 x 8) once per 64 rows into elements 32c .. 32c + 31. One vpermps per 8
// values as lane_reader, but the index extraction is shared by a plane's 4 chunks instead of
// done per chunk.
// Chunks K0 .. K0 + NK - 1 of plane C of block b, QT rows over nj value rows, added to
// acc_out[r][k] (8 floats each).
template <std::size_t QT, std::size_t kJ, class Codec, std::size_t C, std::size_t K0,
          std::size_t NK>
HWY_INLINE void plane_axpy_pass(const float* ws, std::size_t nj, const char* rows,
                                std::size_t value_stride, std::size_t b,
                                const typename plane_reader<Codec>::tables& t,
                                float (*acc_out)[4][8]) {
  using R = plane_reader<Codec>;
  using block = typename Codec::block;
  __m256 acc[QT][NK];
  for (std::size_t r = 0; r < QT; ++r)
    for (std::size_t k = 0; k < NK; ++k) acc[r][k] = _mm256_setzero_ps();
  for (std::size_t j = 0; j < nj; ++j) {
    const block& blk = reinterpret_cast<const block*>(rows + j * value_stride)[b];
    const __m256i w = R::template word<C>(t, blk);
    // plain unrolled loops (no lambdas): GCC 12 keeps the accumulators in registers then
#pragma GCC unroll 4
    for (std::size_t k = 0; k < NK; ++k) {
      const __m256 v = R::chunk(t, w, K0 + k);
#pragma GCC unroll 4
      for (std::size_t r = 0; r < QT; ++r)
        acc[r][k] = _mm256_fmadd_ps(v, _mm256_broadcast_ss(ws + r * kJ + j), acc[r][k]);
    }
  }
  for (std::size_t r = 0; r < QT; ++r)
    for (std::size_t k = 0; k < NK; ++k) _mm256_store_ps(acc_out[r][K0 + k], acc[r][k]);
}

// o[0 .. 32) += the 4 x 8 transpose of a[k][l] (element 4l + k).
HWY_INLINE void plane_store(const float (*a)[8], float* o) {
  const __m256 a0 = _mm256_load_ps(a[0]), a1 = _mm256_load_ps(a[1]);
  const __m256 a2 = _mm256_load_ps(a[2]), a3 = _mm256_load_ps(a[3]);
  const __m256 u0 = _mm256_unpacklo_ps(a0, a1), u1 = _mm256_unpackhi_ps(a0, a1);
  const __m256 u2 = _mm256_unpacklo_ps(a2, a3), u3 = _mm256_unpackhi_ps(a2, a3);
  const __m256 t0 = _mm256_shuffle_ps(u0, u2, 0x44), t1 = _mm256_shuffle_ps(u0, u2, 0xEE);
  const __m256 t2 = _mm256_shuffle_ps(u1, u3, 0x44), t3 = _mm256_shuffle_ps(u1, u3, 0xEE);
  const __m256 m[4] = {_mm256_permute2f128_ps(t0, t1, 0x20), _mm256_permute2f128_ps(t2, t3, 0x20),
                       _mm256_permute2f128_ps(t0, t1, 0x31), _mm256_permute2f128_ps(t2, t3, 0x31)};
  for (std::size_t i = 0; i < 4; ++i)
    _mm256_storeu_ps(o + 8 * i, _mm256_add_ps(_mm256_loadu_ps(o + 8 * i), m[i]));
}

template <class Codec>
HWY_INLINE void plane_axpy(const float* w, std::size_t n_q, std::size_t w_stride,
                           const void* values, std::size_t value_stride, std::size_t n_values,
                           std::size_t dim, float* out) {
  static_assert(require<plane_reading<Codec>>(role::plane_reader));
  using block = typename Codec::block;
  constexpr std::size_t V = Codec::block_values, kJ = 64;
  const std::size_t nb = dim / V;
  const typename plane_reader<Codec>::tables t;
  const char* base = static_cast<const char*>(values);
  HWY_ALIGN float ws[4 * kJ];
  HWY_ALIGN float acc[4][4][8];
  // AVX2 (16 registers): 4 rows run each plane in two halves of 2 chunks (4 x 2 accumulators);
  // 1-3 rows, and AVX3 (32 registers), all 4 chunks at once.
  const auto tile = [&](std::size_t i, auto qt) {
    constexpr std::size_t QT = decltype(qt)::value;
    const float* wr = w + i * w_stride;
    float* o = out + i * dim;
    constexpr bool halves = QT == 4 && HWY_TARGET == HWY_AVX2;
    for (std::size_t j0 = 0; j0 < n_values; j0 += kJ) {
      const std::size_t nj = std::min(kJ, n_values - j0);
      const char* rows = base + j0 * value_stride;
      for (std::size_t b = 0; b < nb; ++b) {
        tile_weights<QT, kJ, Codec>(
            wr, w_stride, j0, nj, n_values, rows, value_stride, b, nb,
            [](const block& x) { return f32_reader<Codec>::scale(x); }, ws);
        [&]<std::size_t... Cs>(std::index_sequence<Cs...>) {
          (([&] {
             if constexpr (halves) {
               plane_axpy_pass<QT, kJ, Codec, Cs, 0, 2>(ws, nj, rows, value_stride, b, t, acc);
               // a compiler barrier: the first half's sums go to acc now instead of staying
               // in registers through the second half (where GCC 12 then spills in the loop)
               asm volatile("" : : "r"(&acc[0][0][0]) : "memory");
               plane_axpy_pass<QT, kJ, Codec, Cs, 2, 2>(ws, nj, rows, value_stride, b, t, acc);
             } else {
               plane_axpy_pass<QT, kJ, Codec, Cs, 0, 4>(ws, nj, rows, value_stride, b, t, acc);
             }
             for (std::size_t r = 0; r < QT; ++r)
               plane_store(acc[r], o + r * dim + b * V + 32 * Cs);
           }()),
           ...);
        }
        (std::make_index_sequence<4>{});
      }
    }
  };
  for_query_tiles(n_q, tile);
}
#endif  // x86 AVX2 / AVX3

}  // namespace strata::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();
