// The portable value drivers, per Highway target: the fused axpy (weighted sums of value rows)
// and block decode, for any codec with an f32_expander / block_decoding (roles-inl.hpp).
// A fragment of kernels-inl.hpp.

HWY_BEFORE_NAMESPACE();
namespace strata::kernels::HWY_NAMESPACE {

#if HWY_TARGET != HWY_SCALAR
// acc_i += sum_j w_ij * scale_j * value_j for QT (1, 2 or 4) queries: each value block is
// decoded once (to f32 vectors in registers). Two value rows at a time: row j + 1's block
// goes to buf (positions as in acc), then row j's block is visited and both are accumulated
// with one load/store of acc.
template <std::size_t QT, class Codec>
HWY_INLINE void fused_axpy_tile(const float* w, std::size_t w_stride, const char* base,
                                std::size_t value_stride, std::size_t n_values, std::size_t dim,
                                float* acc, const typename f32_reader<Codec>::state& st) {
  using reader = f32_reader<Codec>;
  using DF = typename reader::DF;
  using block = typename Codec::block;
  constexpr std::size_t V = Codec::block_values;
  const std::size_t nb = dim / V;
  const DF df;
  HWY_ALIGN float buf[V];
  const auto blocks = [&](std::size_t j) {
    return reinterpret_cast<const block*>(base + j * value_stride);
  };
  const auto wt = [&](std::size_t i, std::size_t j) { return i < QT ? w[i * w_stride + j] : 0.0f; };
  std::size_t j = 0;
  for (; j + 2 <= n_values; j += 2) {
    prefetch_ahead(base, j, n_values, value_stride, nb * sizeof(block));
    prefetch_ahead(base, j + 1, n_values, value_stride, nb * sizeof(block));
    for (std::size_t b = 0; b < nb; ++b) {
      float* a = acc + b * V;
      const block& b0 = blocks(j)[b];
      const block& b1 = blocks(j + 1)[b];
      const float s0 = reader::scale(b0), s1 = reader::scale(b1);
      const auto x0 = hn::Set(df, wt(0, j) * s0), y0 = hn::Set(df, wt(0, j + 1) * s1);
      const auto x1 = hn::Set(df, wt(1, j) * s0), y1 = hn::Set(df, wt(1, j + 1) * s1);
      const auto x2 = hn::Set(df, wt(2, j) * s0), y2 = hn::Set(df, wt(2, j + 1) * s1);
      const auto x3 = hn::Set(df, wt(3, j) * s0), y3 = hn::Set(df, wt(3, j + 1) * s1);
      reader::visit(st, b1, [&](hn::Vec<DF> v, std::size_t pos) { hn::Store(v, df, buf + pos); });
      reader::visit(st, b0, [&](hn::Vec<DF> v, std::size_t pos) {
        const auto u = hn::Load(df, buf + pos);
        const auto acc2 = [&](float* ai, hn::Vec<DF> x, hn::Vec<DF> y) {
          hn::StoreU(hn::MulAdd(y, u, hn::MulAdd(x, v, hn::LoadU(df, ai))), df, ai);
        };
        acc2(a + pos, x0, y0);
        if constexpr (QT > 1) acc2(a + dim + pos, x1, y1);
        if constexpr (QT > 2) acc2(a + 2 * dim + pos, x2, y2);
        if constexpr (QT > 3) acc2(a + 3 * dim + pos, x3, y3);
      });
    }
  }
  for (; j < n_values; ++j) {
    for (std::size_t b = 0; b < nb; ++b) {
      float* a = acc + b * V;
      const block& b0 = blocks(j)[b];
      const float s0 = reader::scale(b0);
      const auto x0 = hn::Set(df, wt(0, j) * s0), x1 = hn::Set(df, wt(1, j) * s0);
      const auto x2 = hn::Set(df, wt(2, j) * s0), x3 = hn::Set(df, wt(3, j) * s0);
      reader::visit(st, b0, [&](hn::Vec<DF> v, std::size_t pos) {
        const auto acc1 = [&](float* ai, hn::Vec<DF> x) {
          hn::StoreU(hn::MulAdd(x, v, hn::LoadU(df, ai)), df, ai);
        };
        acc1(a + pos, x0);
        if constexpr (QT > 1) acc1(a + dim + pos, x1);
        if constexpr (QT > 2) acc1(a + 2 * dim + pos, x2);
        if constexpr (QT > 3) acc1(a + 3 * dim + pos, x3);
      });
    }
  }
}

// out_i += sum_j w_ij * value_j (accumulated in acc, in the reader's layout, then added).
template <class Codec>
HWY_INLINE void fused_axpy(const float* w, std::size_t n_q, std::size_t w_stride,
                           const void* values, std::size_t value_stride, std::size_t n_values,
                           std::size_t dim, float* out) {
  static_assert(require<f32_expander<Codec>>(role::f32_reader));
  using reader = f32_reader<Codec>;
  constexpr std::size_t V = Codec::block_values;
  const std::size_t nb = dim / V;
  const typename reader::state st;
  auto acc = hwy::AllocateAligned<float>(n_q * dim);
  std::memset(acc.get(), 0, n_q * dim * sizeof(float));
  const char* base = static_cast<const char*>(values);
  for_query_tiles(n_q, [&](std::size_t i, auto qt) {
    fused_axpy_tile<decltype(qt)::value, Codec>(w + i * w_stride, w_stride, base, value_stride,
                                                n_values, dim, acc.get() + i * dim, st);
  });
  for (std::size_t i = 0; i < n_q; ++i)
    for (std::size_t b = 0; b < nb; ++b)
      for (std::size_t p = 0; p < V; ++p) {
        const std::size_t e = reader::kNatural ? p : reader::position(p);
        out[i * dim + b * V + e] += acc[i * dim + b * V + p];
      }
}

// x[0 .. n) = the values of the n / block_values blocks at in.
template <class Codec> HWY_INLINE void block_decode(const void* in, std::size_t n, float* x) {
  static_assert(require<block_decoding<Codec>>(role::block_decoder));
  const typename block_decoder<Codec>::state st;
  const auto* blocks = static_cast<const typename Codec::block*>(in);
  for (std::size_t b = 0; b < n / Codec::block_values; ++b)
    block_decoder<Codec>::block(st, blocks[b], x + b * Codec::block_values);
}
#endif  // HWY_TARGET != HWY_SCALAR

}  // namespace strata::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();
