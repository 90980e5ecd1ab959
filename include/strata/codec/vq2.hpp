#pragma once
// vq2<Group>: 2-bit lattice vector quantization of rotated rows. A group of Group values is
// one fp16 scale and Group / 8 16-bit codes, each a point of the D8 half-integer codebook
// (strata/codec/d8_codebook.hpp) for 8 consecutive values: value i is
// scale * k_i / 2 with k_i the code's odd integer (|k_i| <= 7). 2 + 16 / Group bits per
// value: vq2<128> 2.125, the same as turbo2 (docs/formats.md, docs/codecs.md).
// The cache rotates rows (rotated == true) and picks Group as for turbo (turbo_group_for).

#include <cstddef>
#include <cstdint>

#include <strata/codec/codec_id.hpp>

namespace strata {

template <int Group = 128> struct vq2 {
  static_assert(Group == 16 || Group == 32 || Group == 64 || Group == 128,
                "strata::vq2<Group>: Group must be 16, 32, 64 or 128");

  struct block {
    std::uint16_t scale;            // fp16
    std::uint16_t code[Group / 8];  // one d8 codeword per 8 values
  };
  static_assert(sizeof(block) == 2 + Group / 4);  // 2 + 16/Group bits per value

  static constexpr int bits = 2;
  static constexpr int group = Group;
  // Values are scaled by gain * sqrt(Group) / |x| before the codebook (docs/codecs.md: the
  // measured best for rotated Gaussian rows).
  static constexpr float gain = 1.125f;
  static constexpr std::size_t block_values = Group;
  static constexpr std::size_t block_bytes = sizeof(block);
  static constexpr double bits_per_value = 8.0 * block_bytes / block_values;
  static constexpr bool rotated = true;
  static constexpr const char* name = "vq2";
  static constexpr codec_id id = codec_id::vq2;
  // The same codec with groups of G values (strata/codec/group.hpp picks G per head dim).
  template <int G> using with_group = vq2<G>;
};

static_assert(sizeof(vq2<128>::block) == 34);  // 2.125 bits per value
static_assert(sizeof(vq2<64>::block) == 18);   // 2.25 bits per value

}  // namespace strata
