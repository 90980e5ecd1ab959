// turbo<6, G> (6-bit Lloyd-Max indices: turbo4's nibble planes plus turbo2's 2-bit planes for
// bits 4..5, docs/formats.md): its readers and block decoder, per Highway target. A fragment of
// kernels-inl.hpp. The encoder is turbo's (turbo-inl.hpp).
//
// A 64-entry table is four 16-byte lookups: instead each block's indices are unpacked in scalar
// code (turbo_unpack, the reference's) and looked up in the table into a small aligned buffer of
// unsigned int8 codes (keys) or f32 values (values), which the integer dot and the fused axpy
// drivers read as vectors: their multiply-adds run in SIMD, the unpack does not (turbo5's first
// readers did the same). The values are the reference's table entries, so the results are the
// reference arithmetic's (the K codes, the V f32 codebook: exact).

HWY_BEFORE_NAMESPACE();
namespace strata::kernels::HWY_NAMESPACE {

#if HWY_TARGET != HWY_SCALAR
// out[e] = table[index of element e] for the G elements of a turbo6 block. Not inlined: the
// drivers read a block in several places (per key of the 4-key dot, per query tile), and one
// copy per group and target keeps the kernel units' compile time down (docs/reliability.md).
template <int G, class T, std::size_t N>
HWY_NOINLINE void turbo6_lookup(const std::uint8_t* idx, const std::array<T, N>& table, T* out) {
  static_assert(N >= 64, "turbo6_lookup: a table of the 64 levels");
  std::uint8_t q[G];
  turbo_unpack<6, G>(idx, q);
  for (int e = 0; e < G; ++e) out[e] = table[q[e]];
}

// Keys as the 7-bit image of the codebook + 64 (codec_traits.hpp), as int8_block<turbo<6, G>>.
// Reader width: up to kMaxBytes lanes, at most the group.
template <int G, class CB> struct i8_reader<turbo<6, G, CB>> {
  using codec = turbo<6, G, CB>;
  using traits = turbo_traits<codec>;
  using D = hn::CappedTag<std::int8_t, (kMaxBytes < std::size_t(G) ? kMaxBytes : std::size_t(G))>;
  using DU = hn::RebindToUnsigned<D>;
  struct state {};
  static constexpr int kOffset = traits::codebook_offset;
  template <class F>
  static HWY_INLINE float block(const state&, const typename codec::block& b, F&& f) {
    static constexpr auto kCb = traits::codebook_u8();
    HWY_ALIGN std::uint8_t u[G];
    turbo6_lookup<G>(b.idx, kCb, u);
    const DU du;
    for (std::size_t o = 0; o < std::size_t(G); o += hn::Lanes(du)) f(hn::Load(du, u + o), o);
    return scale_f32(b.scale) * traits::unit;
  }
  using query_t = std::int8_t;
  static HWY_INLINE auto product(hn::Vec<DU> u, const query_t* q) {
    return dot_u8i8(D(), u, hn::LoadU(D(), q));
  }
};

// Values in element order: the f32 codebook entries of the unpacked indices.
template <int G, class CB> struct f32_reader<turbo<6, G, CB>> {
  using codec = turbo<6, G, CB>;
  using DF =
      hn::CappedTag<float, (kMaxBytes / 4 < std::size_t(G) ? kMaxBytes / 4 : std::size_t(G))>;
  struct state {};
  static constexpr bool ok = true, kNatural = true;
  static HWY_INLINE float scale(const typename codec::block& b) { return scale_f32(b.scale); }
  template <class F>
  static HWY_INLINE void visit(const state&, const typename codec::block& b, F&& f) {
    HWY_ALIGN float v[G];
    turbo6_lookup<G>(b.idx, CB::centroids, v);
    const DF df;
    for (std::size_t o = 0; o < std::size_t(G); o += hn::Lanes(df)) f(hn::Load(df, v + o), o);
  }
  static std::size_t position(std::size_t p) { return p; }
};

// Decode: value = scale * codebook[index], the reference's multiply, in element order.
template <int G, class CB>
struct block_decoder<turbo<6, G, CB>> : decode_by_f32_reader<turbo<6, G, CB>> {};

// Not the scalar reference's path on any SIMD target, at the smallest group either.
static_assert(use_i8_reader<turbo<6, 16>> && use_f32_reader<turbo<6, 16>> &&
                  use_block_decoder<turbo<6, 16>>,
              "turbo6: the readers run on every SIMD target");
#endif  // HWY_TARGET != HWY_SCALAR

}  // namespace strata::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();
