// The integer value driver (x86 AVX2 / AVX3), per Highway target: out_i += sum_j w_ij * value_j
// for any codec with a v8_reader (roles-inl.hpp), as a small matrix product in 8-bit integers.
// The query rows' weights times each value block's factor are quantized to int8 with one scale
// per row, block and group of kV8Group keys; four value rows' bytes are interleaved per dimension
// (a 4 x 4 byte transpose per 128-bit block: two unpacks), decoded to their unsigned 8-bit
// image with pshufb, and multiplied with the four keys' weights of each row (pmaddubsw +
// pmaddwd: one int32 lane per dimension sums the four keys); each group's int32 sums are
// converted once and added with the group's scale. strata/kernels/int8_axpy.hpp has the scalar
// reference with the same arithmetic (and the definition of each step). A fragment of
// kernels-inl.hpp.

HWY_BEFORE_NAMESPACE();
namespace strata::kernels::HWY_NAMESPACE {

#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
// Four keys' L bytes a, b, c, e -> the Tth quarter of their interleave: u32 lane l of the
// vector holds byte 16 (l / 4) + 4 T + l % 4 of each key, key k in byte k.
template <std::size_t T, class DU>
HWY_INLINE hn::Vec<DU> transpose4(DU du, hn::Vec<DU> a, hn::Vec<DU> b, hn::Vec<DU> c,
                                  hn::Vec<DU> e) {
  const hn::Repartition<std::uint16_t, DU> d16;
  hn::Vec<DU> ab, ce;
  if constexpr (T < 2) {
    ab = hn::InterleaveLower(du, a, b);
    ce = hn::InterleaveLower(du, c, e);
  } else {
    ab = hn::InterleaveUpper(du, a, b);
    ce = hn::InterleaveUpper(du, c, e);
  }
  if constexpr (T % 2 == 0)
    return hn::BitCast(du, hn::InterleaveLower(d16, hn::BitCast(d16, ab), hn::BitCast(d16, ce)));
  else
    return hn::BitCast(du, hn::InterleaveUpper(d16, hn::BitCast(d16, ab), hn::BitCast(d16, ce)));
}

// QT query rows, one pass (quarter T, planes C0 .. C0 + NC - 1 of segment s of block b) over
// the nj keys of one group: int32 sums in registers, then facc += d * float(sum).
template <std::size_t QT, std::size_t T, std::size_t C0, std::size_t NC, class Codec>
HWY_INLINE void i8_axpy_pass(const char* const* rows, std::size_t nj, std::size_t s,
                             const std::int8_t* const* wq, const std::int32_t* corr, const float* d,
                             float* const* facc) {
  using R = v8_reader<Codec>;
  using DU = typename R::DU;
  const DU du;
  const hn::Repartition<std::int32_t, DU> d32;
  const hn::Repartition<float, DU> df;
  const typename R::tables t;
  hn::Vec<decltype(d32)> acc[QT][NC];
  for (std::size_t r = 0; r < QT; ++r)
    for (std::size_t c = 0; c < NC; ++c) acc[r][c] = hn::Set(d32, corr[r]);
  const std::size_t L = hn::MaxLanes(du);
  for (std::size_t j = 0; j < nj; j += 4) {
    const auto x = transpose4<T>(
        du, hn::LoadU(du, R::bytes(rows[j]) + s * L), hn::LoadU(du, R::bytes(rows[j + 1]) + s * L),
        hn::LoadU(du, R::bytes(rows[j + 2]) + s * L), hn::LoadU(du, R::bytes(rows[j + 3]) + s * L));
    // The reader's second byte vector per key (turbo3: the high bits), transposed alike.
    hn::Vec<DU> a = x;
    if constexpr (R::kAux)
      a = transpose4<T>(du, R::aux(rows[j], s), R::aux(rows[j + 1], s), R::aux(rows[j + 2], s),
                        R::aux(rows[j + 3], s));
    hn::Vec<DU> v[NC];
    [&]<std::size_t... C>(std::index_sequence<C...>) {
      ((v[C] = R::template value<C0 + C>(t, x, a)), ...);
    }
    (std::make_index_sequence<NC>{});
#pragma GCC unroll 4
    for (std::size_t r = 0; r < QT; ++r) {
      std::int32_t w4;
      std::memcpy(&w4, wq[r] + j, 4);
      const auto wb = hn::Set(d32, w4);
#pragma GCC unroll 4
      for (std::size_t c = 0; c < NC; ++c)
        acc[r][c] = hn::Add(acc[r][c], decltype(wb){madd1(maddubs(v[c].raw, wb.raw))});
    }
  }
  constexpr std::size_t Lq = hn::MaxLanes(hn::Repartition<float, DU>());
  for (std::size_t r = 0; r < QT; ++r) {
    const auto dv = hn::Set(df, d[r]);
    for (std::size_t c = 0; c < NC; ++c) {
      float* p = facc[r] + ((s * 4 + T) * R::kPlanes + C0 + c) * Lq;
      hn::Store(hn::MulAdd(hn::ConvertTo(df, acc[r][c]), dv, hn::Load(df, p)), df, p);
    }
  }
}

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
  const std::size_t nb = dim / V, ng = (n_values + G - 1) / G, npad = ng * G;
  const char* base = static_cast<const char*>(values);
  const hn::ScalableTag<float> df;
  const hn::Rebind<std::int32_t, decltype(df)> di;
  const hn::Rebind<std::int8_t, decltype(df)> d8;
  const std::size_t Lf = hn::Lanes(df);
  // Per block b: the weights wq[(b * n_q + i) * npad + j], scales and offset terms per group
  // ((b * n_q + i) * ng + g); facc in the kernel's element order (R::element).
  auto wf = hwy::AllocateAligned<float>(2 * npad);
  float* f = wf.get() + npad;
  auto wq = hwy::AllocateAligned<std::int8_t>(nb * n_q * npad);
  auto dq = hwy::AllocateAligned<float>(nb * n_q * ng);
  auto corr = hwy::AllocateAligned<std::int32_t>(nb * n_q * ng);
  auto facc = hwy::AllocateAligned<float>(n_q * dim);
  std::memset(facc.get(), 0, n_q * dim * sizeof(float));
  for (std::size_t b = 0; b < nb; ++b) {
    for (std::size_t j = 0; j < n_values; ++j)
      f[j] = R::factor(reinterpret_cast<const block*>(base + j * value_stride)[b]);
    for (std::size_t j = n_values; j < npad; ++j) f[j] = 0.0f;
    for (std::size_t i = 0; i < n_q; ++i) {
      const float* wi = w + i * w_stride;
      std::size_t j = 0;
      for (; j + Lf <= n_values; j += Lf)
        hn::Store(hn::Mul(hn::LoadU(df, wi + j), hn::Load(df, f + j)), df, wf.get() + j);
      for (; j < n_values; ++j) wf[j] = wi[j] * f[j];
      for (; j < npad; ++j) wf[j] = 0.0f;
      for (std::size_t g = 0; g < ng; ++g) {
        const float* x = wf.get() + g * G;
        auto mx = hn::Zero(df);
        for (std::size_t k = 0; k < G; k += Lf) mx = hn::Max(mx, hn::Abs(hn::Load(df, x + k)));
        const float m = hn::GetLane(hn::MaxOfLanes(df, mx));
        const auto inv = hn::Set(df, m > 0.0f ? 127.0f / m : 0.0f);
        std::int8_t* q = wq.get() + (b * n_q + i) * npad + g * G;
        auto sum = hn::Zero(di);
        for (std::size_t k = 0; k < G; k += Lf) {
          const auto qi = hn::NearestInt(hn::Mul(hn::Load(df, x + k), inv));
          sum = hn::Add(sum, qi);
          hn::StoreU(hn::DemoteTo(d8, qi), d8, q + k);
        }
        dq[(b * n_q + i) * ng + g] = m / 127.0f;
        corr[(b * n_q + i) * ng + g] = -o * hn::GetLane(hn::SumOfLanes(di, sum));
      }
    }
  }
  // Passes of NC planes: QT x NC int32 accumulators (AVX3: 32 registers, AVX2: 16).
  constexpr std::size_t kAcc = HWY_TARGET <= HWY_AVX3 ? 16 : 8;
  const auto tile = [&](std::size_t i0, auto qt) {
    constexpr std::size_t QT = decltype(qt)::value;
    constexpr std::size_t NC =
        std::min<std::size_t>(R::kPlanes, std::max<std::size_t>(1, kAcc / QT));
    static_assert(R::kPlanes % NC == 0);
    for (std::size_t g = 0; g < ng; ++g) {
      const std::size_t j0 = g * G, nj = std::min(G, n_values - j0);
      // The group's rows (the last quad repeats the last row: its weights are 0).
      const char* rows[G];
      for (std::size_t j = 0; j < G; ++j)
        rows[j] = base + std::min(j0 + j, n_values - 1) * value_stride;
      if (j0 + G < n_values)
        for (std::size_t j = j0 + G; j < std::min(j0 + 2 * G, n_values); ++j)
          for (std::size_t o2 = 0; o2 < nb * sizeof(block); o2 += 64)
            hwy::Prefetch(base + j * value_stride + o2);
      for (std::size_t b = 0; b < nb; ++b) {
        const char* brow[G];
        for (std::size_t j = 0; j < G; ++j) brow[j] = rows[j] + b * sizeof(block);
        const std::int8_t* wr[QT];
        std::int32_t cr[QT];
        float dr[QT];
        float* fr[QT];
        for (std::size_t r = 0; r < QT; ++r) {
          const std::size_t k = (b * n_q + i0 + r);
          wr[r] = wq.get() + k * npad + j0;
          cr[r] = corr[k * ng + g];
          dr[r] = dq[k * ng + g];
          fr[r] = facc.get() + (i0 + r) * dim + b * V;
        }
        for (std::size_t s = 0; s < R::kSegs; ++s) {
          [&]<std::size_t... P>(std::index_sequence<P...>) {
            (i8_axpy_pass<QT, P / (R::kPlanes / NC), (P % (R::kPlanes / NC)) * NC, NC, Codec>(
                 brow, nj, s, wr, cr, dr, fr),
             ...);
          }
          (std::make_index_sequence<4 * (R::kPlanes / NC)>{});
        }
      }
    }
  };
  for_query_tiles(n_q, tile);
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
