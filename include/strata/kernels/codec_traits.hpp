#pragma once
// What the kernels need to know about a codec beyond its block layout: which family of kernel
// reads it, and for turbo the int8 image of its codebook used by the integer dot product.
// The formats themselves (block structs, codebooks, fp16) live in strata/codec/.

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include <strata/codec/codecs.hpp>
#include <strata/codec/half.hpp>
#include <strata/codec/turbo_pack.hpp>

namespace strata::kernels {

// Kernel families (empty policy types).
struct float_family {};  // f32, f16, bf16: one value per block, decoded to f32 in registers
struct q8_family {};     // q8_0: int8 values, fp16 scale per 32
struct q4_family {};     // q4_0: 4-bit values - 8, fp16 scale per 32
struct turbo_family {};  // turbo<B, G>: packed codebook indices, fp16 scale per group
// An alias (strata/codec/codec_alias.hpp) is read by its storage type's family and kernels.
struct vq_family {};  // vq2<G>: 16-bit d8 lattice codes per 8 values, fp16 scale per group

template <class Codec> struct family_of { using type = void; };
template <> struct family_of<f32> { using type = float_family; };
template <> struct family_of<f16> { using type = float_family; };
template <> struct family_of<bf16> { using type = float_family; };
template <> struct family_of<q8_0> { using type = q8_family; };
template <> struct family_of<q4_0> { using type = q4_family; };
template <int B, int G, class CB> struct family_of<turbo<B, G, CB>> { using type = turbo_family; };
template <int G> struct family_of<vq2<G>> { using type = vq_family; };
template <aliased_codec C> struct family_of<C> : family_of<typename C::storage> {};
template <class Codec> using family_t = typename family_of<Codec>::type;

template <class Codec>
concept kernel_codec = !std::is_void_v<family_t<Codec>>;

// ---- turbo: packed index layout (docs/formats.md) and the int8 codebook -------------------
template <class Codec> struct turbo_traits;
template <int B, int G, class CB> struct turbo_traits<turbo<B, G, CB>> {
  static constexpr int bits = B;
  static constexpr int group = G;
  static constexpr int levels = 1 << B;
  // Bytes of one "plane": B = 4 (and the low four bits of B = 5, 6) has 2 planes of G/2 bytes
  // (low / high nibbles), B = 2 and the low two bits of B = 3 have 4 planes of G/4 bytes;
  // the high bits of B = 3 and B = 5 are 8 planes of G/8, those of B = 6 (bits 4..5) 4 planes
  // of G/4 (B = 2's layout).
  static constexpr int plane_bytes = B >= 4 ? G / 2 : G / 4;
  static constexpr int planes = B >= 4 ? 2 : 4;
  static constexpr int high_offset = B >= 4 ? G / 2 : G / 4;  // B = 3, 5, 6: the high planes
  static constexpr int high_bytes = B == 6 ? G / 4 : G / 8;

  static constexpr std::array<float, levels> codebook() { return CB::centroids; }
  static constexpr float max_abs() {
    float m = 0;
    for (float v : codebook()) m = v < 0 ? (-v > m ? -v : m) : (v > m ? v : m);
    return m;
  }
  // 7-bit image of the codebook for the integer dot product: cb7 = round(c * 63 / max|c|),
  // so value ~= unit * cb7 with |error| <= unit / 2. The kernels look up cb7 + 64 (1..127,
  // unsigned: pmaddubsw's first operand; 127 * 127 * 2 < 32768, so no saturation) and
  // subtract 64 * sum(q) once per query block.
  static constexpr float unit = max_abs() / 63.0f;
  static constexpr int codebook_offset = 64;
  // 16 entries (a byte table) for B <= 4, 32 for B = 5, 64 for B = 6. With 64 levels the
  // image's rounding (|error| <= unit / 2, unit = max|c| / 63) is coarse against the codebook's
  // spacing near zero: docs/codecs.md measures what it costs turbo6's dot.
  static constexpr std::size_t table_size = levels < 16 ? 16 : std::size_t(levels);
  static constexpr std::array<std::int8_t, table_size> codebook_i8() {
    std::array<std::int8_t, table_size> q{};
    for (int i = 0; i < levels; ++i) {
      const float v = codebook()[std::size_t(i)] * 63.0f / max_abs();
      q[std::size_t(i)] = std::int8_t(v < 0 ? -int(-v + 0.5f) : int(v + 0.5f));
    }
    return q;
  }
  static constexpr std::array<std::uint8_t, table_size> codebook_u8() {
    std::array<std::uint8_t, table_size> u{};
    for (std::size_t i = 0; i < table_size; ++i)
      u[i] = std::uint8_t(codebook_i8()[i] + codebook_offset);
    return u;
  }
};

}  // namespace strata::kernels
