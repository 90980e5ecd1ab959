// The key-tile scan kernels (strata/codec/key_tile.hpp: 32 rows per tile, bytes transposed),
// per Highway target: tile_dot, the scores of float queries looked up in per-query tables of
// products ("fast scan"), and tile_axpy, the V product one dimension at a time over 32 rows.
// strata/kernels/tile_scan.hpp has the scalar reference and the definition of each step; the
// x86 AVX2/AVX3 kernels below perform its operations (integer sums exact, each float step one
// fma in its order) and give its bits; other targets run the reference for now. A fragment of
// kernels-inl.hpp.

HWY_BEFORE_NAMESPACE();
namespace strata::kernels::HWY_NAMESPACE {

#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
// One query tile (QT rows) of tile_dot over the tiles t0 .. t1; scores of keys outside
// [first, first + n_keys) are not written.
template <std::size_t QT, class Codec>
HWY_INLINE void tile_dot_rows(const std::uint8_t* lut, const float* bias, const float* delta,
                              std::size_t dim, const unsigned char* base, std::size_t first,
                              std::size_t n_keys, float* scores, std::size_t score_stride) {
  using geo = strata::detail::tile_geometry<Codec>;
  constexpr std::size_t G = Codec::block_values, H = G / 2;
  const std::size_t nb = dim / G, tile_bytes = geo::block_tile_bytes * nb;
  const std::size_t t0 = first / tile_rows, t1 = (first + n_keys - 1) / tile_rows;
  const __m256i nib = _mm256_set1_epi8(0x0f);
  for (std::size_t t = t0; t <= t1; ++t) {
    const unsigned char* tb = base + t * tile_bytes;
    HWY_ALIGN float buf[QT][tile_rows];
    for (std::size_t b = 0; b < nb; ++b, tb += geo::block_tile_bytes) {
      // u16 lane sums of the looked-up bytes: a = even + 256 odd (mod 2^16), c = odd rows'
      __m256i a[QT], c[QT];
      for (std::size_t r = 0; r < QT; ++r) a[r] = c[r] = _mm256_setzero_si256();
      const unsigned char* codes = tb + geo::index_at(0, 0);
#pragma GCC unroll 4
      for (std::size_t e = 0; e < H; ++e) {
        const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(codes + 32 * e));
        const __m256i lo = _mm256_and_si256(x, nib);
        const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(x, 4), nib);
#pragma GCC unroll 4
        for (std::size_t r = 0; r < QT; ++r) {
          const std::uint8_t* L = lut + (r * dim + b * G + e) * 16;
          const __m256i r1 = _mm256_shuffle_epi8(
              _mm256_broadcastsi128_si256(_mm_load_si128(reinterpret_cast<const __m128i*>(L))), lo);
          const __m256i r2 = _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(_mm_load_si128(
                                                     reinterpret_cast<const __m128i*>(L + H * 16))),
                                                 hi);
          a[r] = _mm256_add_epi16(_mm256_add_epi16(a[r], r1), r2);
          c[r] = _mm256_add_epi16(c[r],
                                  _mm256_add_epi16(_mm256_srli_epi16(r1, 8), _mm256_srli_epi16(r2, 8)));
        }
      }
      // scales of rows 0-7, 8-15, 16-23, 24-31
      __m256 s[4];
      for (std::size_t k = 0; k < 4; ++k)
        s[k] = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(tb + 16 * k)));
#pragma GCC unroll 4
      for (std::size_t r = 0; r < QT; ++r) {
        const __m256i even = _mm256_sub_epi16(a[r], _mm256_slli_epi16(c[r], 8));
        const __m256i lo = _mm256_unpacklo_epi16(even, c[r]);  // rows 0-7 | 16-23
        const __m256i hi = _mm256_unpackhi_epi16(even, c[r]);  // rows 8-15 | 24-31
        const __m128i part[4] = {_mm256_castsi256_si128(lo), _mm256_castsi256_si128(hi),
                                 _mm256_extracti128_si256(lo, 1), _mm256_extracti128_si256(hi, 1)};
        const __m256 dv = _mm256_set1_ps(delta[r]), bv = _mm256_set1_ps(bias[r * nb + b]);
        for (std::size_t k = 0; k < 4; ++k) {
          const __m256 tv = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepu16_epi32(part[k])), dv, bv);
          float* p = buf[r] + 8 * k;
          _mm256_store_ps(p, b == 0 ? _mm256_mul_ps(s[k], tv)
                                    : _mm256_fmadd_ps(s[k], tv, _mm256_load_ps(p)));
        }
      }
    }
    // rows of this tile inside the call
    const std::size_t j0 = t * tile_rows;
    const std::size_t lo = std::max(first, j0), hi = std::min(first + n_keys, j0 + tile_rows);
    for (std::size_t r = 0; r < QT; ++r)
      std::memcpy(scores + r * score_stride + (lo - first), buf[r] + (lo - j0),
                  (hi - lo) * sizeof(float));
  }
}

// make_tile_query's tables for one query (lut: dim x 16 bytes, bias: one per block), its
// operations in SIMD: the same fma, multiply and rounding per entry (cvtps2dq rounds to nearest
// even as nearbyint; the two unsigned packs clamp to 0 .. 255), the bias fma chain in order.
template <class Codec>
HWY_INLINE float tile_query_x86(const float* q, std::size_t dim, std::uint8_t* lut, float* bias) {
  using traits = turbo_traits<Codec>;
  constexpr std::size_t G = Codec::block_values;
  HWY_ALIGN static constexpr auto kCb = traits::codebook();
  constexpr float lo_c = kCb.front(), hi_c = kCb.back();
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  __m256 mv = _mm256_setzero_ps();
  for (std::size_t d = 0; d < dim; d += 8)
    mv = _mm256_max_ps(_mm256_and_ps(_mm256_loadu_ps(q + d), abs_mask), mv);  // NaN: ignored
  __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(mv), _mm256_extractf128_ps(mv, 1));
  m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
  m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
  const float range = _mm_cvtss_f32(m4) * (hi_c - lo_c);
  const float inv = range > 0.0f && std::isfinite(range) ? 255.0f / range : 0.0f;
  const __m256 c0 = _mm256_load_ps(kCb.data()), c1 = _mm256_load_ps(kCb.data() + 8);
  const __m256 iv = _mm256_set1_ps(inv);
  for (std::size_t b = 0; b < dim / G; ++b) bias[b] = 0.0f;
  for (std::size_t d = 0; d < dim; ++d) {
    const float qd = q[d];
    const float c = qd >= 0.0f ? lo_c : hi_c;
    const float lo = qd * c;
    bias[d / G] = std::fma(qd, c, bias[d / G]);
    const __m256 qv = _mm256_set1_ps(qd), nl = _mm256_set1_ps(-lo);
    const __m256i v0 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_fmadd_ps(qv, c0, nl), iv));
    const __m256i v1 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_fmadd_ps(qv, c1, nl), iv));
    const __m256i w = _mm256_packus_epi32(v0, v1);  // (0-3, 8-11 | 4-7, 12-15) as u16
    const __m128i u = _mm_packus_epi16(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1));
    // bytes 0-3, 8-11, 4-7, 12-15 -> in order
    _mm_store_si128(reinterpret_cast<__m128i*>(lut + d * 16), _mm_shuffle_epi32(u, 0xD8));
  }
  return range / 255.0f;
}

template <class Codec>
HWY_INLINE void tile_dot_x86(const float* q, std::size_t n_q, std::size_t dim, const void* tiles,
                             std::size_t first, std::size_t n_keys, float* scores,
                             std::size_t score_stride) {
  constexpr std::size_t G = Codec::block_values;
  const std::size_t nb = dim / G;
  auto lut = hwy::AllocateAligned<std::uint8_t>(n_q * dim * 16);
  auto bias = hwy::AllocateAligned<float>(n_q * nb);
  auto delta = hwy::AllocateAligned<float>(n_q);
  for (std::size_t i = 0; i < n_q; ++i)
    delta[i] = tile_query_x86<Codec>(q + i * dim, dim, lut.get() + i * dim * 16, bias.get() + i * nb);
  const auto* base = static_cast<const unsigned char*>(tiles);
  for_query_tiles(n_q, [&](std::size_t i, auto qt) {
    tile_dot_rows<decltype(qt)::value, Codec>(lut.get() + i * dim * 16, bias.get() + i * nb,
                                              delta.get() + i, dim, base, first, n_keys,
                                              scores + i * score_stride, score_stride);
  });
}

// One query tile (QT rows) of tile_axpy over the tiles of [first, first + n): the lane sums
// of each element in facc (QT x dim x 8 floats, zeroed by the caller).
template <std::size_t QT, class Codec>
HWY_INLINE void tile_axpy_rows(const float* w, std::size_t w_stride, const unsigned char* base,
                               std::size_t first, std::size_t n, std::size_t dim, float* facc) {
  using geo = strata::detail::tile_geometry<Codec>;
  using traits = turbo_traits<Codec>;
  constexpr std::size_t G = Codec::block_values, H = G / 2;
  const std::size_t nb = dim / G, tile_bytes = geo::block_tile_bytes * nb;
  const std::size_t t0 = first / tile_rows, t1 = (first + n - 1) / tile_rows;
  HWY_ALIGN static constexpr auto kCb = traits::codebook_i8();
  const __m256i table = _mm256_broadcastsi128_si256(_mm_load_si128(reinterpret_cast<const __m128i*>(kCb.data())));
  const __m256i nib = _mm256_set1_epi8(0x0f);
  const __m256 unit = _mm256_set1_ps(traits::unit);
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  HWY_ALIGN float wpad[QT][tile_rows];
  for (std::size_t t = t0; t <= t1; ++t) {
    const std::size_t j0 = t * tile_rows;
    const std::size_t lo = std::max(first, j0), hi = std::min(first + n, j0 + tile_rows);
    // the rows' weights (zero outside the call)
    const float* wr[QT];
    const bool whole = lo == j0 && hi == j0 + tile_rows;
    HWY_ALIGN float keep[tile_rows];  // all-ones bits for the rows inside the call, else 0
    if (!whole)
      for (std::size_t k = 0; k < tile_rows; ++k) {
        const std::uint32_t bits = j0 + k >= lo && j0 + k < hi ? 0xFFFFFFFFu : 0u;
        std::memcpy(&keep[k], &bits, 4);
      }
    for (std::size_t r = 0; r < QT; ++r) {
      if (whole) {
        wr[r] = w + r * w_stride + (j0 - first);
      } else {
        for (std::size_t k = 0; k < tile_rows; ++k)
          wpad[r][k] = j0 + k >= lo && j0 + k < hi ? w[r * w_stride + (j0 + k - first)] : 0.0f;
        wr[r] = wpad[r];
      }
    }
    const unsigned char* tb = base + t * tile_bytes;
    for (std::size_t b = 0; b < nb; ++b, tb += geo::block_tile_bytes) {
      __m256 f[4];
      for (std::size_t k = 0; k < 4; ++k)
        f[k] = _mm256_mul_ps(
            _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(tb + 16 * k))), unit);
      // rows outside the call: factor 0 (whatever their bytes hold: x = 0, as the reference)
      if (!whole)
        for (std::size_t k = 0; k < 4; ++k) f[k] = _mm256_and_ps(f[k], _mm256_load_ps(keep + 8 * k));
      // step 1: the weights times the factors, quantized (int8, element order), per row
      __m256i wq[QT], wn[QT];
      __m256 dq[QT];
      bool neg = false;
      for (std::size_t r = 0; r < QT; ++r) {
        __m256 x[4];
        __m256 mx = _mm256_setzero_ps(), sg = _mm256_setzero_ps();
        for (std::size_t k = 0; k < 4; ++k) {
          x[k] = _mm256_mul_ps(_mm256_loadu_ps(wr[r] + 8 * k), f[k]);
          mx = _mm256_max_ps(mx, _mm256_and_ps(x[k], abs_mask));
          sg = _mm256_or_ps(sg, x[k]);
        }
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(mx), _mm256_extractf128_ps(mx, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        const float m = _mm_cvtss_f32(m4);
        const __m256 inv = _mm256_set1_ps(m > 0.0f ? 127.0f / m : 0.0f);
        __m256i v[4];
        for (std::size_t k = 0; k < 4; ++k) v[k] = _mm256_cvtps_epi32(_mm256_mul_ps(x[k], inv));
        const __m256i p8 =
            _mm256_packs_epi16(_mm256_packs_epi32(v[0], v[1]), _mm256_packs_epi32(v[2], v[3]));
        wq[r] = _mm256_permutevar8x32_epi32(p8, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        dq[r] = _mm256_set1_ps(m / 127.0f);
        neg = neg || _mm256_movemask_ps(sg) != 0;
      }
      // Weights >= 0 (softmax weights): pmaddubsw of the weights (unsigned) and the signed
      // 7-bit codes. Else the positive and negative parts apart (the same exact sums).
      if (neg)
        for (std::size_t r = 0; r < QT; ++r) {
          const __m256i p = _mm256_max_epi8(wq[r], _mm256_setzero_si256());
          wn[r] = _mm256_sub_epi8(p, wq[r]);
          wq[r] = p;
        }
      const unsigned char* codes = tb + geo::index_at(0, 0);
      float* fb = facc + b * G * 8;
#pragma GCC unroll 2
      for (std::size_t e = 0; e < H; ++e) {
        const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(codes + 32 * e));
        const __m256i cl = _mm256_shuffle_epi8(table, _mm256_and_si256(x, nib));
        const __m256i ch =
            _mm256_shuffle_epi8(table, _mm256_and_si256(_mm256_srli_epi16(x, 4), nib));
#pragma GCC unroll 4
        for (std::size_t r = 0; r < QT; ++r) {
          __m256i pl = madd1(maddubs(wq[r], cl)), ph = madd1(maddubs(wq[r], ch));
          if (neg) {
            pl = _mm256_sub_epi32(pl, madd1(maddubs(wn[r], cl)));
            ph = _mm256_sub_epi32(ph, madd1(maddubs(wn[r], ch)));
          }
          float* al = fb + r * dim * 8 + e * 8;
          float* ah = al + H * 8;
          _mm256_store_ps(al, _mm256_fmadd_ps(_mm256_cvtepi32_ps(pl), dq[r], _mm256_load_ps(al)));
          _mm256_store_ps(ah, _mm256_fmadd_ps(_mm256_cvtepi32_ps(ph), dq[r], _mm256_load_ps(ah)));
        }
      }
    }
  }
}

template <class Codec>
HWY_INLINE void tile_axpy_x86(const float* w, std::size_t n_q, std::size_t w_stride,
                              const void* tiles, std::size_t first, std::size_t n,
                              std::size_t dim, float* out) {
  if (n == 0) return;
  auto facc = hwy::AllocateAligned<float>(n_q * dim * 8);
  std::memset(facc.get(), 0, n_q * dim * 8 * sizeof(float));
  const auto* base = static_cast<const unsigned char*>(tiles);
  for_query_tiles(n_q, [&](std::size_t i, auto qt) {
    tile_axpy_rows<decltype(qt)::value, Codec>(w + i * w_stride, w_stride, base, first, n, dim,
                                               facc.get() + i * dim * 8);
  });
  // out += ((a0 + a4) + (a2 + a6)) + ((a1 + a5) + (a3 + a7)) per element
  for (std::size_t i = 0; i < n_q * dim; ++i) {
    const __m256 a = _mm256_load_ps(facc.get() + i * 8);
    const __m128 t = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    const __m128 u = _mm_add_ps(t, _mm_movehl_ps(t, t));
    out[i] += _mm_cvtss_f32(_mm_add_ss(u, _mm_movehdup_ps(u)));
  }
}
#endif

template <class Codec>
HWY_INLINE void scan_dot(const float* q, std::size_t n_q, std::size_t dim, const void* tiles,
                         std::size_t first, std::size_t n_keys, float* scores,
                         std::size_t score_stride) {
  if (n_keys == 0 || n_q == 0) return;
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
  tile_dot_x86<Codec>(q, n_q, dim, tiles, first, n_keys, scores, score_stride);
#else
  tile_dot_reference<Codec>(q, n_q, dim, tiles, first, n_keys, scores, score_stride);
#endif
}

template <class Codec>
HWY_INLINE void scan_axpy(const float* w, std::size_t n_q, std::size_t w_stride, const void* tiles,
                          std::size_t first, std::size_t n_values, std::size_t dim, float* out) {
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
  tile_axpy_x86<Codec>(w, n_q, w_stride, tiles, first, n_values, dim, out);
#else
  tile_axpy_reference<Codec>(w, n_q, w_stride, tiles, first, n_values, dim, out);
#endif
}

}  // namespace strata::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();
