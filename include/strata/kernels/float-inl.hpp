// f32 / f16 / bf16 (one value per element, float_io): the formats' load/store and their
// encode, decode, dot and axpy, per Highway target (the SCALAR target included). A fragment
// of kernels-inl.hpp.

HWY_BEFORE_NAMESPACE();
namespace strata::kernels::HWY_NAMESPACE {

// float_io<Codec> (roles-inl.hpp): load N values of a row as f32, store N f32 values encoded.
template <> struct float_io<f32> {
  using elem = float;
  template <class D> static HWY_INLINE hn::Vec<D> load(D d, const elem* p) {
    return hn::LoadU(d, p);
  }
  template <class D> static HWY_INLINE void store(D d, hn::Vec<D> v, elem* p) {
    hn::StoreU(v, d, p);
  }
  static float scalar(elem v) { return v; }
  static elem encode_scalar(float v) { return v; }
};

template <> struct float_io<f16> {
  using elem = std::uint16_t;
  template <class D> static HWY_INLINE hn::Vec<D> load(D d, const elem* p) {
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
    const hn::Rebind<hwy::float16_t, D> dh;  // F16C
    return hn::PromoteTo(d, hn::LoadU(dh, reinterpret_cast<const hwy::float16_t*>(p)));
#else
    // Highway's emulated conversion maps inf/NaN to finite values: exact integer version.
    // |h| << 13 read as f32 and times 2^112 is the value for normals and subnormals alike.
    const hn::RebindToUnsigned<D> du;
    const hn::RebindToSigned<D> di;
    const hn::Rebind<std::uint16_t, D> du16;
    const auto h = hn::PromoteTo(du, hn::LoadU(du16, p));
    const auto em = hn::And(h, hn::Set(du, 0x7fffu));
    const auto sign = hn::BitCast(d, hn::ShiftLeft<16>(hn::And(h, hn::Set(du, 0x8000u))));
    const auto finite = hn::Mul(hn::BitCast(d, hn::ShiftLeft<13>(em)), hn::Set(d, 0x1p112f));
    const auto infnan = hn::BitCast(d, hn::Or(hn::ShiftLeft<13>(em), hn::Set(du, 0x7f800000u)));
    const auto is_special = hn::RebindMask(d, hn::Gt(hn::BitCast(di, em), hn::Set(di, 0x7bff)));
    return hn::Or(hn::IfThenElse(is_special, infnan, finite), sign);
#endif
  }
  template <class D> static HWY_INLINE void store(D d, hn::Vec<D> v, elem* p) {
#if HWY_TARGET == HWY_AVX2 || HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
    // F16C rounds to nearest even, like the reference.
    const hn::Rebind<hwy::float16_t, D> dh;
    hn::StoreU(hn::DemoteTo(dh, v), dh, reinterpret_cast<hwy::float16_t*>(p));
#else
    // Other targets emulate the conversion without correct rounding: use the reference.
    HWY_ALIGN float tmp[hn::MaxLanes(d)];
    hn::Store(v, d, tmp);
    for (std::size_t i = 0; i < hn::Lanes(d); ++i) p[i] = f32_to_f16(tmp[i]);
#endif
  }
  static float scalar(elem v) { return f16_to_f32(v); }
  static elem encode_scalar(float v) { return f32_to_f16(v); }
};

template <> struct float_io<bf16> {
  using elem = std::uint16_t;
  template <class D> static HWY_INLINE hn::Vec<D> load(D d, const elem* p) {
    const hn::RebindToUnsigned<D> du;
    const hn::Rebind<std::uint16_t, D> du16;
    return hn::BitCast(d, hn::ShiftLeft<16>(hn::PromoteTo(du, hn::LoadU(du16, p))));
  }
  template <class D> static HWY_INLINE void store(D d, hn::Vec<D> v, elem* p) {
    HWY_ALIGN float tmp[hn::MaxLanes(d)];
    hn::Store(v, d, tmp);
    for (std::size_t i = 0; i < hn::Lanes(d); ++i) p[i] = encode_scalar(tmp[i]);
  }
  static float scalar(elem v) { return bf16_to_f32(v); }
  static elem encode_scalar(float v) { return f32_to_bf16(v); }
};

template <class Codec> HWY_INLINE void float_encode(const float* x, std::size_t n, void* out) {
  static_assert(require<float_format<Codec>>(role::float_io));
  using io = float_io<Codec>;
  auto* o = static_cast<typename io::elem*>(out);
  const hn::ScalableTag<float> d;
  const std::size_t N = hn::Lanes(d);
  std::size_t i = 0;
  for (; i + N <= n; i += N) io::store(d, hn::LoadU(d, x + i), o + i);
  for (; i < n; ++i) o[i] = io::encode_scalar(x[i]);
}

template <class Codec> HWY_INLINE void float_decode(const void* in, std::size_t n, float* x) {
  static_assert(require<float_format<Codec>>(role::float_io));
  using io = float_io<Codec>;
  const auto* p = static_cast<const typename io::elem*>(in);
  const hn::ScalableTag<float> d;
  const std::size_t N = hn::Lanes(d);
  std::size_t i = 0;
  for (; i + N <= n; i += N) hn::StoreU(io::load(d, p + i), d, x + i);
  for (; i < n; ++i) x[i] = io::scalar(p[i]);
}

#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
// A row of f32 / f16 / bf16 read as blocks of 16 values (one chunk each: vcvtph2ps for f16),
// no factor.
template <class E> struct float_chunk { E v[16]; };
static_assert(sizeof(float_chunk<std::uint16_t>) == 32 && sizeof(float_chunk<float>) == 64);
template <class Codec>
requires(std::is_same_v<Codec, f32> || std::is_same_v<Codec, f16> ||
         std::is_same_v<Codec, bf16>) struct zmm_reader<Codec> {
  using io = float_io<Codec>;
  using block = float_chunk<typename io::elem>;
  static constexpr std::size_t kValues = 16;
  static constexpr bool kScaled = false;
  struct tables {};
  static constexpr std::size_t pos(std::size_t) { return 0; }
  template <std::size_t C> static HWY_INLINE __m512 chunk(const tables&, const block& b) {
    return io::load(hn::Full512<float>(), b.v).raw;
  }
  static HWY_INLINE float scale(const block&) { return 1.0f; }
};
#endif

// Scores of QT (1 to 4) queries against n_keys keys: each key chunk is converted to f32 once and
// used for all QT queries; QT <= 2 runs two accumulator chains per query, QT >= 3 two keys at a
// time (each query chunk is loaded once for both: 2 QT accumulators, 2 keys and a query fit
// AVX2's 16 registers). Each key's sums are the same operations in the same order either way.
template <std::size_t QT, class Codec>
HWY_INLINE void float_dot_tile(const float* q, std::size_t dim, const char* keys,
                               std::size_t key_stride, std::size_t n_keys, float* scores,
                               std::size_t score_stride) {
  using io = float_io<Codec>;
  using elem = typename io::elem;
  const hn::ScalableTag<float> d;
  const std::size_t N = hn::Lanes(d);
  const float* q0 = q;
  const float* q1 = q + (QT > 1 ? dim : 0);
  const float* q2 = q + (QT > 2 ? 2 * dim : 0);
  const float* q3 = q + (QT > 3 ? 3 * dim : 0);
  // The tail of a key's dot (dim % Lanes values), added to its stored scores.
  const auto tail = [&](const elem* row, std::size_t c, std::size_t j) {
    for (; c < dim; ++c) {
      const float k = io::scalar(row[c]);
      scores[j] += q0[c] * k;
      if constexpr (QT > 1) scores[score_stride + j] += q1[c] * k;
      if constexpr (QT > 2) scores[2 * score_stride + j] += q2[c] * k;
      if constexpr (QT > 3) scores[3 * score_stride + j] += q3[c] * k;
    }
  };
  std::size_t j = 0;
  if constexpr (QT >= 3) {
    for (; j + 2 <= n_keys; j += 2) {
      const auto* r0 = reinterpret_cast<const elem*>(keys + j * key_stride);
      const auto* r1 = reinterpret_cast<const elem*>(keys + (j + 1) * key_stride);
      prefetch_ahead(keys, j, n_keys, key_stride, dim * sizeof(elem));
      prefetch_ahead(keys, j + 1, n_keys, key_stride, dim * sizeof(elem));
      auto a0 = hn::Zero(d), a1 = hn::Zero(d), a2 = hn::Zero(d), a3 = hn::Zero(d);
      auto e0 = hn::Zero(d), e1 = hn::Zero(d), e2 = hn::Zero(d), e3 = hn::Zero(d);
      std::size_t c = 0;
      for (; c + N <= dim; c += N) {
        const auto k0 = io::load(d, r0 + c);
        const auto k1 = io::load(d, r1 + c);
        auto x = hn::LoadU(d, q0 + c);
        a0 = hn::MulAdd(x, k0, a0);
        e0 = hn::MulAdd(x, k1, e0);
        x = hn::LoadU(d, q1 + c);
        a1 = hn::MulAdd(x, k0, a1);
        e1 = hn::MulAdd(x, k1, e1);
        x = hn::LoadU(d, q2 + c);
        a2 = hn::MulAdd(x, k0, a2);
        e2 = hn::MulAdd(x, k1, e2);
        if constexpr (QT > 3) {
          x = hn::LoadU(d, q3 + c);
          a3 = hn::MulAdd(x, k0, a3);
          e3 = hn::MulAdd(x, k1, e3);
        }
      }
      store_scores<QT>(d, a0, a1, a2, a3, scores, score_stride, j);
      store_scores<QT>(d, e0, e1, e2, e3, scores, score_stride, j + 1);
      tail(r0, c, j);
      tail(r1, c, j + 1);
    }
  }
  for (; j < n_keys; ++j) {
    const auto* row = reinterpret_cast<const elem*>(keys + j * key_stride);
    prefetch_ahead(keys, j, n_keys, key_stride, dim * sizeof(elem));
    auto a0 = hn::Zero(d), a1 = hn::Zero(d), a2 = hn::Zero(d), a3 = hn::Zero(d);
    auto b0 = hn::Zero(d), b1 = hn::Zero(d);
    std::size_t c = 0;
    if constexpr (QT <= 2) {
      for (; c + 2 * N <= dim; c += 2 * N) {
        const auto k0 = io::load(d, row + c);
        const auto k1 = io::load(d, row + c + N);
        a0 = hn::MulAdd(hn::LoadU(d, q0 + c), k0, a0);
        b0 = hn::MulAdd(hn::LoadU(d, q0 + c + N), k1, b0);
        if constexpr (QT > 1) {
          a1 = hn::MulAdd(hn::LoadU(d, q1 + c), k0, a1);
          b1 = hn::MulAdd(hn::LoadU(d, q1 + c + N), k1, b1);
        }
      }
    }
    for (; c + N <= dim; c += N) {
      const auto k0 = io::load(d, row + c);
      a0 = hn::MulAdd(hn::LoadU(d, q0 + c), k0, a0);
      if constexpr (QT > 1) a1 = hn::MulAdd(hn::LoadU(d, q1 + c), k0, a1);
      if constexpr (QT > 2) a2 = hn::MulAdd(hn::LoadU(d, q2 + c), k0, a2);
      if constexpr (QT > 3) a3 = hn::MulAdd(hn::LoadU(d, q3 + c), k0, a3);
    }
    store_scores<QT>(d, hn::Add(a0, b0), hn::Add(a1, b1), a2, a3, scores, score_stride, j);
    tail(row, c, j);
  }
}

template <class Codec>
HWY_INLINE void float_dot(const float* q, std::size_t n_q, std::size_t dim, const void* keys,
                          std::size_t key_stride, std::size_t n_keys, float* scores,
                          std::size_t score_stride) {
  static_assert(require<float_format<Codec>>(role::float_io));
  const char* k = static_cast<const char*>(keys);
  for_query_tiles(n_q, [&](std::size_t i, auto qt) {
    float_dot_tile<decltype(qt)::value, Codec>(q + i * dim, dim, k, key_stride, n_keys,
                                               scores + i * score_stride, score_stride);
  });
}

// out_i += w_ij * v_j for a tile of QT (1 to 4) query rows, two value rows at a time: the
// tile's 2 x QT weights are held in registers (the compiler cannot rule out that out aliases w,
// so a weight read inside the chunk loop was read again for every chunk), each out chunk is
// loaded and stored once per two rows, each value chunk converted once for the QT rows. Every
// element of out is the chain out + w_i0 v_0 + w_i1 v_1 + ... in row order, as it always was.
template <std::size_t QT, class Codec>
HWY_INLINE void float_axpy_tile(const float* w, std::size_t w_stride, const char* base,
                                std::size_t value_stride, std::size_t n_values, std::size_t dim,
                                float* out) {
  using io = float_io<Codec>;
  using elem = typename io::elem;
  const hn::ScalableTag<float> d;
  const std::size_t N = hn::Lanes(d);
  float* o0 = out;
  float* o1 = out + (QT > 1 ? dim : 0);
  float* o2 = out + (QT > 2 ? 2 * dim : 0);
  float* o3 = out + (QT > 3 ? 3 * dim : 0);
  const auto wt = [&](std::size_t i, std::size_t j) { return i < QT ? w[i * w_stride + j] : 0.0f; };
  std::size_t j = 0;
  for (; j + 2 <= n_values; j += 2) {
    const auto* r0 = reinterpret_cast<const elem*>(base + j * value_stride);
    const auto* r1 = reinterpret_cast<const elem*>(base + (j + 1) * value_stride);
    prefetch_ahead(base, j, n_values, value_stride, dim * sizeof(elem));
    prefetch_ahead(base, j + 1, n_values, value_stride, dim * sizeof(elem));
    const auto x0 = hn::Set(d, wt(0, j)), y0 = hn::Set(d, wt(0, j + 1));
    const auto x1 = hn::Set(d, wt(1, j)), y1 = hn::Set(d, wt(1, j + 1));
    const auto x2 = hn::Set(d, wt(2, j)), y2 = hn::Set(d, wt(2, j + 1));
    const auto x3 = hn::Set(d, wt(3, j)), y3 = hn::Set(d, wt(3, j + 1));
    std::size_t c = 0;
    for (; c + N <= dim; c += N) {
      const auto v0 = io::load(d, r0 + c);
      const auto v1 = io::load(d, r1 + c);
      hn::StoreU(hn::MulAdd(y0, v1, hn::MulAdd(x0, v0, hn::LoadU(d, o0 + c))), d, o0 + c);
      if constexpr (QT > 1)
        hn::StoreU(hn::MulAdd(y1, v1, hn::MulAdd(x1, v0, hn::LoadU(d, o1 + c))), d, o1 + c);
      if constexpr (QT > 2)
        hn::StoreU(hn::MulAdd(y2, v1, hn::MulAdd(x2, v0, hn::LoadU(d, o2 + c))), d, o2 + c);
      if constexpr (QT > 3)
        hn::StoreU(hn::MulAdd(y3, v1, hn::MulAdd(x3, v0, hn::LoadU(d, o3 + c))), d, o3 + c);
    }
    for (; c < dim; ++c) {
      const float v0 = io::scalar(r0[c]), v1 = io::scalar(r1[c]);
      for (std::size_t i = 0; i < QT; ++i) {
        out[i * dim + c] += w[i * w_stride + j] * v0;
        out[i * dim + c] += w[i * w_stride + j + 1] * v1;
      }
    }
  }
  for (; j < n_values; ++j) {
    const auto* r0 = reinterpret_cast<const elem*>(base + j * value_stride);
    std::size_t c = 0;
    for (; c + N <= dim; c += N) {
      const auto v0 = io::load(d, r0 + c);
      for (std::size_t i = 0; i < QT; ++i) {
        float* o = out + i * dim + c;
        hn::StoreU(hn::MulAdd(hn::Set(d, w[i * w_stride + j]), v0, hn::LoadU(d, o)), d, o);
      }
    }
    for (; c < dim; ++c) {
      const float v0 = io::scalar(r0[c]);
      for (std::size_t i = 0; i < QT; ++i) out[i * dim + c] += w[i * w_stride + j] * v0;
    }
  }
}

template <class Codec>
HWY_INLINE void float_axpy(const float* w, std::size_t n_q, std::size_t w_stride,
                           const void* values, std::size_t value_stride, std::size_t n_values,
                           std::size_t dim, float* out) {
  static_assert(require<float_format<Codec>>(role::float_io));
  const char* base = static_cast<const char*>(values);
  for_query_tiles(n_q, [&](std::size_t i, auto qt) {
    float_axpy_tile<decltype(qt)::value, Codec>(w + i * w_stride, w_stride, base, value_stride,
                                                n_values, dim, out + i * dim);
  });
}

}  // namespace strata::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();
