// The integer dot driver, per Highway target: scores of float queries against keys of any codec
// with an int8_expander (roles-inl.hpp). Queries are quantized to int8 once per call, per key
// block (strata/kernels/int8_dot.hpp has the scalar reference with the same arithmetic).
// A fragment of kernels-inl.hpp.

HWY_BEFORE_NAMESPACE();
namespace strata::kernels::HWY_NAMESPACE {

#if HWY_TARGET != HWY_SCALAR
// acc + the int32 lane sums of key codes k times query codes at q (the reader's product; u8 x
// i8 readers through dot_acc_u8i8, one vpdpbusd on AVX3_DL).
template <class Reader, class VA, class VK>
HWY_INLINE VA i8_accumulate(VA acc, VK k, const typename Reader::query_t* q) {
  if constexpr (std::is_same_v<typename Reader::query_t, std::int8_t> && Reader::kOffset != 0)
    return dot_acc_u8i8(typename Reader::D(), acc, k, hn::LoadU(typename Reader::D(), q));
  else
    return hn::Add(acc, Reader::product(k, q));
}

// One key block against QT queries (query block codes at qb, rows dim apart): s0..s3 += the
// int32 lane sums of the products; returns the block's factor dk.
template <std::size_t QT, class Codec, class VA>
HWY_INLINE float i8_block_sums(const typename i8_reader<Codec>::state& st,
                               const typename Codec::block& blk,
                               const typename i8_reader<Codec>::query_t* qb, std::size_t dim,
                               VA& s0, VA& s1, VA& s2, VA& s3) {
  using reader = i8_reader<Codec>;
  return reader::block(st, blk, [&](auto k, std::size_t o) {
    s0 = i8_accumulate<reader>(s0, k, qb + o);
    if constexpr (QT > 1) s1 = i8_accumulate<reader>(s1, k, qb + dim + o);
    if constexpr (QT > 2) s2 = i8_accumulate<reader>(s2, k, qb + 2 * dim + o);
    if constexpr (QT > 3) s3 = i8_accumulate<reader>(s3, k, qb + 3 * dim + o);
  });
}

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
      const float dk = i8_block_sums<QT, Codec>(st, row[b], q0 + b * V, dim, s0, s1, s2, s3);
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

#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
// Groups of four keys (x86, blocks of 64 values or more): each key block's int32 lane sums of
// the QT queries are reduced for the four keys at once by one transpose-add tree (zip_add,
// sum_zipped) instead of per key, and the float work (offset, conversion, the factors dk * dq)
// runs on the four keys' sums in one 128-bit vector. Per score exactly int8_dot_reference's
// arithmetic, in its order: (dk * dq) * float(sum) per block, rounded, added over the blocks in
// order, so the scores are the reference's bits (kernels_test checks it).
template <std::size_t QT, class Codec>
HWY_INLINE void i8_dot_tile4(const quantized_queries& qq, const std::int32_t* corr, std::size_t i0,
                             std::size_t dim, const char* keys, std::size_t key_stride,
                             std::size_t n_keys, float* scores, std::size_t score_stride,
                             const typename i8_reader<Codec>::state& st) {
  using reader = i8_reader<Codec>;
  using D32 = hn::Repartition<std::int32_t, typename reader::D>;
  using block = typename Codec::block;
  constexpr std::size_t V = Codec::block_values;
  constexpr std::size_t L32 = hn::MaxLanes(D32());
  static_assert(L32 >= 4, "i8_dot_tile4: the tree needs whole 128-bit vectors");
  const std::size_t nb = dim / V;
  const D32 d32;
  const auto* q0 = qq.template data<typename reader::query_t>() + i0 * dim;
  const float* dq0 = qq.d.data() + i0 * nb;
  [[maybe_unused]] const std::int32_t* c0 = reader::kOffset != 0 ? corr + i0 * nb * L32 : nullptr;
  // Adds query i's block b term for the four keys (sums t, factors dkv) to f.
  const auto fold = [&](__m128 f, __m128i t, __m128 dkv, std::size_t i, std::size_t b) {
    if constexpr (reader::kOffset != 0)
      t = _mm_add_epi32(t, _mm_set1_epi32(c0[(i * nb + b) * L32]));
    __m128 p = _mm_mul_ps(_mm_mul_ps(dkv, _mm_set1_ps(dq0[i * nb + b])), _mm_cvtepi32_ps(t));
    asm("" : "+v"(p));  // rounded before the add, as the reference (no FMA contraction)
    return _mm_add_ps(f, p);
  };
  for (std::size_t j = 0; j < n_keys; j += 4) {
    // The last group repeats its last key where fewer than four are left (stored only once).
    const std::size_t last = std::min<std::size_t>(3, n_keys - j - 1);
    const char* r = keys + j * key_stride;
    prefetch_rows(keys, j + kPrefetchRows, 4, n_keys, key_stride, nb * sizeof(block));
    __m128 f0 = _mm_setzero_ps(), f1 = f0, f2 = f0, f3 = f0;
    for (std::size_t b = 0; b < nb; ++b) {
      const auto* qb = q0 + b * V;
      const auto row = [&](std::size_t k) -> const block& {
        return reinterpret_cast<const block*>(r + std::min(k, last) * key_stride)[b];
      };
      auto a0 = hn::Zero(d32), a1 = a0, a2 = a0, a3 = a0, e0 = a0, e1 = a0, e2 = a0, e3 = a0;
      [[maybe_unused]] const float dk0 =
          i8_block_sums<QT, Codec>(st, row(0), qb, dim, a0, a1, a2, a3);
      [[maybe_unused]] const float dk1 =
          i8_block_sums<QT, Codec>(st, row(1), qb, dim, e0, e1, e2, e3);
      const auto z0 = zip_add(a0.raw, e0.raw);
      [[maybe_unused]] const auto z1 = QT > 1 ? zip_add(a1.raw, e1.raw) : z0;
      [[maybe_unused]] const auto z2 = QT > 2 ? zip_add(a2.raw, e2.raw) : z0;
      [[maybe_unused]] const auto z3 = QT > 3 ? zip_add(a3.raw, e3.raw) : z0;
      a0 = a1 = a2 = a3 = e0 = e1 = e2 = e3 = hn::Zero(d32);
      [[maybe_unused]] const float dk2 =
          i8_block_sums<QT, Codec>(st, row(2), qb, dim, a0, a1, a2, a3);
      [[maybe_unused]] const float dk3 =
          i8_block_sums<QT, Codec>(st, row(3), qb, dim, e0, e1, e2, e3);
      __m128 dkv;
      if constexpr (half_scaled_keys<Codec>) {
        // the four keys' fp16 scales in one conversion (the factors' bits, roles-inl.hpp)
        dkv = _mm_cvtph_ps(_mm_setr_epi16(
            short(reader::half_scale(row(0))), short(reader::half_scale(row(1))),
            short(reader::half_scale(row(2))), short(reader::half_scale(row(3))), 0, 0, 0, 0));
        if constexpr (reader::kUnit != 1.0f) dkv = _mm_mul_ps(dkv, _mm_set1_ps(reader::kUnit));
      } else {
        dkv = _mm_setr_ps(dk0, dk1, dk2, dk3);
      }
      f0 = fold(f0, sum_zipped(z0, zip_add(a0.raw, e0.raw)), dkv, 0, b);
      if constexpr (QT > 1) f1 = fold(f1, sum_zipped(z1, zip_add(a1.raw, e1.raw)), dkv, 1, b);
      if constexpr (QT > 2) f2 = fold(f2, sum_zipped(z2, zip_add(a2.raw, e2.raw)), dkv, 2, b);
      if constexpr (QT > 3) f3 = fold(f3, sum_zipped(z3, zip_add(a3.raw, e3.raw)), dkv, 3, b);
    }
    const auto put = [&](float* out, __m128 f) {
      if (last == 3) return _mm_storeu_ps(out, f);
      HWY_ALIGN float t[4];
      _mm_store_ps(t, f);
      for (std::size_t k = 0; k <= last; ++k) out[k] = t[k];
    };
    put(scores + j, f0);
    if constexpr (QT > 1) put(scores + score_stride + j, f1);
    if constexpr (QT > 2) put(scores + 2 * score_stride + j, f2);
    if constexpr (QT > 3) put(scores + 3 * score_stride + j, f3);
  }
}
#endif

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
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
    // Blocks of 64 values or more: the reduction per key was most of the work. AVX3_DL and AVX2:
    // 32 too (AVX3_DL: one vpdpbusd per block and query leaves little else; AVX2: q8_0's decode
    // 0.61-0.89x against the per-key tile, docs/kernels.md; q8_0's offset of 128 is exact only
    // when added before the float conversion, as here).
    if constexpr ((V >= 64 || ((HWY_TARGET == HWY_AVX3_DL || HWY_TARGET == HWY_AVX2) && V >= 32)) &&
                  L32 >= 4) {
      i8_dot_tile4<decltype(qt)::value, Codec>(qq, corr.get(), i, dim, k, key_stride, n_keys,
                                               scores + i * score_stride, score_stride, st);
      return;
    }
#endif
    i8_dot_tile<decltype(qt)::value, Codec>(qq, corr.get(), i, dim, k, key_stride, n_keys,
                                            scores + i * score_stride, score_stride, st);
  });
}
#endif  // HWY_TARGET != HWY_SCALAR

}  // namespace strata::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();
