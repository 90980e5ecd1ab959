// The integer dot driver, per Highway target: scores of float queries against keys of any codec
// with an int8_expander (roles-inl.hpp). Queries are quantized to int8 once per call, per key
// block (strata/kernels/int8_dot.hpp has the scalar reference with the same arithmetic).
// A fragment of kernels-inl.hpp.

HWY_BEFORE_NAMESPACE();
namespace strata::kernels::HWY_NAMESPACE {

#if HWY_TARGET != HWY_SCALAR
// Scores of QT queries (already quantized) against n_keys keys. corr[(i * nb + b) * L32]
// holds, in lane 0, -kOffset * sum(q) of query i's block b (the other lanes are zero).
template <std::size_t QT, class Codec>
HWY_INLINE void i8_dot_tile(const quantized_queries& qq, const std::int32_t* corr, std::size_t i0,
                            std::size_t dim, const char* keys, std::size_t key_stride,
                            std::size_t n_keys, float* scores, std::size_t score_stride,
                            const typename i8_reader<Codec>::state& st) {
  using reader = i8_reader<Codec>;
  using D32 = hn::Repartition<std::int32_t, typename reader::D>;
  using DF = hn::Repartition<float, D32>;
  constexpr std::size_t V = Codec::block_values;
  constexpr std::size_t L32 = hn::MaxLanes(D32());
  const std::size_t nb = dim / V;
  const D32 d32;
  const DF df;
  const auto* q0 = qq.template data<typename reader::query_t>() + i0 * dim;
  const float* dq0 = qq.d.data() + i0 * nb;
  const std::int32_t* c0 = corr + i0 * nb * L32;
  const auto init = [&](std::size_t i, std::size_t b) {
    if constexpr (reader::kOffset == 0)
      return hn::Zero(d32);
    else
      return hn::Load(d32, c0 + (i * nb + b) * L32);
  };
  for (std::size_t j = 0; j < n_keys; ++j) {
    const auto* row = reinterpret_cast<const typename Codec::block*>(keys + j * key_stride);
    prefetch_ahead(keys, j, n_keys, key_stride, nb * sizeof(typename Codec::block));
    auto f0 = hn::Zero(df), f1 = hn::Zero(df), f2 = hn::Zero(df), f3 = hn::Zero(df);
    for (std::size_t b = 0; b < nb; ++b) {
      auto s0 = init(0, b);
      [[maybe_unused]] auto s1 = QT > 1 ? init(1, b) : s0;
      [[maybe_unused]] auto s2 = QT > 2 ? init(2, b) : s0;
      [[maybe_unused]] auto s3 = QT > 3 ? init(3, b) : s0;
      const auto* qb = q0 + b * V;
      const float dk = reader::block(st, row[b], [&](auto k, std::size_t o) {
        s0 = hn::Add(s0, reader::product(k, qb + o));
        if constexpr (QT > 1) s1 = hn::Add(s1, reader::product(k, qb + dim + o));
        if constexpr (QT > 2) s2 = hn::Add(s2, reader::product(k, qb + 2 * dim + o));
        if constexpr (QT > 3) s3 = hn::Add(s3, reader::product(k, qb + 3 * dim + o));
      });
      // Factor dk * dq as in the reference (one f32 rounding), then one FMA per block.
      const auto dkv = hn::Set(df, dk);
      f0 = hn::MulAdd(hn::ConvertTo(df, s0), hn::Mul(dkv, hn::Set(df, dq0[b])), f0);
      if constexpr (QT > 1)
        f1 = hn::MulAdd(hn::ConvertTo(df, s1), hn::Mul(dkv, hn::Set(df, dq0[nb + b])), f1);
      if constexpr (QT > 2)
        f2 = hn::MulAdd(hn::ConvertTo(df, s2), hn::Mul(dkv, hn::Set(df, dq0[2 * nb + b])), f2);
      if constexpr (QT > 3)
        f3 = hn::MulAdd(hn::ConvertTo(df, s3), hn::Mul(dkv, hn::Set(df, dq0[3 * nb + b])), f3);
    }
    store_scores<QT>(df, f0, f1, f2, f3, scores, score_stride, j);
  }
}

template <class Codec>
HWY_INLINE void i8_dot(const float* q, std::size_t n_q, std::size_t dim, const void* keys,
                       std::size_t key_stride, std::size_t n_keys, float* scores,
                       std::size_t score_stride) {
  static_assert(require<int8_expander<Codec>>(role::i8_reader));
  using reader = i8_reader<Codec>;
  constexpr std::size_t V = Codec::block_values;
  constexpr std::size_t L32 = hn::MaxLanes(hn::Repartition<std::int32_t, typename reader::D>());
  const std::size_t nb = dim / V;
  quantized_queries qq(q, n_q, dim, V);
  if constexpr (std::is_same_v<typename reader::query_t, std::int16_t>) qq.widen();
  hwy::AlignedFreeUniquePtr<std::int32_t[]> corr;
  if constexpr (reader::kOffset != 0) {
    corr = hwy::AllocateAligned<std::int32_t>(n_q * nb * L32);
    for (std::size_t i = 0; i < n_q; ++i)
      for (std::size_t b = 0; b < nb; ++b) {
        std::int32_t sum = 0;
        for (std::size_t e = 0; e < V; ++e) sum += qq.q[i * dim + b * V + e];
        std::int32_t* c = &corr[(i * nb + b) * L32];
        c[0] = -reader::kOffset * sum;
        for (std::size_t l = 1; l < L32; ++l) c[l] = 0;
      }
  }
  const typename reader::state st;
  const char* k = static_cast<const char*>(keys);
  for_query_tiles(n_q, [&](std::size_t i, auto qt) {
    i8_dot_tile<decltype(qt)::value, Codec>(qq, corr.get(), i, dim, k, key_stride, n_keys,
                                            scores + i * score_stride, score_stride, st);
  });
}
#endif  // HWY_TARGET != HWY_SCALAR

}  // namespace strata::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();
