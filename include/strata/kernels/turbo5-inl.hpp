// turbo<5, G> (5-bit Lloyd-Max indices: turbo4's nibble planes plus turbo3's high-bit planes,
// docs/formats.md): its readers, per Highway target. A fragment of kernels-inl.hpp. A 32-entry
// codebook does not fit one byte-table lookup, so each block's indices are unpacked in scalar
// code (turbo_unpack, the reference's) to a small aligned buffer of int8 codes or f32 values,
// which the integer dot and the fused axpy drivers then read as vectors: the multiply-adds
// run in SIMD, the unpack does not. The encoder is turbo's (turbo-inl.hpp); decode is the
// scalar reference.

HWY_BEFORE_NAMESPACE();
namespace strata::kernels::HWY_NAMESPACE {

#if HWY_TARGET != HWY_SCALAR
// Keys as the 7-bit image of the codebook + 64 (codec_traits.hpp), as int8_block<turbo<5, G>>.
template <int G, class CB> struct i8_reader<turbo<5, G, CB>> {
  using codec = turbo<5, G, CB>;
  using traits = turbo_traits<codec>;
  static constexpr std::size_t kBytes = kMaxBytes < std::size_t(G) ? kMaxBytes : std::size_t(G);
  using D = hn::CappedTag<std::int8_t, kBytes>;
  using DU = hn::RebindToUnsigned<D>;
  struct state {};
  static constexpr int kOffset = traits::codebook_offset;
  template <class F>
  static HWY_INLINE float block(const state&, const typename codec::block& b, F&& f) {
    static constexpr auto kCb = traits::codebook_u8();
    std::uint8_t q[G];
    turbo_unpack<5, G>(b.idx, q);
    HWY_ALIGN std::uint8_t u[G];
    for (int e = 0; e < G; ++e) u[e] = kCb[q[e]];
    const DU du;
    for (std::size_t o = 0; o < std::size_t(G); o += hn::Lanes(du)) f(hn::Load(du, u + o), o);
    return scale_f32(b.scale) * traits::unit;
  }
  using query_t = std::int8_t;
  static HWY_INLINE auto product(hn::Vec<DU> u, const query_t* q) {
    return dot_u8i8(D(), u, hn::LoadU(D(), q));
  }
};

// Values in element order: the codebook entries of the unpacked indices.
template <int G, class CB> struct f32_reader<turbo<5, G, CB>> {
  using codec = turbo<5, G, CB>;
  static constexpr std::size_t kFloats =
      kMaxBytes / 4 < std::size_t(G) ? kMaxBytes / 4 : std::size_t(G);
  using DF = hn::CappedTag<float, kFloats>;
  struct state {};
  static constexpr bool ok = true, kNatural = true;
  static HWY_INLINE float scale(const typename codec::block& b) { return scale_f32(b.scale); }
  template <class F>
  static HWY_INLINE void visit(const state&, const typename codec::block& b, F&& f) {
    std::uint8_t q[G];
    turbo_unpack<5, G>(b.idx, q);
    HWY_ALIGN float v[G];
    for (int e = 0; e < G; ++e) v[e] = CB::centroids[q[e]];
    const DF df;
    for (std::size_t o = 0; o < std::size_t(G); o += hn::Lanes(df)) f(hn::Load(df, v + o), o);
  }
  static std::size_t position(std::size_t p) { return p; }
};
#endif  // HWY_TARGET != HWY_SCALAR

}  // namespace strata::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();
