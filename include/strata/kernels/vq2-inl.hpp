// vq2<G> (d8 lattice codes, 16 bits per 8 values, one fp16 scale per group; docs/formats.md):
// its readers and encoder, per Highway target. A fragment of kernels-inl.hpp.

HWY_BEFORE_NAMESPACE();
namespace strata::kernels::HWY_NAMESPACE {

#if HWY_TARGET != HWY_SCALAR
// vq2: the G / 8 codes of a group to G int8 values k (+ offset), in element order. Per code
// two table reads (the pattern's base vector b, the flip mask of its 7 sign bits, both 8
// bytes); then per vector k = (b ^ m) - m negates the flipped bytes.
template <int G, int kOff = 0>
HWY_INLINE void vq2_unpack(const typename vq2<G>::block& b, std::int8_t* k) {
  HWY_ALIGN std::uint64_t w[G / 8], m[G / 8];
  for (int c = 0; c < G / 8; ++c) {
    const unsigned code = b.code[c];
    std::memcpy(&w[c], d8::book.base[code & 511u].data(), 8);
    m[c] = d8::book.flip[code >> 9];
  }
  const hn::CappedTag<std::int8_t, std::size_t(G)> d8t;
  const auto* wb = reinterpret_cast<const std::int8_t*>(w);
  const auto* mb = reinterpret_cast<const std::int8_t*>(m);
  for (std::size_t o = 0; o < std::size_t(G); o += hn::Lanes(d8t)) {
    const auto mm = hn::Load(d8t, mb + o);
    auto v = hn::Sub(hn::Xor(hn::Load(d8t, wb + o), mm), mm);
    if constexpr (kOff != 0) v = hn::Add(v, hn::Set(d8t, std::int8_t(kOff)));
    hn::Store(v, d8t, k + o);
  }
}

template <int G> struct f32_reader<vq2<G>> {
  using DF = hn::CappedTag<float, 16>;
  struct state {};
  static constexpr bool ok = true, kNatural = true;
  // Values: the odd integers k; scale / 2 makes them the lattice points (exact).
  static HWY_INLINE float scale(const typename vq2<G>::block& b) {
    return 0.5f * scale_f32(b.scale);
  }
  template <class F>
  static HWY_INLINE void visit(const state&, const typename vq2<G>::block& b, F&& f) {
    const DF df;
    HWY_ALIGN std::int8_t k[G];
    vq2_unpack<G>(b, k);
    for (std::size_t o = 0; o < std::size_t(G); o += hn::Lanes(df)) f(i8_to_f32(df, k + o), o);
  }
  static std::size_t position(std::size_t p) { return p; }
};

template <int G> struct block_decoder<vq2<G>> : decode_by_f32_reader<vq2<G>> {};

// vq2 keys: the unpacked odd integers k + 8 (1..15, unsigned for pmaddubsw), factor scale / 2.
template <int G> struct i8_reader<vq2<G>> {
  using codec = vq2<G>;
  static constexpr std::size_t kBytes = kMaxBytes < std::size_t(G) ? kMaxBytes : std::size_t(G);
  using D = hn::CappedTag<std::int8_t, kBytes>;
  using DU = hn::RebindToUnsigned<D>;
  static constexpr int kOffset = 8;
  struct state {};
  template <class F>
  static HWY_INLINE float block(const state&, const typename codec::block& b, F&& f) {
    HWY_ALIGN std::int8_t k[G];
    vq2_unpack<G, kOffset>(b, k);
    const DU du;
    for (std::size_t o = 0; o < std::size_t(G); o += hn::Lanes(du))
      f(hn::Load(du, reinterpret_cast<const std::uint8_t*>(k) + o), o);
    return f32_reader<codec>::scale(b);
  }
  using query_t = std::int8_t;
  static HWY_INLINE auto product(hn::Vec<DU> u, const query_t* q) {
    return dot_u8i8(D(), u, hn::LoadU(D(), q));
  }
};

// Encode: the reference's encoder (reference::detail::encode_vq2_block, d8::encode_chunk_with)
// with the search outside the ball in SIMD lanes: the same int32 costs as
// d8::detail::best_pattern, one pattern per lane, and its choice (the lowest pattern of least
// cost): the reference's bytes. Not inlined (inline for the ODR only): it is called from
// d8::encode_chunk_with, which has no target attributes.
inline HWY_NOINLINE int vq2_best_pattern(const std::int32_t* u, unsigned neg) {
  const hn::CappedTag<std::int32_t, 16> d;
  const hn::Rebind<std::int16_t, decltype(d)> d16;
  const hn::Rebind<std::uint8_t, decltype(d)> d8;
  const auto nv = hn::Set(d, std::int32_t(strata::d8::parity8(neg)));
  const auto one = hn::Set(d, 1);
  const auto big = hn::Set(d, std::numeric_limits<std::int32_t>::max());
  const std::size_t N = hn::Lanes(d);
  auto least = big, at = hn::Zero(d);  // per lane: least cost so far and its (first) pattern
  auto idx = hn::Iota(d, 0);
  for (std::size_t p = 0; p < std::size_t(d8::patterns); p += N) {
    auto s = hn::Zero(d), m = big;
    for (std::size_t i = 0; i < 8; ++i) {
      const auto a = hn::PromoteTo(d, hn::LoadU(d16, d8::book.abs_by_coord[i].data() + p));
      const auto x = hn::Mul(a, hn::Set(d, u[i]));
      s = hn::Add(s, x);
      m = hn::Min(m, x);
    }
    const auto par = hn::PromoteTo(d, hn::LoadU(d8, d8::book.parity.data() + p));
    const auto flip =
        hn::IfThenElseZero(hn::Eq(hn::And(hn::Xor(par, nv), one), one), hn::Add(m, m));
    const auto n2 = hn::ShiftLeft<6>(hn::LoadU(d, d8::book.norm2.data() + p));
    const auto cost = hn::Sub(hn::Add(n2, flip), s);
    const auto better = hn::Lt(cost, least);
    least = hn::IfThenElse(better, cost, least);
    at = hn::IfThenElse(better, idx, at);
    idx = hn::Add(idx, hn::Set(d, std::int32_t(N)));
  }
  // Across lanes: the least cost, then the lowest pattern having it.
  HWY_ALIGN std::int32_t lc[16], li[16];
  hn::Store(least, d, lc);
  hn::Store(at, d, li);
  int best = li[0];
  std::int32_t c = lc[0];
  for (std::size_t l = 1; l < N; ++l)
    if (lc[l] < c || (lc[l] == c && li[l] < best)) c = lc[l], best = li[l];
  return best;
}

template <int G> struct block_encoder<vq2<G>> {
  static HWY_INLINE void encode(const float* x, std::size_t n, void* out) {
    auto* dst = static_cast<unsigned char*>(out);
    for (std::size_t i = 0; i < n / std::size_t(G); ++i) {
      typename vq2<G>::block b{};
      reference::detail::encode_vq2_block<G>(x + i * std::size_t(G), b, [](const float* v) {
        return d8::encode_chunk_with(v, vq2_best_pattern);
      });
      std::memcpy(dst + i * sizeof b, &b, sizeof b);
    }
  }
};

#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
// vq2 (groups of 32 or more): chunk C of pass p is code 4p + C, elements 32p + 8C .. + 7; the
// two table reads give the base vector and the flip mask, (b ^ m) - m the signed odd values.
template <int G>
requires(G >= 32) struct lane_reader<vq2<G>> {
  static constexpr bool four_rows = false;
  static constexpr std::size_t kPasses = std::size_t(G / 32);
  struct tables {};
  static constexpr std::size_t pos(std::size_t p, std::size_t c) { return 32 * p + 8 * c; }
  template <std::size_t C>
  static HWY_INLINE __m256 chunk(const tables&, const typename vq2<G>::block& b, std::size_t p) {
    const unsigned code = b.code[4 * p + C];
    std::uint64_t w;
    std::memcpy(&w, d8::book.base[code & 511u].data(), 8);
    const __m128i m = _mm_cvtsi64_si128(static_cast<long long>(d8::book.flip[code >> 9]));
    const __m128i k =
        _mm_sub_epi8(_mm_xor_si128(_mm_cvtsi64_si128(static_cast<long long>(w)), m), m);
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(k));
  }
};

#endif  // x86 AVX2 / AVX3
#endif  // HWY_TARGET != HWY_SCALAR

}  // namespace strata::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();
