// The integer value driver (x86 AVX2 / AVX3), per Highway target: out_i += sum_j w_ij * value_j
// for any codec with a v8_reader (roles-inl.hpp), as a small matrix product in 8-bit integers.
// The query rows' weights times each value block's factor are quantized to int8 with one scale
// per row, block and group of kV8Group keys; four value rows' bytes are interleaved per dimension
// (a 4 x 4 byte transpose per 128-bit block: two unpacks; once per group, into a scratch buffer
// that every pass and query tile reads), decoded to their unsigned 8-bit
// image with pshufb, and multiplied with the four keys' weights of each row (pmaddubsw +
// pmaddwd: one int32 lane per dimension sums the four keys); each group's int32 sums are
// converted once and added with the group's scale. strata/kernels/int8_axpy.hpp has the scalar
// reference with the same arithmetic (and the definition of each step). A fragment of
// kernels-inl.hpp.

HWY_BEFORE_NAMESPACE();
namespace strata::kernels::HWY_NAMESPACE {

#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
// Four keys' L bytes a, b, c, e -> the four quarters of their interleave: u32 lane l of
// quarter T holds byte 16 (l / 4) + 4 T + l % 4 of each key, key k in byte k (quarters 0, 1
// from the lower halves' 8-bit unpacks, 2, 3 from the upper ones').
template <class DU>
HWY_INLINE void transpose4(DU du, hn::Vec<DU> a, hn::Vec<DU> b, hn::Vec<DU> c, hn::Vec<DU> e,
                           hn::Vec<DU>* x) {
  const hn::Repartition<std::uint16_t, DU> d16;
  const auto words = [&](hn::Vec<DU> ab, hn::Vec<DU> ce, hn::Vec<DU>* out) {
    out[0] = hn::BitCast(du, hn::InterleaveLower(d16, hn::BitCast(d16, ab), hn::BitCast(d16, ce)));
    out[1] = hn::BitCast(du, hn::InterleaveUpper(d16, hn::BitCast(d16, ab), hn::BitCast(d16, ce)));
  };
  words(hn::InterleaveLower(du, a, b), hn::InterleaveLower(du, c, e), x);
  words(hn::InterleaveUpper(du, a, b), hn::InterleaveUpper(du, c, e), x + 2);
}

// acc + the four-byte sums of u (unsigned) times the broadcast weights wb: one vpdpbusd on
// AVX3_DL (EVEX, simd-inl.hpp), pmaddubsw + pmaddwd elsewhere (the same exact int32 sums).
template <class V32, class VU> HWY_INLINE V32 i8_madd(V32 acc, VU u, V32 wb) {
#if HWY_TARGET == HWY_AVX3_DL
  if constexpr (requires { dpbusd(acc.raw, u.raw, wb.raw); })
    return V32{dpbusd(acc.raw, u.raw, wb.raw)};
#endif
  return hn::Add(acc, V32{madd1(maddubs(u.raw, wb.raw))});
}

// A group's key bytes interleaved once (before the passes, which each read a quarter): for
// segment s of block b, quarter T of keys 4m .. 4m + 3 at xt[((b * kSegs + s) * 4 + T) * G / 4
// + m] (L bytes each; the reader's aux bytes alike in at). rows: the group's G rows (the last
// quad repeats the last row), nj of them real. At b == 0 it prefetches the pf_rows rows at pf.
template <class Codec>
HWY_INLINE void i8_interleave(const char* const* rows, std::size_t nj, std::size_t b,
                              std::uint8_t* xt, std::uint8_t* at, const char* pf,
                              std::size_t pf_rows, std::size_t pf_stride, std::size_t pf_bytes) {
  using R = v8_reader<Codec>;
  using DU = typename R::DU;
  using block = typename Codec::block;
  constexpr std::size_t L = hn::MaxLanes(DU()), M = kV8Group / 4;
  const DU du;
  for (std::size_t m = 0; 4 * m < nj; ++m) {
    // (four named pointers: an array of them, read through a lambda, went to the stack)
    const char* r0 = rows[4 * m] + b * sizeof(block);
    const char* r1 = rows[4 * m + 1] + b * sizeof(block);
    const char* r2 = rows[4 * m + 2] + b * sizeof(block);
    const char* r3 = rows[4 * m + 3] + b * sizeof(block);
    // Rows further ahead, four per four keys (spread over the group: a burst of prefetches
    // waits for the fill buffers).
    if (pf && b == 0) prefetch_rows(pf, 4 * m, 4, pf_rows, pf_stride, pf_bytes);
    // quarter T of segment s to out + ((b * kSegs + s) * 4 + T) * M * L + m * L
    const auto put = [&](std::uint8_t* out, std::size_t s, hn::Vec<DU> k0, hn::Vec<DU> k1,
                         hn::Vec<DU> k2, hn::Vec<DU> k3) {
      hn::Vec<DU> x[4];
      transpose4(du, k0, k1, k2, k3, x);
      for (std::size_t t = 0; t < 4; ++t)
        hn::Store(x[t], du, out + (((b * R::kSegs + s) * 4 + t) * M + m) * L);
    };
    for (std::size_t s = 0; s < R::kSegs; ++s) {
      put(xt, s, hn::LoadU(du, R::bytes(r0) + s * L), hn::LoadU(du, R::bytes(r1) + s * L),
          hn::LoadU(du, R::bytes(r2) + s * L), hn::LoadU(du, R::bytes(r3) + s * L));
      if constexpr (R::kAux) put(at, s, R::aux(r0, s), R::aux(r1, s), R::aux(r2, s), R::aux(r3, s));
    }
  }
}

// QT query rows, one pass (quarters T0 .. T0 + NT - 1, planes C0 .. C0 + NC - 1 of one segment
// of one block, whose interleaved bytes start at xt and at: i8_interleave) over the nj keys of
// one group: int32 sums in registers, then facc += d * float(sum).
template <std::size_t QT, std::size_t T0, std::size_t NT, std::size_t C0, std::size_t NC,
          class Codec>
HWY_INLINE void i8_axpy_pass(const std::uint8_t* xt, [[maybe_unused]] const std::uint8_t* at,
                             std::size_t nj, std::size_t s, const std::int8_t* const* wq,
                             const std::int32_t* corr, const float* d, float* const* facc) {
  using R = v8_reader<Codec>;
  using DU = typename R::DU;
  const DU du;
  const hn::Repartition<std::int32_t, DU> d32;
  const hn::Repartition<float, DU> df;
  const typename R::tables t;
  constexpr std::size_t M = kV8Group / 4;
  hn::Vec<decltype(d32)> acc[QT][NT][NC];
#pragma GCC unroll 4
  for (std::size_t r = 0; r < QT; ++r)
#pragma GCC unroll 2
    for (std::size_t q = 0; q < NT; ++q)
#pragma GCC unroll 4
      for (std::size_t c = 0; c < NC; ++c) acc[r][q][c] = hn::Set(d32, corr[r]);
  constexpr std::size_t L = hn::MaxLanes(DU());
  for (std::size_t j = 0; j < nj; j += 4) {
    hn::Vec<DU> x[NT], a[NT];
#pragma GCC unroll 2
    for (std::size_t q = 0; q < NT; ++q) {
      x[q] = hn::Load(du, xt + ((T0 + q) * M + j / 4) * L);
      // The reader's second byte vector per key (turbo3: the high bits).
      if constexpr (R::kAux)
        a[q] = hn::Load(du, at + ((T0 + q) * M + j / 4) * L);
      else
        a[q] = x[q];
    }
    hn::Vec<DU> v[NT][NC];
#pragma GCC unroll 2
    for (std::size_t q = 0; q < NT; ++q) [&]<std::size_t... C>(std::index_sequence<C...>) {
        ((v[q][C] = R::template value<C0 + C>(t, x[q], a[q])), ...);
      }
    (std::make_index_sequence<NC>{});
#pragma GCC unroll 4
    for (std::size_t r = 0; r < QT; ++r) {
      std::int32_t w4;
      std::memcpy(&w4, wq[r] + j, 4);
      const auto wb = hn::Set(d32, w4);
#pragma GCC unroll 2
      for (std::size_t q = 0; q < NT; ++q)
#pragma GCC unroll 4
        for (std::size_t c = 0; c < NC; ++c) acc[r][q][c] = i8_madd(acc[r][q][c], v[q][c], wb);
    }
  }
  constexpr std::size_t Lq = hn::MaxLanes(hn::Repartition<float, DU>());
#pragma GCC unroll 4
  for (std::size_t r = 0; r < QT; ++r) {
    const auto dv = hn::Set(df, d[r]);
#pragma GCC unroll 2
    for (std::size_t q = 0; q < NT; ++q)
#pragma GCC unroll 4
      for (std::size_t c = 0; c < NC; ++c) {
        float* p = facc[r] + ((s * 4 + T0 + q) * R::kPlanes + C0 + c) * Lq;
        hn::Store(hn::MulAdd(hn::ConvertTo(df, acc[r][q][c]), dv, hn::Load(df, p)), df, p);
      }
  }
}

#if HWY_TARGET == HWY_AVX2
// Step 2 (int8_axpy.hpp: quantize_v8_weights, the same bits) for a whole group of 32 weights
// times factors on AVX2: the four products stay in registers, cvtps2dq rounds to nearest even
// as nearbyint (|values| <= 127: Highway's NearestInt fixes up overflow, which cannot occur
// here), and one pack turns the four vectors into the group's 32 bytes. Sets q, the scale d and
// the sum of q.
HWY_INLINE std::int32_t quantize_group32(const float* wi, const float* f, std::int8_t* q,
                                         float* d) {
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  __m256 a[4];
  __m256 mx = _mm256_setzero_ps();
  for (int k = 0; k < 4; ++k) {
    a[k] = _mm256_mul_ps(_mm256_loadu_ps(wi + 8 * k), _mm256_load_ps(f + 8 * k));
    mx = _mm256_max_ps(mx, _mm256_and_ps(a[k], abs_mask));
  }
  const float m = max_of_lanes(mx);
  const __m256 inv = _mm256_set1_ps(m > 0.0f ? 127.0f / m : 0.0f);
  __m256i v[4];
  for (int k = 0; k < 4; ++k) v[k] = _mm256_cvtps_epi32(_mm256_mul_ps(a[k], inv));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(q), pack_i32_to_i8(v));
  const __m256i s8 = _mm256_add_epi32(_mm256_add_epi32(v[0], v[1]), _mm256_add_epi32(v[2], v[3]));
  __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s8), _mm256_extracti128_si256(s8, 1));
  s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4E));
  s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xB1));
  *d = m / 127.0f;
  return _mm_cvtsi128_si32(s4);
}
#endif

template <class Codec>
HWY_INLINE void i8_axpy(const float* w, std::size_t n_q, std::size_t w_stride, const void* values,
                        std::size_t value_stride, std::size_t n_values, std::size_t dim,
                        float* out) {
  using R = v8_reader<Codec>;
  using block = typename Codec::block;
  constexpr std::size_t V = Codec::block_values, G = kV8Group;
  constexpr std::size_t L = hn::MaxLanes(typename R::DU()), Lq = L / 4;
  constexpr int o = v8_block<Codec>::offset;
  if (n_values == 0) return;
  const std::size_t nb = dim / V, ng = (n_values + G - 1) / G, row_bytes = nb * sizeof(block);
  const char* base = static_cast<const char*>(values);
  const hn::ScalableTag<float> df;
  const hn::Rebind<std::int32_t, decltype(df)> di;
  const hn::Rebind<std::int8_t, decltype(df)> d8;
  constexpr std::size_t Lf = hn::MaxLanes(df);
  static_assert(G % Lf == 0);
  // Per group: the weights wq[(b * n_q + i) * G + j], scales dq and offset terms corr
  // [b * n_q + i]; facc (the whole call) in the kernel's element order (R::element). Group by
  // group, so the value rows' factors are read just before the passes that read their codes
  // (from the cache: each group's first pass prefetches the rows kAhead keys ahead).
  constexpr std::size_t kAhead = 2 * G;
  HWY_ALIGN float f[G];
  HWY_ALIGN float wf[G];
  auto wq = hwy::AllocateAligned<std::int8_t>(nb * n_q * G);
  auto dq = hwy::AllocateAligned<float>(nb * n_q);
  auto corr = hwy::AllocateAligned<std::int32_t>(nb * n_q);
  auto facc = hwy::AllocateAligned<float>(n_q * dim);
  std::memset(facc.get(), 0, n_q * dim * sizeof(float));
  for (std::size_t j = 0; j < std::min(kAhead, n_values); ++j)
    for (std::size_t o2 = 0; o2 < row_bytes; o2 += 64) hwy::Prefetch(base + j * value_stride + o2);
  // Passes of NC planes: QT x NC int32 accumulators (AVX3: 32 registers, AVX2: 16).
  constexpr std::size_t kAcc = HWY_TARGET <= HWY_AVX3 ? 16 : 8;
  // The group's key bytes interleaved (i8_interleave), and the aux bytes where the reader has them.
  const std::size_t seg_bytes = 4 * (G / 4) * L;
  auto xt = hwy::AllocateAligned<std::uint8_t>(nb * R::kSegs * seg_bytes);
  auto at = hwy::AllocateAligned<std::uint8_t>(R::kAux ? nb * R::kSegs * seg_bytes : 64);
  const char* rows[G];
  const char* pf = nullptr;
  std::size_t j0 = 0, nj = 0, pf_rows = 0;
  const auto tile = [&](std::size_t i0, auto qt) {
    constexpr std::size_t QT = decltype(qt)::value;
    // every plane per pass where the registers allow, then two quarters (sharing unpacks)
    constexpr std::size_t NC =
        std::min<std::size_t>(R::kPlanes, std::max<std::size_t>(1, kAcc / QT));
    constexpr std::size_t NT = NC == R::kPlanes && 2 * QT * NC <= kAcc ? 2 : 1;
    static_assert(R::kPlanes % NC == 0);
    constexpr std::size_t kPP = R::kPlanes / NC;  // passes per quarter group
    for (std::size_t b = 0; b < nb; ++b) {
      const std::int8_t* wr[QT];
      std::int32_t cr[QT];
      float dr[QT];
      float* fr[QT];
      for (std::size_t r = 0; r < QT; ++r) {
        const std::size_t k = b * n_q + i0 + r;
        wr[r] = wq.get() + k * G;
        cr[r] = corr[k];
        dr[r] = dq[k];
        fr[r] = facc.get() + (i0 + r) * dim + b * V;
      }
      for (std::size_t s = 0; s < R::kSegs; ++s) {
        const std::size_t off = (b * R::kSegs + s) * seg_bytes;
        const std::uint8_t* xs = xt.get() + off;
        const std::uint8_t* as = R::kAux ? at.get() + off : nullptr;
        [&]<std::size_t... P>(std::index_sequence<P...>) {
          (i8_axpy_pass<QT, (P / kPP) * NT, NT, (P % kPP) * NC, NC, Codec>(xs, as, nj, s, wr, cr,
                                                                           dr, fr),
           ...);
        }
        (std::make_index_sequence<4 / NT * kPP>{});
      }
    }
  };
  // a group's rows (value_stride apart) as 32-bit byte offsets, for the scale gather
  [[maybe_unused]] const bool gather_scales =
      value_stride <= std::size_t(std::numeric_limits<std::int32_t>::max()) / G;
  for (std::size_t g = 0; g < ng; ++g) {
    j0 = g * G;
    nj = std::min(G, n_values - j0);
    // The group's rows (the last quad repeats the last row: its weights are 0).
    for (std::size_t j = 0; j < G; ++j)
      rows[j] = base + std::min(j0 + j, n_values - 1) * value_stride;
    // the rows kAhead keys ahead, prefetched by the group's first pass
    pf_rows = j0 + kAhead < n_values ? std::min(G, n_values - j0 - kAhead) : 0;
    pf = pf_rows ? base + (j0 + kAhead) * value_stride : nullptr;
    for (std::size_t b = 0; b < nb; ++b) {
      bool scaled = false;
      if constexpr (requires { R::kScaleOffset; }) {
        static_assert(R::kScaleOffset + 4 <= sizeof(block), "the gather reads 4 bytes");
        if (nj == G && gather_scales) {
          // a whole group: the rows are value_stride apart, so Lf scales per 32-bit gather (the
          // fp16 in the low half of each lane), converted Lf at a time (R::factor's bits)
          const hn::RebindToSigned<decltype(df)> di32;
          const hn::Rebind<std::uint16_t, decltype(df)> du16;
          const hn::Rebind<hwy::float16_t, decltype(df)> dh;
          const auto offs = hn::Mul(hn::Iota(di32, 0), hn::Set(di32, std::int32_t(value_stride)));
          const auto low = hn::Set(di32, 0xFFFF);
          const auto unit = hn::Set(df, R::kUnit);
          for (std::size_t k = 0; k < G; k += Lf) {
            const auto* p = reinterpret_cast<const std::int32_t*>(rows[k] + b * sizeof(block) +
                                                                  R::kScaleOffset);
            const auto h = hn::DemoteTo(du16, hn::And(hn::GatherOffset(di32, p, offs), low));
            hn::Store(hn::Mul(hn::PromoteTo(df, hn::BitCast(dh, h)), unit), df, f + k);
          }
          scaled = true;
        }
      }
      if (scaled) {
        // gathered above
      } else if constexpr (requires(const block& x) { R::half_scale(x); }) {
        // the rows' fp16 scales gathered, then converted 8 or 16 at a time (R::factor's bits)
        HWY_ALIGN std::uint16_t h[G];
        for (std::size_t j = 0; j < nj; ++j)
          h[j] = R::half_scale(reinterpret_cast<const block*>(rows[j])[b]);
        for (std::size_t j = nj; j < G; ++j) h[j] = 0;
        const hn::Rebind<hwy::float16_t, decltype(df)> dh;
        const auto unit = hn::Set(df, R::kUnit);
        for (std::size_t k = 0; k < G; k += Lf)
          hn::Store(hn::Mul(hn::PromoteTo(
                                df, hn::Load(dh, reinterpret_cast<const hwy::float16_t*>(h + k))),
                            unit),
                    df, f + k);
      } else {
        for (std::size_t j = 0; j < nj; ++j)
          f[j] = R::factor(reinterpret_cast<const block*>(rows[j])[b]);
        for (std::size_t j = nj; j < G; ++j) f[j] = 0.0f;
      }
      for (std::size_t i = 0; i < n_q; ++i) {
        const float* wi = w + i * w_stride + j0;
#if HWY_TARGET == HWY_AVX2
        if (nj == G) {
          static_assert(G == 32);
          float di;
          const std::int32_t sq = quantize_group32(wi, f, wq.get() + (b * n_q + i) * G, &di);
          dq[b * n_q + i] = di;
          corr[b * n_q + i] = -o * sq;
          continue;
        }
#endif
        std::size_t j = 0;
        for (; j + Lf <= nj; j += Lf)
          hn::Store(hn::Mul(hn::LoadU(df, wi + j), hn::Load(df, f + j)), df, wf + j);
        for (; j < nj; ++j) wf[j] = wi[j] * f[j];
        for (; j < G; ++j) wf[j] = 0.0f;
        auto mx = hn::Zero(df);
        for (std::size_t k = 0; k < G; k += Lf) mx = hn::Max(mx, hn::Abs(hn::Load(df, wf + k)));
        const float m = hn::GetLane(hn::MaxOfLanes(df, mx));
        const auto inv = hn::Set(df, m > 0.0f ? 127.0f / m : 0.0f);
        std::int8_t* q = wq.get() + (b * n_q + i) * G;
        auto sum = hn::Zero(di);
        for (std::size_t k = 0; k < G; k += Lf) {
          const auto qi = hn::NearestInt(hn::Mul(hn::Load(df, wf + k), inv));
          sum = hn::Add(sum, qi);
          hn::StoreU(hn::DemoteTo(d8, qi), d8, q + k);
        }
        dq[b * n_q + i] = m / 127.0f;
        corr[b * n_q + i] = -o * hn::GetLane(hn::SumOfLanes(di, sum));
      }
    }
    for (std::size_t b = 0; b < nb; ++b)
      i8_interleave<Codec>(rows, nj, b, xt.get(), at.get(), pf, pf_rows, value_stride, row_bytes);
    for_query_tiles(n_q, tile);
  }
  // facc (kernel order) -> out (element order).
  static constexpr auto perm = [] {
    std::array<std::uint16_t, V> p{};
    for (std::size_t s = 0; s < R::kSegs; ++s)
      for (std::size_t t = 0; t < 4; ++t)
        for (std::size_t c = 0; c < R::kPlanes; ++c)
          for (std::size_t l = 0; l < Lq; ++l)
            p[((s * 4 + t) * R::kPlanes + c) * Lq + l] = std::uint16_t(R::element(s, t, c, l));
    return p;
  }();
  for (std::size_t i = 0; i < n_q; ++i)
    for (std::size_t b = 0; b < nb; ++b) {
      const float* fa = facc.get() + i * dim + b * V;
      float* oi = out + i * dim + b * V;
      for (std::size_t p = 0; p < V; ++p) oi[perm[p]] += fa[p];
    }
}
#endif  // x86 AVX2 / AVX3

}  // namespace strata::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();
