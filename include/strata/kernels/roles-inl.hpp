// The roles a codec family's readers play for the kernel drivers, per Highway target: each
// role is a class template specialized in the family's file (q8_0-inl.hpp, turbo-inl.hpp ...)
// and a concept that says what the specialization provides. The drivers check the concept with
// a static_assert that names what is missing; the entry point (codec_kernels in kernels-inl.hpp)
// picks drivers by which roles a codec provides and names no codec. Unspecialized roles are
// empty structs, so a concept is simply false for a codec that does not provide the role.
//
//   role            what it gives                                     driver
//   float_io        load/store a row of f32/f16/bf16 as f32 vectors   float-inl.hpp
//   i8_reader       a key block as int8 codes (+ offset) and a factor dot_i8-inl.hpp
//   f32_reader      a value block as unscaled f32 vectors + its scale axpy-inl.hpp
//   block_decoder   a block to f32 (decode)                           axpy-inl.hpp
//   block_encoder   f32 values to blocks (encode)                     the entry point
//   lane_reader     x86: 8 values of a block per chunk, natural order axpy_x86-inl.hpp
//   plane_reader    x86: turbo's 2-bit planes as index words          axpy_x86-inl.hpp
//   zmm_reader      AVX-512: 16 values of a block per chunk, natural  axpy_zmm-inl.hpp
// A fragment of kernels-inl.hpp.

HWY_BEFORE_NAMESPACE();
namespace strata::kernels::HWY_NAMESPACE {

template <class Codec> struct float_io { using absent = void; };
template <class Codec> struct i8_reader { using absent = void; };
template <class Codec> struct f32_reader { using absent = void; };
template <class Codec> struct block_decoder { using absent = void; };
template <class Codec> struct block_encoder { using absent = void; };
template <class Codec> struct lane_reader { using absent = void; };
template <class Codec> struct plane_reader { using absent = void; };
template <class Codec> struct zmm_reader { using absent = void; };
template <class Codec> struct v8_reader { using absent = void; };  // x86: int8_axpy.hpp

// A role the codec's family specializes on this target (the primaries above are `absent`).
template <class R>
concept provided = !requires {
  typename R::absent;
};

// A callable the concepts pass where a reader takes a visitor: it accepts any vector.
struct any_visitor {
  template <class V> void operator()(V, std::size_t) const {}
};

// float_io<C>: one value per element; elem is the stored type, load/store N values as f32.
template <class Codec>
concept float_format = requires(const typename float_io<Codec>::elem* p, float v) {
  { float_io<Codec>::scalar(*p) } -> std::same_as<float>;
  { float_io<Codec>::encode_scalar(v) } -> std::same_as<typename float_io<Codec>::elem>;
};

// i8_reader<C> ("expand to int8 codes + scale"): block(state, key block, f) calls f(k, offset)
// for each run of Lanes(D) int8 key values (k + kOffset, unsigned, when kOffset != 0; q8_0:
// widened to int16) starting at element `offset` of the block, and returns the block's factor:
// value = factor * (k - kOffset) up to the codec's int8 image. product(k, q) is the int32 lane
// sums of k * q for query codes of query_t at q. An integer attention pipeline can drive it.
template <class Codec>
concept int8_expander = requires(const typename i8_reader<Codec>::state& st,
                                 const typename Codec::block& b) {
  typename i8_reader<Codec>::D;
  typename i8_reader<Codec>::query_t;
  { i8_reader<Codec>::kOffset } -> std::convertible_to<int>;
  { i8_reader<Codec>::block(st, b, any_visitor{}) } -> std::same_as<float>;
};
// An i8_reader whose factor is an fp16 scale times a constant: factor = f32(half_scale(b)) *
// kUnit (the same bits), for drivers that convert several keys' scales at once.
template <class Codec>
concept half_scaled_keys = requires(const typename Codec::block& b) {
  { i8_reader<Codec>::half_scale(b) } -> std::same_as<std::uint16_t>;
  { i8_reader<Codec>::kUnit } -> std::convertible_to<float>;
};

// f32_reader<C>: visit(state, block, f) calls f(v, pos) with unscaled f32 vectors (DF) of the
// block's values at position pos of the block's accumulator layout; position(p) is the element
// stored at position p (kNatural: p itself); scale(block) is the factor of every value (the
// only place a family's block scale is read). ok: this target runs the SIMD path (a reader may
// exist for a codec whose blocks are too narrow for this target's vectors).
template <class Codec>
concept f32_expander = requires(const typename f32_reader<Codec>::state& st,
                                const typename Codec::block& b, std::size_t p) {
  typename f32_reader<Codec>::DF;
  f32_reader<Codec>::visit(st, b, any_visitor{});
  { f32_reader<Codec>::scale(b) } -> std::same_as<float>;
  { f32_reader<Codec>::position(p) } -> std::same_as<std::size_t>;
  { f32_reader<Codec>::kNatural } -> std::convertible_to<bool>;
  { f32_reader<Codec>::ok } -> std::convertible_to<bool>;
};

// block_decoder<C>: block(state, block, x) writes the block's block_values floats to x; ok as
// f32_reader's.
template <class Codec>
concept block_decoding = requires(const typename block_decoder<Codec>::state& st,
                                  const typename Codec::block& b, float* x) {
  block_decoder<Codec>::block(st, b, x);
  { block_decoder<Codec>::ok } -> std::convertible_to<bool>;
};

// block_encoder<C>: encode(x, n, out) as strata::reference::encode<C> writes it, bit for bit.
template <class Codec>
concept block_encoding = requires(const float* x, std::size_t n, void* out) {
  block_encoder<Codec>::encode(x, n, out);
};

// block_decoder<C> for families whose f32_reader is in natural order: x = scale * value.
template <class Codec> struct decode_by_f32_reader {
  using R = f32_reader<Codec>;
  using state = typename R::state;
  static constexpr bool ok = R::ok && R::kNatural;
  static HWY_INLINE void block(const state& st, const typename Codec::block& b, float* x) {
    const typename R::DF df;
    const auto s = hn::Set(df, R::scale(b));
    R::visit(st, b, [&](hn::Vec<typename R::DF> v, std::size_t pos) {
      hn::StoreU(hn::Mul(s, v), df, x + pos);
    });
  }
};

// What a driver requires of a codec, checked where the driver is instantiated with one:
// static_assert(require<concept<Codec>>(role::X)) fails with the role's message.
enum class role {
  float_io,
  i8_reader,
  f32_reader,
  block_decoder,
  block_encoder,
  lane_reader,
  plane_reader,
  zmm_reader
};
template <bool Provided> consteval bool require(role r) {
  if (!Provided) {
    // Not a constant expression: the compiler reports the call and the role it names.
    switch (r) {
      case role::float_io:
        throw "float_io<Codec> must provide elem, load, store, scalar and encode_scalar";
      case role::i8_reader:
        throw "i8_reader<Codec> must provide D, query_t, kOffset, state, block and product";
      case role::f32_reader:
        throw "f32_reader<Codec> must provide DF, state, visit, scale, position, kNatural and ok";
      case role::block_decoder: throw "block_decoder<Codec> must provide state, block and ok";
      case role::block_encoder: throw "block_encoder<Codec> must provide encode";
      case role::lane_reader:
        throw "lane_reader<Codec> must provide tables, chunk<C>, pos, kPasses and four_rows";
      case role::plane_reader: throw "plane_reader<Codec> must provide tables, word<P> and chunk";
      case role::zmm_reader:
        throw "zmm_reader<Codec> must provide block, kValues, kScaled, tables, chunk<C>, pos and "
              "scale";
    }
  }
  return true;
}

#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
// lane_reader<C>: kPasses passes of 4 chunks cover a block; chunk<C>(tables, block, pass)
// returns 8 unscaled values of elements pos(pass, C) .. + 7 (the block's scale comes from
// f32_reader<C>::scale, which it needs). four_rows: groups of 4 query rows take the
// register-blocked kernel too.
template <class Codec>
concept lane_reading = requires(const typename lane_reader<Codec>::tables& t,
                                const typename Codec::block& b, std::size_t p) {
  { lane_reader<Codec>::template chunk<0>(t, b, p) } -> std::same_as<__m256>;
  { lane_reader<Codec>::pos(p, p) } -> std::same_as<std::size_t>;
  { lane_reader<Codec>::kPasses } -> std::convertible_to<std::size_t>;
  { lane_reader<Codec>::four_rows } -> std::convertible_to<bool>;
};

// plane_reader<C>: word<P>(tables, block) holds plane P's indices (byte k of lane l: element
// 32P + 4l + k), chunk(tables, word, k) the 8 codebook values of byte k of each lane.
template <class Codec>
concept plane_reading = requires(const typename plane_reader<Codec>::tables& t,
                                 const typename Codec::block& b, __m256i w) {
  { plane_reader<Codec>::template word<0>(t, b) } -> std::same_as<__m256i>;
  { plane_reader<Codec>::chunk(t, w, 0) } -> std::same_as<__m256>;
};
#endif

#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
// zmm_reader<C> (AVX-512: 32 vector registers of 16 floats): a row is read in blocks of
// kValues values (a multiple of 16; block: their bytes); chunk<C>(tables, block) returns the 16
// unscaled values of elements pos(C) .. pos(C) + 15 of the block, C < kValues / 16 (chunks
// that read the same bytes are numbered next to each other, so a pass over a few shares the
// loads); scale(block) is every value's factor, or kScaled is false (no factor: the weights
// are used as they are).
template <class Codec>
concept zmm_reading = requires(const typename zmm_reader<Codec>::tables& t,
                               const typename zmm_reader<Codec>::block& b, std::size_t c) {
  { zmm_reader<Codec>::template chunk<0>(t, b) } -> std::same_as<__m512>;
  { zmm_reader<Codec>::pos(c) } -> std::same_as<std::size_t>;
  { zmm_reader<Codec>::kValues } -> std::convertible_to<std::size_t>;
  { zmm_reader<Codec>::kScaled } -> std::convertible_to<bool>;
  { zmm_reader<Codec>::scale(b) } -> std::same_as<float>;
};
#endif

// Which drivers the entry point (codec_kernels) runs for Codec on this target: a role the
// family provides must satisfy its concept, or the build stops with the role's message; a
// provided reader runs where it says ok. The register-blocked readers also need f32_reader.
template <class Codec>
inline constexpr bool use_float_io = [] {
  if constexpr (!provided<float_io<Codec>>)
    return false;
  else
    return require<float_format<Codec>>(role::float_io);
}();
template <class Codec>
inline constexpr bool use_i8_reader = [] {
  if constexpr (!provided<i8_reader<Codec>>)
    return false;
  else
    return require<int8_expander<Codec>>(role::i8_reader);
}();
template <class Codec>
inline constexpr bool use_f32_reader = [] {
  if constexpr (!provided<f32_reader<Codec>>)
    return false;
  else
    return require<f32_expander<Codec>>(role::f32_reader) && f32_reader<Codec>::ok;
}();
template <class Codec>
inline constexpr bool use_block_decoder = [] {
  if constexpr (!provided<block_decoder<Codec>>)
    return false;
  else
    return require<block_decoding<Codec>>(role::block_decoder) && block_decoder<Codec>::ok;
}();
template <class Codec>
inline constexpr bool use_block_encoder = [] {
  if constexpr (!provided<block_encoder<Codec>>)
    return false;
  else
    return require<block_encoding<Codec>>(role::block_encoder);
}();
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
template <class Codec>
inline constexpr bool use_lane_reader = [] {
  if constexpr (!provided<lane_reader<Codec>>)
    return false;
  else
    return require<lane_reading<Codec>>(role::lane_reader) && use_f32_reader<Codec>;
}();
template <class Codec>
inline constexpr bool use_plane_reader = [] {
  if constexpr (!provided<plane_reader<Codec>>)
    return false;
  else
    return require<plane_reading<Codec>>(role::plane_reader) && use_f32_reader<Codec>;
}();
// v8_reader<C> (axpy_i8-inl.hpp): exactly the codecs of int8_v (int8_axpy.hpp); it runs for
// int8_v_avx3 on AVX3/AVX3_DL and int8_v_avx2 on AVX2 (int8_v_on), whose axpy the tests then
// compare with int8_axpy_reference.
template <class Codec>
inline constexpr bool use_v8_reader = [] {
  static_assert(provided<v8_reader<Codec>> == int8_v<Codec>,
                "v8_reader<Codec> must exist exactly for the codecs of int8_v");
  return HWY_TARGET <= HWY_AVX3 ? int8_v_avx3<Codec> : int8_v_avx2<Codec>;
}();
#endif
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
template <class Codec>
inline constexpr bool use_zmm_reader = [] {
  if constexpr (!provided<zmm_reader<Codec>>)
    return false;
  else
    return require<zmm_reading<Codec>>(role::zmm_reader);
}();
#endif

}  // namespace strata::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();
