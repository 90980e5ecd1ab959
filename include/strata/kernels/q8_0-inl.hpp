// q8_0 (int8 values, one fp16 scale per 32; docs/formats.md): its readers and encoder, per
// Highway target. A fragment of kernels-inl.hpp.

HWY_BEFORE_NAMESPACE();
namespace strata::kernels::HWY_NAMESPACE {

#if HWY_TARGET != HWY_SCALAR
#if HWY_TARGET == HWY_AVX3_DL && defined(__GNUC__) && !defined(__clang__)
// AVX3_DL (g++: 256-bit EVEX vpdpbusd, simd-inl.hpp): the codes + 128 (unsigned: qs ^ 0x80)
// against int8 queries, one vpdpbusd per 32 values and query (exact: 4-byte sums without
// saturation), minus 128 * sum(q) once per query block. Not with pmaddubsw (its pair sums of
// codes up to 255 would saturate): clang keeps the int16 reader below.
template <> struct i8_reader<q8_0> {
  using D = hn::CappedTag<std::int8_t, 32>;
  using DU = hn::RebindToUnsigned<D>;
  using query_t = std::int8_t;
  static constexpr int kOffset = 128;
  struct state {};
  template <class F> static HWY_INLINE float block(const state&, const q8_0::block& b, F&& f) {
    const DU du;
    f(hn::Xor(hn::LoadU(du, reinterpret_cast<const std::uint8_t*>(b.qs)), hn::Set(du, 0x80)), 0);
    return scale_f32(b.d);
  }
  static constexpr float kUnit = 1.0f;  // half_scaled_keys
  static HWY_INLINE std::uint16_t half_scale(const q8_0::block& b) { return b.d; }
  static HWY_INLINE auto product(hn::Vec<DU> u, const query_t* q) {
    return dot_acc_u8i8(D(), hn::Zero(hn::Repartition<std::int32_t, D>()), u, hn::LoadU(D(), q));
  }
};
#else
// Keys widened to int16 (vpmovsxbw), queries stored as int16 once per call, one pmaddwd per 32
// (AVX3) or 16 values per query: exact, no saturation.
template <> struct i8_reader<q8_0> {
  using D16 = hn::CappedTag<std::int16_t, 32>;
  using D = hn::Repartition<std::int8_t, D16>;  // only for the D32/DF derived from it
  using query_t = std::int16_t;
  static constexpr int kOffset = 0;
  struct state {};
  template <class F> static HWY_INLINE float block(const state&, const q8_0::block& b, F&& f) {
    const D16 d16;
    const hn::Rebind<std::int8_t, D16> d8;
    for (std::size_t o = 0; o < 32; o += hn::Lanes(d16))
      f(hn::PromoteTo(d16, hn::LoadU(d8, b.qs + o)), o);
    return scale_f32(b.d);
  }
  static constexpr float kUnit = 1.0f;  // half_scaled_keys
  static HWY_INLINE std::uint16_t half_scale(const q8_0::block& b) { return b.d; }
  static HWY_INLINE auto product(hn::Vec<D16> k, const query_t* q) {
    const hn::Repartition<std::int32_t, D16> d32;
    auto s1 = hn::Zero(d32);
    const auto s0 = hn::ReorderWidenMulAccumulate(d32, k, hn::LoadU(D16(), q), hn::Zero(d32), s1);
    return hn::Add(s0, s1);
  }
};
#endif

template <> struct f32_reader<q8_0> {
  using DF = hn::CappedTag<float, 16>;
  struct state {};
  static constexpr bool ok = true, kNatural = true;
  static HWY_INLINE float scale(const q8_0::block& b) { return scale_f32(b.d); }
  template <class F> static HWY_INLINE void visit(const state&, const q8_0::block& b, F&& f) {
    const DF df;
    for (std::size_t o = 0; o < 32; o += hn::Lanes(df)) f(i8_to_f32(df, b.qs + o), o);
  }
  static std::size_t position(std::size_t p) { return p; }
};

template <> struct block_decoder<q8_0> : decode_by_f32_reader<q8_0> {};

// Exactly the reference's arithmetic (strata/reference/block.hpp): cleaned input, scale from
// the block's maximum (order-independent), element-wise rounding (nearbyint = NearestInt).
template <> struct block_encoder<q8_0> {
  static HWY_INLINE void block(const float* x, unsigned char* out) {
    const DE d;
    const std::size_t N = hn::Lanes(d);
    auto amax = hn::Zero(d);
    for (std::size_t i = 0; i < 32; i += N)
      amax = hn::Max(amax, hn::Abs(clean_f(d, hn::LoadU(d, x + i))));
    const float dm = std::min(hn::GetLane(hn::MaxOfLanes(d, amax)) / 127.0f, f16_max);
    const float id = dm != 0.0f ? 1.0f / dm : 0.0f;
    const std::uint16_t h = scale_f16(dm);
    std::memcpy(out, &h, 2);
    const hn::Rebind<std::int8_t, DE> d8;
    const auto lo = hn::Set(d, -127.0f), hi = hn::Set(d, 127.0f), vid = hn::Set(d, id);
    for (std::size_t i = 0; i < 32; i += N) {
      const auto v = hn::Min(hn::Max(hn::Mul(clean_f(d, hn::LoadU(d, x + i)), vid), lo), hi);
      hn::StoreU(hn::DemoteTo(d8, hn::NearestInt(v)), d8,
                 reinterpret_cast<std::int8_t*>(out + 2 + i));
    }
  }
  static HWY_INLINE void encode(const float* x, std::size_t n, void* out) {
    auto* o = static_cast<unsigned char*>(out);
    for (std::size_t b = 0; b < n / 32; ++b) block(x + b * 32, o + b * q8_0::block_bytes);
  }
};

#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
// One pass of 4 chunks in element order.
template <> struct lane_reader<q8_0> {
  static constexpr std::size_t kPasses = 1;
  static constexpr bool four_rows = false;
  struct tables {};
  static constexpr std::size_t pos(std::size_t, std::size_t c) { return 8 * c; }
  template <std::size_t C>
  static HWY_INLINE __m256 chunk(const tables&, const q8_0::block& b, std::size_t) {
    const auto* p = reinterpret_cast<const __m128i*>(b.qs + 8 * C);
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(p)));
  }
};
#endif
// No zmm_reader (axpy_zmm-inl.hpp): on AVX3 its groups of 4 rows keep fused_axpy (16 lanes
// already), measured 1.10-1.15x faster on the decode rows than the 512-bit driver
// (docs/kernels.md, "The V side at 512 bits").
#endif  // HWY_TARGET != HWY_SCALAR

}  // namespace strata::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();
