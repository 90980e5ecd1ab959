// turbo<5, G> and turbo<6, G> (5- and 6-bit Lloyd-Max indices: turbo4's nibble planes plus
// high-bit planes, docs/formats.md): their readers and block decoder, per Highway target. A
// fragment of kernels-inl.hpp. The encoder is turbo's (turbo-inl.hpp).
//
// A 32- or 64-entry table does not fit one 16-byte lookup (pshufb/tbl): each vector of indices
// is read as its low four bits (a nibble plane: And / ShiftRight) and the masks of the lanes
// whose bit 4 (and bit 5) is set, and every table is two (four) 16-entry quarters, looked up
// with the nibbles and selected by the masks. All in SIMD: no index is unpacked in scalar code,
// and the values are the same table entries as the reference's (the K codes, the V f32
// codebook bits: exact).

HWY_BEFORE_NAMESPACE();
namespace strata::kernels::HWY_NAMESPACE {

#if HWY_TARGET != HWY_SCALAR
// The indices of turbo5 (H = 1) and turbo6 (H = 2): turbo4's nibble planes (G/2 bytes) for
// bits 0..3, then P = G * H / 8 bytes of high bits: bit 4 + h of element e is bit H * (e / P) + h
// of high byte e % P (turbo5: turbo3's high-bit planes; turbo6: turbo2's 2-bit planes).
// L = Lanes(DU) at a time (L >= 16, a power of two; L <= G/2, or L = G): for_each(idx, f) calls
// f(nib, pick, o) with the low four bits of elements o .. o + L - 1 (u8 lanes) and a selector:
// pick(at) is, per lane, at(quarter<k>{}) for k = the lane's bits 4.. (one mask per high bit,
// the 2^H lookups blended by them), where at(quarter<k>{}) looks up table quarter k. L <= G/2:
// each chunk lies in one nibble half (o < G/2: the low nibbles of bytes o .., else the high
// nibbles of bytes o - G/2 ..); L = G: the G/2 nibble bytes repeated twice, low nibbles in the
// first half of the lanes. Lane l of chunk o tests high byte (o + l) % P against the bit of
// element o + l, a constant table (kBit) loaded at o. When L <= P those bytes are L consecutive
// ones at o % P; when L > P (o is then a multiple of P) they are the P high bytes repeated,
// loaded once per block as one broadcast.
template <std::size_t K> using quarter = std::integral_constant<std::size_t, K>;
// The K-th of four values (K < 4).
template <std::size_t K, class V> HWY_INLINE V nth(V a, V b, V c, V d) {
  if constexpr (K == 0)
    return a;
  else if constexpr (K == 1)
    return b;
  else if constexpr (K == 2)
    return c;
  else
    return d;
}
template <int G, int H, class DU> struct nibble_planes {
  static constexpr std::size_t kL = hn::MaxLanes(DU());
  static constexpr std::size_t kHalf = std::size_t(G) / 2, kP = std::size_t(G * H) / 8;
  static_assert(H == 1 || H == 2);
  static_assert(kL >= 16 && (kL <= kHalf || kL == std::size_t(G)),
                "nibble_planes: chunks of 16 or more lanes, inside one nibble half or the group");
  struct bit_table {
    std::uint8_t b[H][G];
  };
  HWY_ALIGN static constexpr bit_table kBit = [] {
    bit_table t{};
    for (std::size_t h = 0; h < std::size_t(H); ++h)
      for (std::size_t e = 0; e < std::size_t(G); ++e)
        t.b[h][e] = std::uint8_t(1u << (std::size_t(H) * (e / kP) + h));
    return t;
  }();
  template <class F> static HWY_INLINE void for_each(const std::uint8_t* idx, F&& f) {
    const DU du;
    const std::uint8_t* h = idx + kHalf;
    const auto lo4 = hn::Set(du, std::uint8_t(0x0F));
    // f on the chunk at o, whose high bytes are hv
    const auto call = [&](hn::Vec<DU> nib, hn::Vec<DU> hv, std::size_t o) {
      const auto m4 = hn::TestBit(hv, hn::Load(du, kBit.b[0] + o));
      if constexpr (H == 1) {
        f(
            nib, [&](auto&& at) { return hn::IfThenElse(m4, at(quarter<1>{}), at(quarter<0>{})); },
            o);
      } else {
        const auto m5 = hn::TestBit(hv, hn::Load(du, kBit.b[1] + o));
        f(
            nib,
            [&](auto&& at) {
              return hn::IfThenElse(m5, hn::IfThenElse(m4, at(quarter<3>{}), at(quarter<2>{})),
                                    hn::IfThenElse(m4, at(quarter<1>{}), at(quarter<0>{})));
            },
            o);
      }
    };
    if constexpr (kL == std::size_t(G)) {  // the whole group in one vector
      const auto v = repeat_bytes<kHalf>(du, idx);
      const auto nib = hn::IfThenElse(hn::FirstN(du, kHalf), hn::And(v, lo4), hn::ShiftRight<4>(v));
      call(nib, repeat_bytes<kP>(du, h), 0);
    } else {
      [[maybe_unused]] const auto hr = [&] {
        if constexpr (kL > kP)
          return repeat_bytes<kP>(du, h);
        else
          return hn::Zero(du);
      }();
      const auto high = [&](std::size_t o) {
        if constexpr (kL > kP)
          return hr;
        else
          return hn::LoadU(du, h + o % kP);
      };
      for (std::size_t s = 0; s < kHalf; s += kL) {
        const auto v = hn::LoadU(du, idx + s);
        call(hn::And(v, lo4), high(s), s);
        call(hn::ShiftRight<4>(v), high(kHalf + s), kHalf + s);
      }
    }
  }
};

// The reader width for turbo<5 or 6, G>: up to kMaxBytes lanes, at most the group (as the
// readers before them: the integer dot's per-lane float sums, and so its bits, depend on it).
template <int G>
inline constexpr std::size_t turbo56_lanes = kMaxBytes < std::size_t(G) ? kMaxBytes
                                                                        : std::size_t(G);

// Keys as the 7-bit image of the codebook + 64 (codec_traits.hpp), as int8_block<turbo<B, G>>:
// its 2^B entries as 16-byte tables, selected by the high bits.
template <int B, int G, class CB>
requires(B == 5 || B == 6) struct i8_reader<turbo<B, G, CB>> {
  using codec = turbo<B, G, CB>;
  using traits = turbo_traits<codec>;
  using D = hn::CappedTag<std::int8_t, turbo56_lanes<G>>;
  using DU = hn::RebindToUnsigned<D>;
  using planes = nibble_planes<G, B - 4, DU>;
  struct state {};
  static constexpr int kOffset = traits::codebook_offset;
  template <class F>
  static HWY_INLINE float block(const state&, const typename codec::block& b, F&& f) {
    HWY_ALIGN static constexpr auto kCb = traits::codebook_u8();
    static_assert(kCb.size() == std::size_t(1) << B);
    const DU du;
    // the 16-byte quarters of the table, loaded once per block (turbo5: quarters 0 and 1)
    const auto c0 = hn::LoadDup128(du, kCb.data()), c1 = hn::LoadDup128(du, kCb.data() + 16);
    const auto c2 = hn::LoadDup128(du, kCb.data() + (B == 6 ? 32 : 0));
    const auto c3 = hn::LoadDup128(du, kCb.data() + (B == 6 ? 48 : 16));
    planes::for_each(b.idx, [&](hn::Vec<DU> nib, auto&& pick, std::size_t o) {
      f(pick([&](auto k) {
          return hn::TableLookupBytes(nth<decltype(k)::value>(c0, c1, c2, c3), nib);
        }),
        o);
    });
    return scale_f32(b.scale) * traits::unit;
  }
  static constexpr float kUnit = traits::unit;  // half_scaled_keys
  static HWY_INLINE std::uint16_t half_scale(const typename codec::block& b) { return b.scale; }
  using query_t = std::int8_t;
  static HWY_INLINE auto product(hn::Vec<DU> u, const query_t* q) {
    return dot_u8i8(D(), u, hn::LoadU(D(), q));
  }
};

// The f32 values of a block's indices (L = Lanes(DU) per chunk): each of the four bytes of
// each value from byte tables (codebook entries 16 k .. 16 k + 15 for quarter k) selected by
// the high bits, put together by byte_planes_to_f32 (turbo-inl.hpp), which gives f(v, pos) in
// its layout.
template <class Codec, class DU, class F>
HWY_INLINE void turbo56_visit(const typename Codec::block& b, F&& f) {
  constexpr int B = turbo_traits<Codec>::bits;
  const DU du;
  HWY_ALIGN static constexpr auto kT = [] {
    std::array<byte_tables, std::size_t(1) << (B - 4)> t{};
    for (std::size_t k = 0; k < t.size(); ++k) t[k] = turbo_byte_tables<Codec>(int(16 * k));
    return t;
  }();
  // byte i of quarter k's values, loaded once per block (turbo5: quarters 0 and 1)
  const auto tab = [&](std::size_t k, std::size_t i) {
    return hn::LoadDup128(du, kT[k % kT.size()].t[i]);
  };
  const auto t00 = tab(0, 0), t01 = tab(0, 1), t02 = tab(0, 2), t03 = tab(0, 3);
  const auto t10 = tab(1, 0), t11 = tab(1, 1), t12 = tab(1, 2), t13 = tab(1, 3);
  const auto t20 = tab(2, 0), t21 = tab(2, 1), t22 = tab(2, 2), t23 = tab(2, 3);
  const auto t30 = tab(3, 0), t31 = tab(3, 1), t32 = tab(3, 2), t33 = tab(3, 3);
  nibble_planes<Codec::group, B - 4, DU>::for_each(
      b.idx, [&](hn::Vec<DU> nib, auto&& pick, std::size_t o) {
        const auto byte = [&](auto q0, auto q1, auto q2, auto q3) {
          return pick([&](auto k) {
            return hn::TableLookupBytes(nth<decltype(k)::value>(q0, q1, q2, q3), nib);
          });
        };
        byte_planes_to_f32(du, byte(t00, t10, t20, t30), byte(t01, t11, t21, t31),
                           byte(t02, t12, t22, t32), byte(t03, t13, t23, t33), o, f);
      });
}

// Values in the layout of byte_planes_to_f32 at the reader's width (natural order at 16 lanes).
template <int B, int G, class CB>
requires(B == 5 || B == 6) struct f32_reader<turbo<B, G, CB>> {
  using codec = turbo<B, G, CB>;
  using DU = hn::CappedTag<std::uint8_t, turbo56_lanes<G>>;
  using DF = hn::Repartition<float, DU>;
  struct state {};
  static constexpr bool ok = true, kNatural = hn::MaxLanes(DU()) == 16;
  static HWY_INLINE float scale(const typename codec::block& b) { return scale_f32(b.scale); }
  template <class F>
  static HWY_INLINE void visit(const state&, const typename codec::block& b, F&& f) {
    turbo56_visit<codec, DU>(b, f);
  }
  static std::size_t position(std::size_t p) { return byte_plane_position(hn::MaxLanes(DU()), p); }
};

// Decode in element order (16 lanes): value = scale * codebook[index], the reference's multiply.
template <int B, int G, class CB>
requires(B == 5 || B == 6) struct block_decoder<turbo<B, G, CB>> {
  using codec = turbo<B, G, CB>;
  using DU = hn::Full128<std::uint8_t>;
  struct state {};
  static constexpr bool ok = true;
  static HWY_INLINE void block(const state&, const typename codec::block& b, float* x) {
    const hn::Full128<float> df;
    const auto scale = hn::Set(df, scale_f32(b.scale));
    turbo56_visit<codec, DU>(b, [&](hn::Vec<hn::Full128<float>> v, std::size_t pos) {
      hn::StoreU(hn::Mul(scale, v), df, x + pos);
    });
  }
};

// Not the scalar reference's path on any SIMD target, at the smallest group either.
static_assert(use_i8_reader<turbo<6, 16>> && use_f32_reader<turbo<6, 16>> &&
                  use_block_decoder<turbo<6, 16>>,
              "turbo5/6: the readers run on every SIMD target");
#endif  // HWY_TARGET != HWY_SCALAR

}  // namespace strata::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();
