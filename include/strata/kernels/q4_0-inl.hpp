// q4_0 (4-bit values - 8, one fp16 scale per 32; docs/formats.md): its readers and encoder, per
// Highway target. A fragment of kernels-inl.hpp.

HWY_BEFORE_NAMESPACE();
namespace strata::kernels::HWY_NAMESPACE {

#if HWY_TARGET != HWY_SCALAR
// Element e < 16: low nibble of byte e, else the high nibble of byte e - 16. Keys stay
// unsigned (nibble = k + 8) for pmaddubsw.
template <> struct i8_reader<q4_0> {
  using D = hn::CappedTag<std::int8_t, 32>;
  using DU = hn::RebindToUnsigned<D>;
  static constexpr int kOffset = 8;  // the stored nibble is k + 8
  struct state {};
  template <class F> static HWY_INLINE float block(const state&, const q4_0::block& b, F&& f) {
    const hn::Full128<std::uint8_t> d16;
    const auto v = hn::LoadU(d16, b.qs);
    const auto lo = hn::And(v, hn::Set(d16, 0x0F));
    const auto hi = hn::ShiftRight<4>(v);
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
    f(hn::Combine(DU(), hi, lo), 0);
#else
    f(lo, 0);
    f(hi, 16);
#endif
    return scale_f32(b.d);
  }
  static constexpr float kUnit = 1.0f;  // half_scaled_keys
  static HWY_INLINE std::uint16_t half_scale(const q4_0::block& b) { return b.d; }
  using query_t = std::int8_t;
  static HWY_INLINE auto product(hn::Vec<DU> u, const query_t* q) {
    return dot_u8i8(D(), u, hn::LoadU(D(), q));
  }
};

template <> struct f32_reader<q4_0> {
  using DF = hn::CappedTag<float, 16>;
  struct state {};
  static constexpr bool ok = true, kNatural = true;
  static HWY_INLINE float scale(const q4_0::block& b) { return scale_f32(b.d); }
  template <class F> static HWY_INLINE void visit(const state&, const q4_0::block& b, F&& f) {
    const DF df;
    const hn::Full128<std::uint8_t> du;
    const hn::Full128<std::int8_t> d16;
    const auto v = hn::LoadU(du, b.qs);
    const auto eight = hn::Set(d16, 8);
    HWY_ALIGN std::int8_t k[32];
    hn::Store(hn::Sub(hn::BitCast(d16, hn::And(v, hn::Set(du, 0x0F))), eight), d16, k);
    hn::Store(hn::Sub(hn::BitCast(d16, hn::ShiftRight<4>(v)), eight), d16, k + 16);
    for (std::size_t o = 0; o < 32; o += hn::Lanes(df)) f(i8_to_f32(df, k + o), o);
  }
  static std::size_t position(std::size_t p) { return p; }
};

template <> struct block_decoder<q4_0> : decode_by_f32_reader<q4_0> {};

// Exactly the reference's arithmetic (strata/reference/block.hpp): cleaned input, the first
// value of largest magnitude sets the scale, floor(x * id + 8.5) per element.
template <> struct block_encoder<q4_0> {
  static HWY_INLINE void block(const float* x, unsigned char* out) {
    const DE d;
    const std::size_t N = hn::Lanes(d);
    HWY_ALIGN float c[32];
    auto amax = hn::Zero(d);
    for (std::size_t i = 0; i < 32; i += N) {
      const auto v = clean_f(d, hn::LoadU(d, x + i));
      hn::Store(v, d, c + i);
      amax = hn::Max(amax, hn::Abs(v));
    }
    // The first value of largest magnitude (0 when all are zero, as the reference).
    const float am = hn::GetLane(hn::MaxOfLanes(d, amax));
    float mx = 0.0f;
    if (am > 0.0f) {
      const auto vam = hn::Set(d, am);
      for (std::size_t i = 0; i < 32; i += N) {
        const intptr_t k = hn::FindFirstTrue(d, hn::Eq(hn::Abs(hn::Load(d, c + i)), vam));
        if (k >= 0) {
          mx = c[i + std::size_t(k)];
          break;
        }
      }
    }
    const float dm = std::clamp(mx / -8.0f, -f16_max, f16_max);
    const float id = dm != 0.0f ? 1.0f / dm : 0.0f;
    const std::uint16_t h = scale_f16(dm);
    std::memcpy(out, &h, 2);
    const hn::Rebind<std::int32_t, DE> di;
    const hn::Rebind<std::uint8_t, DE> du8;
    HWY_ALIGN std::uint8_t q[32];
    const auto zero = hn::Zero(d), fifteen = hn::Set(d, 15.0f), vid = hn::Set(d, id);
    const auto half8 = hn::Set(d, 8.5f);
    for (std::size_t i = 0; i < 32; i += N) {
      // x * id, then + 8.5: two roundings, as the reference (no FMA contraction there).
      const auto t = hn::Add(hn::Mul(hn::Load(d, c + i), vid), half8);
      const auto v = hn::Min(hn::Max(hn::Floor(t), zero), fifteen);
      hn::Store(hn::DemoteTo(du8, hn::ConvertTo(di, v)), du8, q + i);
    }
    const hn::Full128<std::uint8_t> d16;
    const auto packed = hn::Or(hn::Load(d16, q), hn::ShiftLeft<4>(hn::Load(d16, q + 16)));
    hn::StoreU(packed, d16, out + 2);
  }
  static HWY_INLINE void encode(const float* x, std::size_t n, void* out) {
    auto* o = static_cast<unsigned char*>(out);
    for (std::size_t b = 0; b < n / 32; ++b) block(x + b * 32, o + b * q4_0::block_bytes);
  }
};

#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
// One pass of 4 chunks in element order.
template <> struct lane_reader<q4_0> {
  static constexpr std::size_t kPasses = 1;
  static constexpr bool four_rows = false;
  struct tables {};
  static constexpr std::size_t pos(std::size_t, std::size_t c) { return 8 * c; }
  template <std::size_t C>
  static HWY_INLINE __m256 chunk(const tables&, const q4_0::block& b, std::size_t) {
    const __m256i x = load8_u8(b.qs + 8 * (C & 1));
    const __m256i n = C < 2 ? _mm256_and_si256(x, _mm256_set1_epi32(15)) : _mm256_srli_epi32(x, 4);
    return _mm256_cvtepi32_ps(_mm256_sub_epi32(n, _mm256_set1_epi32(8)));
  }
};
#endif
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
// Chunk 0: the low nibbles (elements 0 .. 15), chunk 1: the high ones (16 .. 31), each looked
// up in the 16 floats n - 8 with one vpermps (which reads bits 0-3 of each lane): exact.
template <> struct zmm_reader<q4_0> {
  using block = q4_0::block;
  static constexpr std::size_t kValues = 32;
  static constexpr bool kScaled = true;
  struct tables {
    __m512 minus8;  // lane n: n - 8
    tables() {
      HWY_ALIGN float t[16];
      for (int i = 0; i < 16; ++i) t[i] = float(i - 8);
      minus8 = _mm512_load_ps(t);
    }
  };
  static constexpr std::size_t pos(std::size_t c) { return 16 * c; }
  template <std::size_t C> static HWY_INLINE __m512 chunk(const tables& t, const block& b) {
    const __m512i x = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b.qs)));
    return _mm512_permutexvar_ps(C == 0 ? x : _mm512_srli_epi32(x, 4), t.minus8);
  }
  static HWY_INLINE float scale(const block& b) { return scale_f32(b.d); }
};
#endif
#endif  // HWY_TARGET != HWY_SCALAR

}  // namespace strata::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();
