// turbo<5, G> (5-bit Lloyd-Max indices: turbo4's nibble planes plus turbo3's high-bit planes,
// docs/formats.md): its readers and block decoder, per Highway target. A fragment of
// kernels-inl.hpp. The encoder is turbo's (turbo-inl.hpp).
//
// A 32-entry table does not fit one 16-byte lookup (pshufb/tbl): each vector of indices is
// read as its low four bits (a nibble plane: And / ShiftRight) and a mask of the lanes whose
// bit 4 is set, and every table is two 16-entry halves, looked up with the nibbles and
// selected by the mask. All in SIMD: no index is unpacked in scalar code, and the values are
// the same table entries as the reference's (the K codes, the V f32 codebook bits: exact).

HWY_BEFORE_NAMESPACE();
namespace strata::kernels::HWY_NAMESPACE {

#if HWY_TARGET != HWY_SCALAR
// turbo5's indices L = Lanes(DU) at a time (L >= 16, a power of two; L <= G/2, or L = G):
// for_each(idx, f) calls f(nib, hi, o) with the low four bits of elements o .. o + L - 1 (u8
// lanes) and the mask of those lanes whose bit 4 is set. L <= G/2: each chunk lies in one nibble
// half (o < G/2: the low nibbles of bytes o .., else the high nibbles of bytes o - G/2 ..);
// L = G: the G/2 nibble bytes repeated twice, low nibbles in the first half of the lanes.
// Bit 4 of element e is bit e / E of high byte e % E (E = G/8): lane l of chunk o tests high
// byte (o + l) % E against the bit 1 << ((o + l) / E), a constant table (kBit) loaded at o. When
// L <= E those bytes are L consecutive ones at o % E; when L > E (o is then a multiple of E)
// they are the E high bytes repeated, loaded once per block as one broadcast.
template <int G, class DU> struct turbo5_planes {
  static constexpr std::size_t kL = hn::MaxLanes(DU());
  static constexpr std::size_t kHalf = std::size_t(G) / 2, kE = std::size_t(G) / 8;
  static_assert(kL >= 16 && (kL <= kHalf || kL == std::size_t(G)),
                "turbo5_planes: chunks of 16 or more lanes, inside one nibble half or the group");
  struct bit_table {
    std::uint8_t b[G];
  };
  HWY_ALIGN static constexpr bit_table kBit = [] {
    bit_table t{};
    for (std::size_t e = 0; e < std::size_t(G); ++e) t.b[e] = std::uint8_t(1u << (e / kE));
    return t;
  }();
  // N bytes at p repeated over the L lanes (N < L: a broadcast).
  template <std::size_t N> static HWY_INLINE hn::Vec<DU> repeated(const std::uint8_t* p) {
    const DU du;
    static_assert(N < kL && kL % N == 0);
    if constexpr (N == 16) {
      return hn::LoadDup128(du, p);
    } else if constexpr (N == 32) {  // L = 64 (AVX3): the 32 bytes twice
      static_assert(kL == 64);
      const hn::Half<DU> dh;
      const auto x = hn::LoadU(dh, p);
      return hn::Combine(du, x, x);
    } else {
      using W = std::conditional_t<
          N == 8, std::uint64_t,
          std::conditional_t<N == 4, std::uint32_t,
                             std::conditional_t<N == 2, std::uint16_t, std::uint8_t>>>;
      static_assert(sizeof(W) == N);
      W w;
      std::memcpy(&w, p, sizeof w);
      return hn::BitCast(du, hn::Set(hn::Repartition<W, DU>(), w));
    }
  }
  template <class F> static HWY_INLINE void for_each(const std::uint8_t* idx, F&& f) {
    const DU du;
    const std::uint8_t* h = idx + kHalf;
    const auto lo4 = hn::Set(du, std::uint8_t(0x0F));
    if constexpr (kL == std::size_t(G)) {  // the whole group in one vector
      const auto v = repeated<kHalf>(idx);
      const auto nib = hn::IfThenElse(hn::FirstN(du, kHalf), hn::And(v, lo4), hn::ShiftRight<4>(v));
      f(nib, hn::TestBit(repeated<kE>(h), hn::Load(du, kBit.b)), std::size_t{0});
    } else {
      [[maybe_unused]] const auto hr = [&] {
        if constexpr (kL > kE)
          return repeated<kE>(h);
        else
          return hn::Zero(du);
      }();
      const auto high = [&](std::size_t o) {
        if constexpr (kL > kE)
          return hn::TestBit(hr, hn::Load(du, kBit.b + o));
        else
          return hn::TestBit(hn::LoadU(du, h + o % kE), hn::Load(du, kBit.b + o));
      };
      for (std::size_t s = 0; s < kHalf; s += kL) {
        const auto v = hn::LoadU(du, idx + s);
        f(hn::And(v, lo4), high(s), s);
        f(hn::ShiftRight<4>(v), high(kHalf + s), kHalf + s);
      }
    }
  }
};

// The reader width for turbo<5, G>: up to kMaxBytes lanes, at most the group (as the readers
// before them: the integer dot's per-lane float sums, and so its bits, depend on the width).
template <int G>
inline constexpr std::size_t turbo5_lanes = kMaxBytes < std::size_t(G) ? kMaxBytes : std::size_t(G);

// Keys as the 7-bit image of the codebook + 64 (codec_traits.hpp), as int8_block<turbo<5, G>>:
// its 32 entries as two byte tables, selected by bit 4.
template <int G, class CB> struct i8_reader<turbo<5, G, CB>> {
  using codec = turbo<5, G, CB>;
  using traits = turbo_traits<codec>;
  using D = hn::CappedTag<std::int8_t, turbo5_lanes<G>>;
  using DU = hn::RebindToUnsigned<D>;
  using planes = turbo5_planes<G, DU>;
  struct state {};
  static constexpr int kOffset = traits::codebook_offset;
  template <class F>
  static HWY_INLINE float block(const state&, const typename codec::block& b, F&& f) {
    HWY_ALIGN static constexpr auto kCb = traits::codebook_u8();
    static_assert(kCb.size() == 32);
    const DU du;
    const auto lo = hn::LoadDup128(du, kCb.data()), hi = hn::LoadDup128(du, kCb.data() + 16);
    planes::for_each(b.idx, [&](hn::Vec<DU> nib, hn::Mask<DU> h, std::size_t o) {
      f(hn::IfThenElse(h, hn::TableLookupBytes(hi, nib), hn::TableLookupBytes(lo, nib)), o);
    });
    return scale_f32(b.scale) * traits::unit;
  }
  using query_t = std::int8_t;
  static HWY_INLINE auto product(hn::Vec<DU> u, const query_t* q) {
    return dot_u8i8(D(), u, hn::LoadU(D(), q));
  }
};

// The f32 values of a block's indices (L = Lanes(DU) per chunk): each of the four bytes of
// each value from two byte tables (codebook entries 0-15 and 16-31) selected by bit 4, put
// together by byte_planes_to_f32 (turbo-inl.hpp), which gives f(v, pos) in its layout.
template <class Codec, class DU, class F>
HWY_INLINE void turbo5_visit(const typename Codec::block& b, F&& f) {
  const DU du;
  HWY_ALIGN static constexpr byte_tables kLo = turbo_byte_tables<Codec>(0);
  HWY_ALIGN static constexpr byte_tables kHi = turbo_byte_tables<Codec>(16);
  const auto l0 = hn::LoadDup128(du, kLo.t[0]), l1 = hn::LoadDup128(du, kLo.t[1]);
  const auto l2 = hn::LoadDup128(du, kLo.t[2]), l3 = hn::LoadDup128(du, kLo.t[3]);
  const auto h0 = hn::LoadDup128(du, kHi.t[0]), h1 = hn::LoadDup128(du, kHi.t[1]);
  const auto h2 = hn::LoadDup128(du, kHi.t[2]), h3 = hn::LoadDup128(du, kHi.t[3]);
  turbo5_planes<Codec::group, DU>::for_each(
      b.idx, [&](hn::Vec<DU> nib, hn::Mask<DU> h, std::size_t o) {
        const auto pick = [&](hn::Vec<DU> tl, hn::Vec<DU> th) {
          return hn::IfThenElse(h, hn::TableLookupBytes(th, nib), hn::TableLookupBytes(tl, nib));
        };
        byte_planes_to_f32(du, pick(l0, h0), pick(l1, h1), pick(l2, h2), pick(l3, h3), o, f);
      });
}

// Values in the layout of byte_planes_to_f32 at the reader's width (natural order at 16 lanes).
template <int G, class CB> struct f32_reader<turbo<5, G, CB>> {
  using codec = turbo<5, G, CB>;
  using DU = hn::CappedTag<std::uint8_t, turbo5_lanes<G>>;
  using DF = hn::Repartition<float, DU>;
  struct state {};
  static constexpr bool ok = true, kNatural = hn::MaxLanes(DU()) == 16;
  static HWY_INLINE float scale(const typename codec::block& b) { return scale_f32(b.scale); }
  template <class F>
  static HWY_INLINE void visit(const state&, const typename codec::block& b, F&& f) {
    turbo5_visit<codec, DU>(b, f);
  }
  static std::size_t position(std::size_t p) { return byte_plane_position(hn::MaxLanes(DU()), p); }
};

// Decode in element order (16 lanes): value = scale * codebook[index], the reference's multiply.
template <int G, class CB> struct block_decoder<turbo<5, G, CB>> {
  using codec = turbo<5, G, CB>;
  using DU = hn::Full128<std::uint8_t>;
  struct state {};
  static constexpr bool ok = true;
  static HWY_INLINE void block(const state&, const typename codec::block& b, float* x) {
    const hn::Full128<float> df;
    const auto scale = hn::Set(df, scale_f32(b.scale));
    turbo5_visit<codec, DU>(b, [&](hn::Vec<hn::Full128<float>> v, std::size_t pos) {
      hn::StoreU(hn::Mul(scale, v), df, x + pos);
    });
  }
};
#endif  // HWY_TARGET != HWY_SCALAR

}  // namespace strata::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();
