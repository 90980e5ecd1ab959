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
// make_tile_query's tables for one query (its 16 bytes per dimension d at lut + d * stride;
// bias: one per block), its operations in SIMD: the same fma, multiply and rounding per entry
// (cvtps2dq rounds to nearest even as nearbyint; the two unsigned packs clamp to 0 .. 255), the
// bias fma chain in order. Returns delta.
template <class Codec>
HWY_INLINE float tile_query_x86(const float* q, std::size_t dim, std::uint8_t* lut,
                                std::size_t stride, float* bias) {
  using traits = turbo_traits<Codec>;
  constexpr std::size_t G = Codec::block_values;
  HWY_ALIGN static constexpr auto kCb = traits::codebook();
  constexpr float lo_c = kCb.front(), hi_c = kCb.back();
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  __m256 mv = _mm256_setzero_ps();
  for (std::size_t d = 0; d < dim; d += 8)
    mv = _mm256_max_ps(_mm256_and_ps(_mm256_loadu_ps(q + d), abs_mask), mv);  // NaN: ignored
  const float range = max_of_lanes(mv) * (hi_c - lo_c);
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
    _mm_store_si128(reinterpret_cast<__m128i*>(lut + d * stride), _mm_shuffle_epi32(u, 0xD8));
  }
  return range / 255.0f;
}

// tile_dot for QT query rows: their tables interleaved (dimension d of row r at
// lut + (d * QT + r) * 16), bias[r * nb + b], delta[r]. Scores of keys outside [first, first +
// n_keys) are not written.
template <std::size_t QT, class Codec>
HWY_INLINE void tile_dot_rows(const float* q, std::size_t dim, const unsigned char* base,
                              std::size_t first, std::size_t n_keys, float* scores,
                              std::size_t score_stride) {
  using geo = strata::detail::tile_geometry<Codec>;
  constexpr std::size_t G = Codec::block_values, H = G / 2;
  const std::size_t nb = dim / G, tile_bytes = geo::block_tile_bytes * nb;
  auto lut = hwy::AllocateAligned<std::uint8_t>(QT * dim * 16);
  auto bias = hwy::AllocateAligned<float>(QT * nb);
  float delta[QT];
  for (std::size_t r = 0; r < QT; ++r)
    delta[r] =
        tile_query_x86<Codec>(q + r * dim, dim, lut.get() + r * 16, QT * 16, bias.get() + r * nb);
  const std::size_t t0 = first / tile_rows, t1 = (first + n_keys - 1) / tile_rows;
  const __m256i nib = _mm256_set1_epi8(0x0f);
  for (std::size_t t = t0; t <= t1; ++t) {
    const unsigned char* tb = base + t * tile_bytes;
    const std::size_t j0 = t * tile_rows;
    const std::size_t lo = std::max(first, j0), hi = std::min(first + n_keys, j0 + tile_rows);
    // a whole tile of one block: the scores straight to their rows
    const bool direct = nb == 1 && lo == j0 && hi == j0 + tile_rows;
    HWY_ALIGN float buf[QT][tile_rows];
    for (std::size_t b = 0; b < nb; ++b, tb += geo::block_tile_bytes) {
      // u16 lane sums of the looked-up bytes: a = even + 256 odd (mod 2^16), c = odd rows'
      __m256i a[QT], c[QT];
      for (std::size_t r = 0; r < QT; ++r) a[r] = c[r] = _mm256_setzero_si256();
      const unsigned char* codes = tb + geo::index_at(0, 0);
      const std::uint8_t* L = lut.get() + b * G * QT * 16;
      // two index bytes (rows of 32) per step: each accumulator updated once per step (with one
      // update per lookup GCC copied every accumulator to another register each step)
      static_assert(H % 2 == 0);
      for (std::size_t e = 0; e < H; e += 2) {
        const __m256i x0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(codes + 32 * e));
        const __m256i x1 =
            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(codes + 32 * e + 32));
        const __m256i l0 = _mm256_and_si256(x0, nib), l1 = _mm256_and_si256(x1, nib);
        const __m256i h0 = _mm256_and_si256(_mm256_srli_epi16(x0, 4), nib);
        const __m256i h1 = _mm256_and_si256(_mm256_srli_epi16(x1, 4), nib);
        const std::uint8_t* Le = L + e * QT * 16;
        const auto look = [&](std::size_t off, __m256i ix) {
          return _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(_mm_load_si128(
                                         reinterpret_cast<const __m128i*>(Le + off))),
                                     ix);
        };
#pragma GCC unroll 4
        for (std::size_t r = 0; r < QT; ++r) {
          const __m256i r1 = look(r * 16, l0), r2 = look((H * QT + r) * 16, h0);
          const __m256i r3 = look((QT + r) * 16, l1), r4 = look(((H + 1) * QT + r) * 16, h1);
          a[r] = _mm256_add_epi16(
              a[r], _mm256_add_epi16(_mm256_add_epi16(r1, r2), _mm256_add_epi16(r3, r4)));
          c[r] = _mm256_add_epi16(
              c[r], _mm256_add_epi16(
                        _mm256_add_epi16(_mm256_srli_epi16(r1, 8), _mm256_srli_epi16(r2, 8)),
                        _mm256_add_epi16(_mm256_srli_epi16(r3, 8), _mm256_srli_epi16(r4, 8))));
        }
      }
      // scales of rows 0-7, 8-15, 16-23, 24-31
      __m256 s[4];
      for (std::size_t k = 0; k < 4; ++k)
        s[k] = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(tb + 16 * k)));
#pragma GCC unroll 4
      for (std::size_t r = 0; r < QT; ++r) {
        const __m256i even = _mm256_sub_epi16(a[r], _mm256_slli_epi16(c[r], 8));
        const __m256i l8 = _mm256_unpacklo_epi16(even, c[r]);  // rows 0-7 | 16-23
        const __m256i h8 = _mm256_unpackhi_epi16(even, c[r]);  // rows 8-15 | 24-31
        const __m128i part[4] = {_mm256_castsi256_si128(l8), _mm256_castsi256_si128(h8),
                                 _mm256_extracti128_si256(l8, 1), _mm256_extracti128_si256(h8, 1)};
        const __m256 dv = _mm256_set1_ps(delta[r]), bv = _mm256_set1_ps(bias[r * nb + b]);
        float* out = direct ? scores + r * score_stride + (j0 - first) : buf[r];
        for (std::size_t k = 0; k < 4; ++k) {
          const __m256 tv =
              _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepu16_epi32(part[k])), dv, bv);
          if (direct)
            _mm256_storeu_ps(out + 8 * k, _mm256_mul_ps(s[k], tv));
          else
            _mm256_store_ps(out + 8 * k,
                            b == 0 ? _mm256_mul_ps(s[k], tv)
                                   : _mm256_fmadd_ps(s[k], tv, _mm256_load_ps(out + 8 * k)));
        }
      }
    }
    if (!direct)  // the rows of this tile inside the call
      for (std::size_t r = 0; r < QT; ++r)
        for (std::size_t j = lo; j < hi; ++j)
          scores[r * score_stride + (j - first)] = buf[r][j - j0];
  }
}

template <class Codec>
HWY_INLINE void tile_dot_x86(const float* q, std::size_t n_q, std::size_t dim, const void* tiles,
                             std::size_t first, std::size_t n_keys, float* scores,
                             std::size_t score_stride) {
  const auto* base = static_cast<const unsigned char*>(tiles);
  for_query_tiles(n_q, [&](std::size_t i, auto qt) {
    tile_dot_rows<decltype(qt)::value, Codec>(q + i * dim, dim, base, first, n_keys,
                                              scores + i * score_stride, score_stride);
  });
}

// The weights of one pair of tiles and block (rows outside the call: x = 0), quantized per query
// row with one scale over the pair's 64 rows (step 1 of tile_axpy): wq[u][r] in element order
// (tile u of the pair), dq[r] broadcast. Returns whether any weight times factor is negative.
template <std::size_t QT>
HWY_INLINE bool tile_weights_x86(const float* const (*wr)[QT], const __m256 (*f)[4],
                                 __m256i (*wq)[QT], __m256* dq) {
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  __m256 sg = _mm256_setzero_ps();
  for (std::size_t r = 0; r < QT; ++r) {
    __m256 x[2][4];
    __m256 mx = _mm256_setzero_ps();
    for (std::size_t u = 0; u < 2; ++u)
      for (std::size_t k = 0; k < 4; ++k) {
        x[u][k] = _mm256_mul_ps(_mm256_loadu_ps(wr[u][r] + 8 * k), f[u][k]);
        mx = _mm256_max_ps(mx, _mm256_and_ps(x[u][k], abs_mask));
        sg = _mm256_or_ps(sg, x[u][k]);
      }
    const float m = max_of_lanes(mx);
    const __m256 inv = _mm256_set1_ps(m > 0.0f ? 127.0f / m : 0.0f);
    for (std::size_t u = 0; u < 2; ++u) {
      __m256i v[4];
      for (std::size_t k = 0; k < 4; ++k) v[k] = _mm256_cvtps_epi32(_mm256_mul_ps(x[u][k], inv));
      wq[u][r] = pack_i32_to_i8(v);
    }
    dq[r] = _mm256_set1_ps(m / 127.0f);
  }
  return _mm256_movemask_ps(sg) != 0;
}

// Step 2 of tile_axpy for one block of the tiles the call touches in a pair (kTwo: both, codes
// c0 and c1 with weights wq[0], wq[1], their pair products added in 16 bits; else one, c0 with
// wq[0]): facc (element e of row r at (e * QT + r) * 8) += dq * float(lane sums). kNeg: weights
// of either sign (their positive parts wq and negative parts wn apart); else all >= 0, and
// pmaddubsw takes them as its unsigned operand against the signed 7-bit codes.
template <std::size_t QT, std::size_t H, bool kTwo, bool kNeg>
HWY_INLINE void tile_axpy_block(const unsigned char* c0, const unsigned char* c1, __m256i table,
                                const __m256i (*wq)[QT], const __m256i (*wn)[QT], const __m256* dq,
                                float* facc) {
  const __m256i nib = _mm256_set1_epi8(0x0f);
  const auto look = [&](const unsigned char* c, std::size_t e, __m256i& lo, __m256i& hi) {
    const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c + 32 * e));
    lo = _mm256_shuffle_epi8(table, _mm256_and_si256(x, nib));
    hi = _mm256_shuffle_epi8(table, _mm256_and_si256(_mm256_srli_epi16(x, 4), nib));
  };
  // the 16-bit pair sums of one row's weights w (per tile) against the codes
  const auto sums = [&](const __m256i(*ww)[QT], std::size_t r, __m256i l0, __m256i l1) {
    if constexpr (kTwo)
      return madd1(_mm256_add_epi16(maddubs(ww[0][r], l0), maddubs(ww[1][r], l1)));
    else
      return madd1(maddubs(ww[0][r], l0));
  };
#pragma GCC unroll 2
  for (std::size_t e = 0; e < H; ++e) {
    __m256i l0, h0, l1, h1;
    look(c0, e, l0, h0);
    if constexpr (kTwo)
      look(c1, e, l1, h1);
    else
      l1 = l0, h1 = h0;  // (unused)
    float* al = facc + e * QT * 8;
    float* ah = facc + (e + H) * QT * 8;
#pragma GCC unroll 4
    for (std::size_t r = 0; r < QT; ++r) {
      __m256i pl = sums(wq, r, l0, l1), ph = sums(wq, r, h0, h1);
      if constexpr (kNeg) {
        pl = _mm256_sub_epi32(pl, sums(wn, r, l0, l1));
        ph = _mm256_sub_epi32(ph, sums(wn, r, h0, h1));
      }
      _mm256_store_ps(al + 8 * r,
                      _mm256_fmadd_ps(_mm256_cvtepi32_ps(pl), dq[r], _mm256_load_ps(al + 8 * r)));
      _mm256_store_ps(ah + 8 * r,
                      _mm256_fmadd_ps(_mm256_cvtepi32_ps(ph), dq[r], _mm256_load_ps(ah + 8 * r)));
    }
  }
}

// tile_axpy for QT query rows: out (rows dim apart) += their weighted sums.
template <std::size_t QT, class Codec>
HWY_INLINE void tile_axpy_rows(const float* w, std::size_t w_stride, const unsigned char* base,
                               std::size_t first, std::size_t n, std::size_t dim, float* out) {
  using geo = strata::detail::tile_geometry<Codec>;
  using traits = turbo_traits<Codec>;
  constexpr std::size_t G = Codec::block_values, H = G / 2;
  const std::size_t nb = dim / G, tile_bytes = geo::block_tile_bytes * nb;
  const std::size_t t0 = first / tile_rows, t1 = (first + n - 1) / tile_rows;
  HWY_ALIGN static constexpr auto kCb = traits::codebook_i8();
  HWY_ALIGN static constexpr float kZeros[tile_rows] = {};
  const __m256i table =
      _mm256_broadcastsi128_si256(_mm_load_si128(reinterpret_cast<const __m128i*>(kCb.data())));
  const __m256 unit = _mm256_set1_ps(traits::unit);
  auto facc = hwy::AllocateAligned<float>(dim * QT * 8);  // element e, row r: (e * QT + r) * 8
  std::memset(facc.get(), 0, dim * QT * 8 * sizeof(float));
  HWY_ALIGN float wpad[2][QT][tile_rows];
  HWY_ALIGN float keep[2][tile_rows];  // all-ones bits for the rows inside the call, else 0
  for (std::size_t p = t0 / 2; p <= t1 / 2; ++p) {
    // the pair's tiles: in the call (t0 <= t <= t1), whole or partial; weights 0 outside
    const float* wr[2][QT];
    bool on[2], whole[2];
    for (std::size_t u = 0; u < 2; ++u) {
      const std::size_t t = 2 * p + u, j0 = t * tile_rows;
      on[u] = t >= t0 && t <= t1;
      const std::size_t lo = std::max(first, j0), hi = std::min(first + n, j0 + tile_rows);
      whole[u] = on[u] && lo == j0 && hi == j0 + tile_rows;
      for (std::size_t r = 0; r < QT; ++r) {
        if (!on[u]) {
          wr[u][r] = kZeros;
        } else if (whole[u]) {
          wr[u][r] = w + r * w_stride + (j0 - first);
        } else {
          for (std::size_t k = 0; k < tile_rows; ++k)
            wpad[u][r][k] = j0 + k >= lo && j0 + k < hi ? w[r * w_stride + (j0 + k - first)] : 0.0f;
          wr[u][r] = wpad[u][r];
        }
      }
      if (on[u] && !whole[u])
        for (std::size_t k = 0; k < tile_rows; ++k) {
          const std::uint32_t bits = j0 + k >= lo && j0 + k < hi ? 0xFFFFFFFFu : 0u;
          std::memcpy(&keep[u][k], &bits, 4);
        }
    }
    for (std::size_t b = 0; b < nb; ++b) {
      const unsigned char* tb[2];
      __m256 f[2][4];
      for (std::size_t u = 0; u < 2; ++u) {
        tb[u] = on[u] ? base + (2 * p + u) * tile_bytes + b * geo::block_tile_bytes : nullptr;
        for (std::size_t k = 0; k < 4; ++k) {
          if (!on[u]) {  // never read
            f[u][k] = _mm256_setzero_ps();
            continue;
          }
          f[u][k] = _mm256_mul_ps(
              _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(tb[u] + 16 * k))),
              unit);
          // rows outside the call: factor 0 (whatever their bytes hold: x = 0, as the reference)
          if (!whole[u]) f[u][k] = _mm256_and_ps(f[u][k], _mm256_load_ps(keep[u] + 8 * k));
        }
      }
      __m256i wq[2][QT], wn[2][QT];
      __m256 dq[QT];
      const bool neg = tile_weights_x86<QT>(wr, f, wq, dq);
      if (neg)
        for (std::size_t u = 0; u < 2; ++u)
          for (std::size_t r = 0; r < QT; ++r) {
            const __m256i pos = _mm256_max_epi8(wq[u][r], _mm256_setzero_si256());
            wn[u][r] = _mm256_sub_epi8(pos, wq[u][r]);
            wq[u][r] = pos;
          }
      const std::size_t at = geo::index_at(0, 0);
      float* fb = facc.get() + b * G * QT * 8;
      if (on[0] && on[1]) {
        if (neg)
          tile_axpy_block<QT, H, true, true>(tb[0] + at, tb[1] + at, table, wq, wn, dq, fb);
        else
          tile_axpy_block<QT, H, true, false>(tb[0] + at, tb[1] + at, table, wq, wn, dq, fb);
      } else {
        // one tile of the pair: its codes and weights in slot 0
        const std::size_t u = on[0] ? 0 : 1;
        if (u == 1)
          for (std::size_t r = 0; r < QT; ++r) {
            wq[0][r] = wq[1][r];
            if (neg) wn[0][r] = wn[1][r];
          }
        if (neg)
          tile_axpy_block<QT, H, false, true>(tb[u] + at, nullptr, table, wq, wn, dq, fb);
        else
          tile_axpy_block<QT, H, false, false>(tb[u] + at, nullptr, table, wq, wn, dq, fb);
      }
    }
  }
  // out += ((a0 + a4) + (a2 + a6)) + ((a1 + a5) + (a3 + a7)) per element
  for (std::size_t e = 0; e < dim; ++e)
    for (std::size_t r = 0; r < QT; ++r) {
      const __m256 a = _mm256_load_ps(facc.get() + (e * QT + r) * 8);
      const __m128 t = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
      const __m128 u = _mm_add_ps(t, _mm_movehl_ps(t, t));
      out[r * dim + e] += _mm_cvtss_f32(_mm_add_ss(u, _mm_movehdup_ps(u)));
    }
}

template <class Codec>
HWY_INLINE void tile_axpy_x86(const float* w, std::size_t n_q, std::size_t w_stride,
                              const void* tiles, std::size_t first, std::size_t n, std::size_t dim,
                              float* out) {
  if (n == 0) return;
  const auto* base = static_cast<const unsigned char*>(tiles);
  for_query_tiles(n_q, [&](std::size_t i, auto qt) {
    tile_axpy_rows<decltype(qt)::value, Codec>(w + i * w_stride, w_stride, base, first, n, dim,
                                               out + i * dim);
  });
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
