// turbo<B, G> (packed Lloyd-Max codebook indices, one fp16 scale per group; docs/formats.md):
// its readers and encoder, per Highway target. A fragment of kernels-inl.hpp. The readers serve
// B = 2, 3, 4 (16-entry byte tables); turbo5/6's 32 and 64 entries are read by
// turbo56-inl.hpp, and the encoder serves every B.

HWY_BEFORE_NAMESPACE();
namespace strata::kernels::HWY_NAMESPACE {

#if HWY_TARGET != HWY_SCALAR
// turbo3's high bit of plane K (docs/formats.md): bit 2K of every lane moved to bit 2, for
// lanes of D (16 or 32 bits; the caller masks bit 2, so bits shifted across bytes do not
// matter). The one place this shift is written: the Highway planes and both x86 readers use it.
template <int K, class D> HWY_INLINE hn::Vec<D> high_bit_to_bit2(D, hn::Vec<D> h) {
  if constexpr (K == 0)
    return hn::ShiftLeft<2>(h);
  else if constexpr (K == 1)
    return h;
  else
    return hn::ShiftRight<2 * K - 2>(h);
}

// turbo index planes: for_each(state, block, f) calls f(ix, offset) with a vector ix of
// Lanes(DU) uint8 codebook indices of elements offset .. offset + Lanes(DU) - 1 of the group.
// Needs plane bytes >= Lanes(DU).
//
// B = 3 (docs/formats.md): bit 2 of element e sits in high byte e % E, bit e / E (E = G / 8).
// Lane l of low plane k holds element k * 2E + l: its high bit is bit 2k + l / E of byte l % E.
// So per segment one vector h with lane l = (byte l % E) >> (l / E) (a load, and for a segment
// as wide as the plane the high bytes twice, the upper copy shifted by one) carries the high
// bits of all four planes at bits 0, 2, 4, 6; plane k shifts bit 2k to bit 2 and masks it.
// (16-bit shifts: the bits they carry across bytes are masked off.)
template <class Codec, class DU> struct turbo_planes {
  using traits = turbo_traits<Codec>;
  static constexpr int B = traits::bits;
  static constexpr std::size_t kLanes = hn::MaxLanes(DU());
  static constexpr std::size_t kPlane = std::size_t(traits::plane_bytes);
  static constexpr std::size_t kHigh = std::size_t(traits::high_bytes);
  static constexpr bool ok = kPlane >= kLanes;
  static constexpr std::size_t kSegs = ok ? kPlane / kLanes : 1;
  struct state {};
  template <int K, class V>
  static HWY_INLINE V bits_of_plane(V v, int mask) {  // (v >> 2K) & mask, per byte
    const DU du;
    const hn::Repartition<std::uint16_t, DU> d16;
    if constexpr (K == 0)
      return hn::And(v, hn::Set(du, std::uint8_t(mask)));
    else
      return hn::And(hn::BitCast(du, hn::ShiftRight<2 * K>(hn::BitCast(d16, v))),
                     hn::Set(du, std::uint8_t(mask)));
  }
  template <int K, class V>
  static HWY_INLINE V high_bit(V h) {  // bit 2K of h moved to bit 2, per byte
    const DU du;
    const hn::Repartition<std::uint16_t, DU> d16;
    return hn::And(hn::BitCast(du, high_bit_to_bit2<K>(d16, hn::BitCast(d16, h))), hn::Set(du, 4));
  }
  // Segment s's high-bit vector (see above); never reads past the G/8 high bytes.
  static HWY_INLINE hn::Vec<DU> load_high(const std::uint8_t* p, std::size_t s) {
    const DU du;
    const hn::Repartition<std::uint16_t, DU> d16;
    if constexpr (kLanes == 2 * kHigh) {
      const hn::Half<DU> dh;
      const hn::Repartition<std::uint16_t, hn::Half<DU>> dh16;
      const auto lo = hn::LoadU(dh, p);
      const auto hi = hn::BitCast(dh, hn::ShiftRight<1>(hn::BitCast(dh16, lo)));
      return hn::Combine(du, hi, lo);
    } else {
      static_assert(kLanes <= kHigh, "turbo3 planes: segment wider than the plane");
      const auto h = hn::LoadU(du, p + (s * kLanes) % kHigh);
      if ((s * kLanes) / kHigh == 0) return h;
      return hn::BitCast(du, hn::ShiftRight<1>(hn::BitCast(d16, h)));
    }
  }
  template <class F> static HWY_INLINE void for_each(const state&, const std::uint8_t* idx, F&& f) {
    const DU du;
    for (std::size_t s = 0; s < kSegs; ++s) {
      const auto v = hn::LoadU(du, idx + s * kLanes);
      if constexpr (B == 4) {
        f(hn::And(v, hn::Set(du, 0x0F)), s * kLanes);
        f(hn::ShiftRight<4>(v), s * kLanes + kPlane);
      } else if constexpr (B == 2) {
        f(bits_of_plane<0>(v, 3), s * kLanes);
        f(bits_of_plane<1>(v, 3), kPlane + s * kLanes);
        f(bits_of_plane<2>(v, 3), 2 * kPlane + s * kLanes);
        f(bits_of_plane<3>(v, 3), 3 * kPlane + s * kLanes);
      } else {
        const auto h = load_high(idx + traits::high_offset, s);
        f(hn::Or(bits_of_plane<0>(v, 3), high_bit<0>(h)), s * kLanes);
        f(hn::Or(bits_of_plane<1>(v, 3), high_bit<1>(h)), kPlane + s * kLanes);
        f(hn::Or(bits_of_plane<2>(v, 3), high_bit<2>(h)), 2 * kPlane + s * kLanes);
        f(hn::Or(bits_of_plane<3>(v, 3), high_bit<3>(h)), 3 * kPlane + s * kLanes);
      }
    }
  }
};

// The f32 codebook split into four byte tables: TableLookupBytes (pshufb/tbl) on packed
// indices gives byte k of each value from t[k]. Entries first .. first + 15 (turbo5 and turbo6
// have two and four such sets: 0, 16, ...); zero past the codebook.
struct byte_tables {
  std::uint8_t t[4][16];
};
template <class Codec> constexpr byte_tables turbo_byte_tables(int first = 0) {
  using traits = turbo_traits<Codec>;
  byte_tables bt{};
  const auto cb = traits::codebook();
  for (int i = 0; i < 16 && first + i < traits::levels; ++i) {
    const auto bits = std::bit_cast<std::uint32_t>(cb[std::size_t(first + i)]);
    for (int k = 0; k < 4; ++k) bt.t[k][i] = std::uint8_t(bits >> (8 * k));
  }
  return bt;
}

// Four byte planes to f32 (the turbo readers, turbo5/6 too): p_k holds byte k of the bits of L
// values (L = Lanes(DU), elements o .. o + L - 1); two zips rebuild them, f(v, pos) gets each
// f32 vector at its position in the byte-plane layout: within a segment of L values (L/16
// 128-bit blocks), f32 vector k holds, for block j, elements 16j + 4k .. + 3 (natural order
// when L = 16). byte_plane_position(L, p) is the element stored at position p.
template <class DU, class F>
HWY_INLINE void byte_planes_to_f32(DU, hn::Vec<DU> p0, hn::Vec<DU> p1, hn::Vec<DU> p2,
                                   hn::Vec<DU> p3, std::size_t o, F&& f) {
  const hn::Repartition<float, DU> df;
  const hn::Repartition<std::uint16_t, DU> du16;
  const hn::Repartition<std::uint32_t, DU> du32;
  const std::size_t Lf = hn::Lanes(df);
  const auto lo01 = hn::ZipLower(du16, p0, p1), hi01 = hn::ZipUpper(du16, p0, p1);
  const auto lo23 = hn::ZipLower(du16, p2, p3), hi23 = hn::ZipUpper(du16, p2, p3);
  f(hn::BitCast(df, hn::ZipLower(du32, lo01, lo23)), o);
  f(hn::BitCast(df, hn::ZipUpper(du32, lo01, lo23)), o + Lf);
  f(hn::BitCast(df, hn::ZipLower(du32, hi01, hi23)), o + 2 * Lf);
  f(hn::BitCast(df, hn::ZipUpper(du32, hi01, hi23)), o + 3 * Lf);
}
inline std::size_t byte_plane_position(std::size_t L, std::size_t p) {
  const std::size_t Lf = L / 4;
  const std::size_t seg = p - p % L, r = p % L, k = r / Lf, l = r % Lf;
  return seg + 16 * (l / 4) + 4 * k + l % 4;
}

// Values in the layout of the byte-plane decode at full vector width (byte_planes_to_f32).
template <int B, int G, class CB>
requires(B <= 4) struct f32_reader<turbo<B, G, CB>> {
  using codec = turbo<B, G, CB>;
  using traits = turbo_traits<codec>;
  static constexpr std::size_t kBytes =
      kMaxBytes < std::size_t(traits::plane_bytes) ? kMaxBytes : std::size_t(traits::plane_bytes);
  using DU = hn::CappedTag<std::uint8_t, kBytes>;
  using DF = hn::Repartition<float, DU>;
  using planes = turbo_planes<codec, DU>;
  using state = typename planes::state;
  static constexpr bool ok = kBytes >= 16;  // 16-byte table lookups
  static constexpr bool kNatural = hn::MaxLanes(DU()) == 16;
  static HWY_INLINE float scale(const typename codec::block& b) { return scale_f32(b.scale); }
  template <class F>
  static HWY_INLINE void visit(const state& st, const typename codec::block& b, F&& f) {
    const DU du;
    HWY_ALIGN static constexpr auto kT = turbo_byte_tables<codec>();
    const auto t0 = hn::LoadDup128(du, kT.t[0]), t1 = hn::LoadDup128(du, kT.t[1]);
    const auto t2 = hn::LoadDup128(du, kT.t[2]), t3 = hn::LoadDup128(du, kT.t[3]);
    planes::for_each(st, b.idx, [&](hn::Vec<DU> ix, std::size_t o) {
      byte_planes_to_f32(du, hn::TableLookupBytes(t0, ix), hn::TableLookupBytes(t1, ix),
                         hn::TableLookupBytes(t2, ix), hn::TableLookupBytes(t3, ix), o, f);
    });
  }
  // Element of the group stored at position p.
  static std::size_t position(std::size_t p) { return byte_plane_position(hn::MaxLanes(DU()), p); }
};

// Decode in element order (128-bit segments): the byte tables looked up on the packed indices
// give the four bytes of each value, two zips put them together. Exact: value = scale *
// codebook[index], the same float multiply as the reference.
template <int B, int G, class CB>
requires(B <= 4) struct block_decoder<turbo<B, G, CB>> {
  using codec = turbo<B, G, CB>;
  using traits = turbo_traits<codec>;
  using DU = hn::Full128<std::uint8_t>;
  using planes = turbo_planes<codec, DU>;
  using state = typename planes::state;
  static constexpr bool ok = planes::ok;
  static HWY_INLINE void block(const state& st, const typename codec::block& b, float* x) {
    const DU du;
    const hn::Full128<float> df;
    HWY_ALIGN static constexpr byte_tables kT = turbo_byte_tables<codec>();
    const auto t0 = hn::Load(du, kT.t[0]), t1 = hn::Load(du, kT.t[1]);
    const auto t2 = hn::Load(du, kT.t[2]), t3 = hn::Load(du, kT.t[3]);
    const auto scale = hn::Set(df, f32_reader<codec>::scale(b));
    planes::for_each(st, b.idx, [&](hn::Vec<DU> ix, std::size_t o) {
      byte_planes_to_f32(du, hn::TableLookupBytes(t0, ix), hn::TableLookupBytes(t1, ix),
                         hn::TableLookupBytes(t2, ix), hn::TableLookupBytes(t3, ix), o,
                         [&](hn::Vec<hn::Full128<float>> v, std::size_t pos) {
                           hn::StoreU(hn::Mul(scale, v), df, x + pos);
                         });
    });
  }
};

// Keys as the 7-bit image of the codebook + 64 (codec_traits.hpp), looked up per index.
template <int B, int G, class CB>
requires(B <= 4) struct i8_reader<turbo<B, G, CB>> {
  using codec = turbo<B, G, CB>;
  using traits = turbo_traits<codec>;
  static constexpr std::size_t kBytes =
      kMaxBytes < std::size_t(traits::plane_bytes) ? kMaxBytes : std::size_t(traits::plane_bytes);
  using D = hn::CappedTag<std::int8_t, kBytes>;
  using DU = hn::RebindToUnsigned<D>;
  using planes = turbo_planes<codec, DU>;
  using state = typename planes::state;
  static constexpr int kOffset = traits::codebook_offset;
  template <class F>
  static HWY_INLINE float block(const state& st, const typename codec::block& b, F&& f) {
    // All 16 table bytes in every 128-bit block, also when DU is narrower than 128 bits.
    using DT = std::conditional_t<(hn::MaxLanes(DU()) < 16), hn::Full128<std::uint8_t>, DU>;
    HWY_ALIGN static constexpr auto kCb = traits::codebook_u8();
    const auto table = hn::LoadDup128(DT(), kCb.data());
    planes::for_each(st, b.idx,
                     [&](hn::Vec<DU> ix, std::size_t o) { f(hn::TableLookupBytes(table, ix), o); });
    return f32_reader<codec>::scale(b) * traits::unit;
  }
  static constexpr float kUnit = traits::unit;  // half_scaled_keys
  static HWY_INLINE std::uint16_t half_scale(const typename codec::block& b) { return b.scale; }
  using query_t = std::int8_t;
  static HWY_INLINE auto product(hn::Vec<DU> u, const query_t* q) {
    return dot_u8i8(D(), u, hn::LoadU(D(), q));
  }
};

// The reference's encoder (strata/reference/block.hpp, encode_turbo_group: the scale search and
// the scale rule are that one function) with the fit and the index assignment in SIMD. For each
// inverse the search tries, fit() takes each element's codebook value by blends over the
// thresholds (c = codebook[number of thresholds below x * inv]: the same float multiply and
// compares as the index) and adds the exact f64 products c * x and c * c into the reference's 8
// partial lanes in its order (fit_turbo_group), so the choice is the reference's, bit for bit;
// the winner's indices are assigned once. n = |x| in f64 runs in SIMD lanes instead of element
// order: the same value up to f64 rounding (~1e-16 relative), which only changes the f32
// inverses when n lies within that distance of a rounding boundary (the tests compare bytes
// exactly); max|x| is exact in any order.
template <int B, int G, class CB> struct block_encoder<turbo<B, G, CB>> {
  using Codec = turbo<B, G, CB>;
  static constexpr int kLevels = 1 << B;
#if !HWY_HAVE_SCALABLE  // (SVE's sizeless vectors make no arrays: the reference's fit there)
  // fit_turbo_group of the indices inv gives, for the group at xg (see above).
  static HWY_INLINE reference::detail::turbo_fit fit(const float* xg, float inv_s) {
    const DE df;
    const hn::Half<DE> dh;
    const hn::Rebind<double, hn::Half<DE>> dd;
    using VD = hn::Vec<decltype(dd)>;
    constexpr int kLanes = reference::detail::turbo_fit_lanes;
    const std::size_t lf = hn::Lanes(df), ld = hn::Lanes(dd), parts = kLanes / ld;
    VD pxc[kLanes], pcc[kLanes];
    for (std::size_t p = 0; p < parts; ++p) pxc[p] = pcc[p] = hn::Zero(dd);
    const auto inv = hn::Set(df, inv_s);
    for (std::size_t i = 0; i < std::size_t(G); i += lf) {
      const auto xv = clean_f(df, hn::LoadU(df, xg + i));
      const auto v = hn::Mul(xv, inv);
      auto c = hn::Set(df, float(CB::centroids[0]));
      for (int k = 0; k + 1 < kLevels; ++k)
        c = hn::IfThenElse(hn::Lt(hn::Set(df, CB::thresholds[std::size_t(k)]), v),
                           hn::Set(df, float(CB::centroids[std::size_t(k + 1)])), c);
      const std::size_t plo = (i % kLanes) / ld, phi = ((i + ld) % kLanes) / ld;
      const VD clo = hn::PromoteTo(dd, hn::LowerHalf(dh, c));
      const VD chi = hn::PromoteTo(dd, hn::UpperHalf(dh, c));
      const VD xlo = hn::PromoteTo(dd, hn::LowerHalf(dh, xv));
      const VD xhi = hn::PromoteTo(dd, hn::UpperHalf(dh, xv));
      pxc[plo] = hn::Add(pxc[plo], hn::Mul(clo, xlo));
      pcc[plo] = hn::Add(pcc[plo], hn::Mul(clo, clo));
      pxc[phi] = hn::Add(pxc[phi], hn::Mul(chi, xhi));
      pcc[phi] = hn::Add(pcc[phi], hn::Mul(chi, chi));
    }
    HWY_ALIGN double axc[kLanes], acc[kLanes];
    for (std::size_t p = 0; p < parts; ++p) {
      hn::StoreU(pxc[p], dd, axc + p * ld);
      hn::StoreU(pcc[p], dd, acc + p * ld);
    }
    return {reference::detail::combine_fit_lanes(axc), reference::detail::combine_fit_lanes(acc)};
  }
#endif
  static HWY_INLINE void encode(const float* x, std::size_t n, void* out) {
    const hn::ScalableTag<double> dd;
    const hn::Rebind<float, decltype(dd)> dfh;
    const DE df;
    const hn::Rebind<std::int32_t, DE> di;
    const hn::Rebind<std::uint8_t, DE> du8;
    auto* o = static_cast<unsigned char*>(out);
#if !HWY_HAVE_SCALABLE
    // The 8 partial lanes as 8 / ld vectors.
    const std::size_t ld = hn::Lanes(hn::Rebind<double, hn::Half<DE>>());
    static_assert(G % hn::MaxLanes(DE()) == 0);
    const bool lanes_fit = ld <= 8 && 8 % ld == 0;
#endif
    for (std::size_t g = 0; g < n / G; ++g) {
      const float* xg = x + g * G;
      unsigned char* blk = o + g * Codec::block_bytes;
      auto acc = hn::Zero(dd);
      for (int i = 0; i < G; i += int(hn::Lanes(dd))) {
        const auto xd = hn::PromoteTo(dd, clean_f(dfh, hn::LoadU(dfh, xg + i)));
        acc = hn::Add(acc, hn::Mul(xd, xd));
      }
      const double ss = hn::GetLane(hn::SumOfLanes(dd, acc));
      if (ss == 0.0) {
        std::memset(blk, 0, Codec::block_bytes);
        continue;
      }
      auto vmax = hn::Zero(df);
      for (int i = 0; i < G; i += int(hn::Lanes(df)))
        vmax = hn::Max(vmax, hn::Abs(clean_f(df, hn::LoadU(df, xg + i))));
      const float amax = hn::GetLane(hn::MaxOfLanes(df, vmax));
      typename Codec::block b;
      const auto assign = [&](float inv_s, std::uint8_t* q) {
        const auto inv = hn::Set(df, inv_s);
        for (int i = 0; i < G; i += int(hn::Lanes(df))) {
          const auto v = hn::Mul(clean_f(df, hn::LoadU(df, xg + i)), inv);
          auto k = hn::Zero(di);
          for (float t : CB::thresholds)
            k = hn::Sub(k, hn::VecFromMask(di, hn::RebindMask(di, hn::Lt(hn::Set(df, t), v))));
          hn::StoreU(hn::DemoteTo(du8, k), du8, q + i);
        }
      };
#if !HWY_HAVE_SCALABLE
      if (lanes_fit)
        reference::detail::encode_turbo_group<turbo_scale, turbo_index<B>, B, G, CB>(
            std::sqrt(ss), amax, b, assign, [&](float inv) { return fit(xg, inv); });
      else
#endif
        reference::detail::encode_turbo_group<turbo_scale, turbo_index<B>, B, G, CB>(
            std::sqrt(ss), amax, b, assign, [&](float inv) {
              std::uint8_t q[G];
              assign(inv, q);
              return reference::detail::fit_turbo_group<B, G, CB>(xg, q);
            });
      std::memcpy(blk, &b, Codec::block_bytes);
    }
  }
};

#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
using u32x8 = hn::Vec256<std::uint32_t>;

// turbo (docs/formats.md), groups of 64 or more. B = 4: pass p covers bytes 16p .. 16p + 15,
// chunks = low nibbles of bytes 16p and 16p + 8, then their high nibbles (elements + G/2).
// B = 2, 3: pass p covers bytes 8p .. 8p + 7 of the low planes, chunk C = plane C (elements
// C * G/4 + 8p + l); B = 3's high bit of lane l is bit 2C + 8p / E of high byte 8p % E + l.
template <int B, int G, class CB>
requires(B <= 4 && G >= 64 && G % 32 == 0) struct lane_reader<turbo<B, G, CB>> {
  using codec = turbo<B, G, CB>;
  using traits = turbo_traits<codec>;
  static constexpr bool four_rows = HWY_TARGET == HWY_AVX2 && B == 2;
  static constexpr std::size_t kQ = std::size_t(G / 4), kE = std::size_t(G / 8);
  static constexpr std::size_t kPasses = std::size_t(G / 32);
  struct tables {
    __m256 lo, hi;  // codebook entries 0..7 and 8..15 (zero where the codebook has none)
    tables() {
      HWY_ALIGN float t[16] = {};
      const auto cb = traits::codebook();
      for (int i = 0; i < traits::levels; ++i) t[i] = cb[std::size_t(i)];
      lo = _mm256_load_ps(t);
      hi = _mm256_load_ps(t + 8);
    }
  };
  static constexpr std::size_t pos(std::size_t p, std::size_t c) {
    if constexpr (B == 4)
      return (c < 2 ? 0 : std::size_t(G / 2)) + 16 * p + 8 * (c & 1);
    else
      return c * kQ + 8 * p;
  }
  template <std::size_t C>
  static HWY_INLINE __m256 chunk(const tables& t, const typename codec::block& b, std::size_t p) {
    if constexpr (B == 4) {
      const __m256i x = load8_u8(b.idx + 16 * p + 8 * (C & 1));
      const __m256i i =
          C < 2 ? _mm256_and_si256(x, _mm256_set1_epi32(15)) : _mm256_srli_epi32(x, 4);
      const __m256 a = _mm256_permutevar8x32_ps(t.lo, i), c = _mm256_permutevar8x32_ps(t.hi, i);
      return _mm256_blendv_ps(a, c, _mm256_castsi256_ps(_mm256_slli_epi32(i, 28)));
    } else {
      const __m256i x = load8_u8(b.idx + 8 * p);
      __m256i i =
          _mm256_and_si256(C == 0 ? x : _mm256_srli_epi32(x, int(2 * C)), _mm256_set1_epi32(3));
      if constexpr (B == 3) {
        const __m256i h = _mm256_srl_epi32(load8_u8(b.idx + kQ + (8 * p) % kE),
                                           _mm_cvtsi32_si128(int((8 * p) / kE)));
        const __m256i hb = high_bit_to_bit2<C>(hn::Full256<std::uint32_t>(), u32x8{h}).raw;
        i = _mm256_or_si256(i, _mm256_and_si256(hb, _mm256_set1_epi32(4)));
      }
      return _mm256_permutevar8x32_ps(t.lo, i);
    }
  }
};

// turbo2/3 with groups of 128, by planes: the block's 32 low-plane bytes are read as 8 x u32
// (lane l = bytes 4l .. 4l + 3), so one load holds the 2-bit indices of all 128 values. For
// plane c, w_c = lo >> 2c (turbo3: the low two bits of each byte masked, bit 2 = the element's
// high bit); chunk k = w_c >> 8k looked up with vpermps (which reads bits 0-2 of each lane)
// holds elements 32c + 4l + k. A plane's 4 chunks are accumulated over the value rows of a
// tile and transposed (4 x 8) once per 64 rows into elements 32c .. 32c + 31. One vpermps per 8
// values as lane_reader, but the index extraction is shared by a plane's 4 chunks instead of
// done per chunk.
template <int B, class CB>
requires(B == 2 || B == 3) struct plane_reader<turbo<B, 128, CB>> {
  using Codec = turbo<B, 128, CB>;
  static constexpr int kBits = B;
  using block = typename Codec::block;
  struct tables {
    __m256 cb;   // turbo3: the 8 centroids; turbo2: the 4 centroids twice (bit 2 is ignored)
    __m256i sh;  // turbo3: the high-bit shift of lane l (bit 2c + l / 4 of its bytes -> bit 2)
    tables() {
      HWY_ALIGN float t[8];
      const auto c = turbo_traits<Codec>::codebook();
      for (std::size_t i = 0; i < 8; ++i) t[i] = c[i % c.size()];
      cb = _mm256_load_ps(t);
      sh = _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1);
    }
  };
  // The index word of plane C: byte k of lane l holds the index of element 32C + 4l + k.
  template <std::size_t C> static HWY_INLINE __m256i word(const tables& t, const block& blk) {
    const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk.idx));
    const __m256i x = C == 0 ? lo : _mm256_srli_epi32(lo, int(2 * C));
    if constexpr (kBits == 2) {
      return x;
    } else {
      // high byte (4l + k) % 16 = 4 (l % 4) + k, bit 2C + l / 4: one 16-byte load, broadcast
      const __m256i h = _mm256_broadcastsi128_si256(
          _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk.idx + 32)));
      const __m256i hs = _mm256_srlv_epi32(h, t.sh);
      const __m256i hb = high_bit_to_bit2<C>(hn::Full256<std::uint32_t>(), u32x8{hs}).raw;
      return _mm256_or_si256(_mm256_and_si256(x, _mm256_set1_epi32(0x03030303)),
                             _mm256_and_si256(hb, _mm256_set1_epi32(0x04040404)));
    }
  }
  static HWY_INLINE __m256 chunk(const tables& t, __m256i w, std::size_t k) {
    return _mm256_permutevar8x32_ps(t.cb, k == 0 ? w : _mm256_srli_epi32(w, int(8 * k)));
  }
};

#if HWY_TARGET <= HWY_AVX3
// turbo at 16 values per chunk (docs/formats.md), each looked up in the whole codebook with one
// vpermps (_mm512_permutexvar_ps reads bits 0-3 of each lane; the 16-float table repeats a
// smaller codebook, cb[i % levels], so index bits above the codec's are ignored, not masked).
// B = 4 (G % 32 == 0): chunk C = the low (C even) or high (C odd) nibbles of bytes 16 (C / 2)
// .. + 15: elements 16 (C / 2) + l, or those + G / 2. B = 2 (G % 64 == 0) and B = 3
// (G % 128 == 0): chunk C = plane c = C % 4 of low bytes 16h .. 16h + 15 (h = C / 4): elements
// c G / 4 + 16h + l; B = 3's high bit of element i = 16h + l of a plane is bit 2c + i / E of high
// byte i % E (E = G / 8: bit 2c + h / (E / 16) of byte 16 (h % (E / 16)) + l). The four chunks
// of a byte group share its load.
template <int B, int G, class CB>
requires((B == 4 && G % 32 == 0) || (B == 2 && G % 64 == 0) ||
         (B == 3 && G % 128 == 0)) struct zmm_reader<turbo<B, G, CB>> {
  using codec = turbo<B, G, CB>;
  using traits = turbo_traits<codec>;
  using block = typename codec::block;
  static constexpr std::size_t kValues = std::size_t(G);
  static constexpr bool kScaled = true;
  struct tables {
    __m512 cb;  // cb[i % levels]
    tables() {
      HWY_ALIGN float t[16];
      const auto c = traits::codebook();
      for (std::size_t i = 0; i < 16; ++i) t[i] = c[i % c.size()];
      cb = _mm512_load_ps(t);
    }
  };
  static constexpr std::size_t pos(std::size_t c) {
    if constexpr (B == 4)
      return 16 * (c / 2) + (c % 2) * std::size_t(G / 2);
    else
      return (c % 4) * std::size_t(G / 4) + 16 * (c / 4);
  }
  static HWY_INLINE __m512i bytes16(const std::uint8_t* p) {
    return _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  template <std::size_t C> static HWY_INLINE __m512 chunk(const tables& t, const block& b) {
    if constexpr (B == 4) {
      const __m512i x = bytes16(b.idx + 16 * (C / 2));
      return _mm512_permutexvar_ps(C % 2 == 0 ? x : _mm512_srli_epi32(x, 4), t.cb);
    } else {
      constexpr std::size_t c = C % 4, h = C / 4;
      const __m512i x = bytes16(b.idx + 16 * h);
      if constexpr (B == 2) {
        return _mm512_permutexvar_ps(c == 0 ? x : _mm512_srli_epi32(x, int(2 * c)), t.cb);
      } else {
        constexpr std::size_t kG = std::size_t(G) / 128;  // E / 16
        // bit 2c + h / kG of the high byte to bit 2c + 2, then bits 2c, 2c + 1 from x
        const __m512i hz = bytes16(b.idx + traits::high_offset + 16 * (h % kG));
        const __m512i hs = _mm512_slli_epi32(hz, int(2 - h / kG));
        const __m512i m = _mm512_set1_epi32(3 << (2 * c));
        const __m512i i = _mm512_ternarylogic_epi32(x, hs, m, 0xE4);  // m ? x : hs
        return _mm512_permutexvar_ps(c == 0 ? i : _mm512_srli_epi32(i, int(2 * c)), t.cb);
      }
    }
  }
  static HWY_INLINE float scale(const block& b) { return scale_f32(b.scale); }
};
#endif  // AVX3

// The V side's integer image (strata/kernels/int8_axpy.hpp): per byte of the low planes, the
// unsigned 7-bit codebook image (codebook_u8, offset 64) of each of its kPlanes indices; plane
// c of byte i is element c * plane_bytes + i. Segments of L bytes (the whole plane on AVX3 for
// turbo4 with groups of 128). turbo3 (groups of 128): the aux vector is the 16 high-bit bytes
// in each 128-bit block (lane l of block k then holds high byte i % 16 of the element at low
// byte i = 16 k + ..., whose bit 2c + k is plane c's high bit).
template <int B, int G, class CB>
requires(int8_v<turbo<B, G, CB>>) struct v8_reader<turbo<B, G, CB>> {
  using codec = turbo<B, G, CB>;
  using traits = turbo_traits<codec>;
  static constexpr std::size_t kPlaneBytes = std::size_t(traits::plane_bytes);
  using DU = hn::CappedTag<std::uint8_t, (kMaxBytes < kPlaneBytes ? kMaxBytes : kPlaneBytes)>;
  static constexpr std::size_t L = hn::MaxLanes(DU());
  static constexpr std::size_t kPlanes = std::size_t(traits::planes);  // indices per byte
  static constexpr std::size_t kSegs = kPlaneBytes / L;
  static constexpr bool kAux = B == 3;
  static_assert(L >= 16 && kPlaneBytes % L == 0, "turbo v8_reader: 16-byte table lookups");
  static_assert(B != 3 || (G == 128 && L == 32),
                "turbo3 v8_reader: groups of 128 (32-byte planes)");
#if HWY_TARGET == HWY_AVX3_DL
  // AVX3_DL (VBMI): turbo2/4 look up with vpermb in a table of L entries cb[i % levels], so
  // the index bits above the codec's (left by a 16-bit shift) need no mask.
  static constexpr bool kPermB = B != 3;
#else
  static constexpr bool kPermB = false;
#endif
  struct tables {
    hn::Vec<DU> cb;
    hn::Vec<hn::Repartition<std::uint32_t, DU>> sh;  // turbo3: lane l's high-bit shift, l / 4
    tables() {
      const DU du;
      const hn::Repartition<std::uint32_t, DU> d32;
      HWY_ALIGN static constexpr auto kCb = traits::codebook_u8();
      if constexpr (kPermB) {
        HWY_ALIGN static constexpr auto kWide = [] {
          std::array<std::uint8_t, L> t{};
          for (std::size_t i = 0; i < L; ++i) t[i] = kCb[i % std::size_t(traits::levels)];
          return t;
        }();
        cb = hn::Load(du, kWide.data());
      } else {
        cb = hn::LoadDup128(du, kCb.data());
      }
      sh = hn::ShiftRight<2>(hn::Iota(d32, 0));
    }
  };
  static HWY_INLINE const std::uint8_t* bytes(const char* blk) {
    return reinterpret_cast<const typename codec::block*>(blk)->idx;
  }
  static HWY_INLINE hn::Vec<DU> aux(const char* blk, std::size_t) {
    return hn::LoadDup128(DU(), bytes(blk) + traits::high_offset);
  }
  static HWY_INLINE float factor(const typename codec::block& b) {
    return scale_f32(b.scale) * traits::unit;
  }
  // factor(b) = f32(half_scale(b)) * kUnit, for drivers that convert many scales at once; the
  // scale's byte offset in the block, for drivers that gather it
  static constexpr float kUnit = traits::unit;
  static HWY_INLINE std::uint16_t half_scale(const typename codec::block& b) { return b.scale; }
  static constexpr std::size_t kScaleOffset = offsetof(typename codec::block, scale);
  template <std::size_t C>
  static HWY_INLINE hn::Vec<DU> value(const tables& t, hn::Vec<DU> x,
                                      [[maybe_unused]] hn::Vec<DU> a) {
    const DU du;
#if HWY_TARGET == HWY_AVX3_DL
    if constexpr (kPermB) {
      const hn::Repartition<std::uint16_t, DU> d16;
      const auto ix = C == 0 ? x : hn::BitCast(du, hn::ShiftRight<B * C>(hn::BitCast(d16, x)));
      return hn::Vec<DU>{permute_bytes(ix.raw, t.cb.raw)};
    }
#endif
    hn::Vec<DU> ix;
    if constexpr (B == 4) {
      ix = C == 0 ? hn::And(x, hn::Set(du, 15)) : hn::ShiftRight<4>(x);
    } else {
      ix = hn::And(C == 0 ? x : hn::ShiftRight<2 * C>(x), hn::Set(du, 3));
      if constexpr (B == 3) {
        const hn::Repartition<std::uint32_t, DU> d32;
        const auto h = high_bit_to_bit2<int(C)>(d32, hn::Shr(hn::BitCast(d32, a), t.sh));
        ix = hn::Or(ix, hn::And(hn::BitCast(du, h), hn::Set(du, 4)));
      }
    }
    return hn::TableLookupBytes(t.cb, ix);
  }
  // Element of u32 lane l of quarter t, plane c, segment s (transpose4 in axpy_i8-inl.hpp).
  static constexpr std::size_t element(std::size_t s, std::size_t t, std::size_t c, std::size_t l) {
    return c * kPlaneBytes + s * L + 16 * (l / 4) + 4 * t + l % 4;
  }
};

#endif  // x86 AVX2 / AVX3
#endif  // HWY_TARGET != HWY_SCALAR

}  // namespace strata::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();
