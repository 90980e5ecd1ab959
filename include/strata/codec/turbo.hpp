#pragma once
// turbo<Bits, Group, Codebook>: a group of Group rotated values stored as one fp16 scale and
// Group Bits-bit indices into Codebook (Lloyd-Max centroids for N(0, 1) by default); value i is
// scale * Codebook::centroids[idx_i]. Bits + 16 / Group bits per value: turbo<2> 2.125,
// turbo<3> 3.125, turbo<4> 4.125, turbo<5> 5.125, turbo<6> 6.125 (Group 128). Index packing
// (planar, docs/formats.md):
//   Bits 4: idx[j] (j < G/2): element j in the low nibble, element j + G/2 in the high nibble.
//   Bits 2: idx[j] (j < G/4): element j + k*G/4 in bits 2k..2k+1, k = 0..3.
//   Bits 3: idx[0, G/4) holds the low two bits as Bits 2 does; idx[G/4 + j] (j < G/8) bit k
//           holds the high bit of element j + k*G/8.
//   Bits 5: idx[0, G/2) holds the low four bits as Bits 4 does; idx[G/2 + j] (j < G/8) bit k
//           holds bit 4 of element j + k*G/8 (Bits 3's high-bit layout).
//   Bits 6: idx[0, G/2) holds the low four bits as Bits 4 does; idx[G/2 + j] (j < G/4) bits
//           2k..2k+1 hold bits 4..5 of element j + k*G/4 (Bits 2's layout).
// The cache rotates rows (rotated == true) and picks Group with turbo_group_for(head_dim)
// (strata/rotation/hadamard.hpp). The scale rule (norm correction or not) is in docs/codecs.md.

#include <cstddef>
#include <cstdint>

#include <strata/codec/codec_id.hpp>
#include <strata/codec/lloyd_max.hpp>

namespace strata {

template <int Bits, int Group = 128, class Codebook = lloyd_max_codebook<Bits>> struct turbo {
  static_assert(Bits >= 2 && Bits <= 6, "strata::turbo<Bits>: Bits must be 2, 3, 4, 5 or 6");
  static_assert(Group == 16 || Group == 32 || Group == 64 || Group == 128 || Group == 256,
                "strata::turbo<Bits, Group>: Group must be 16, 32, 64, 128 or 256");
  static_assert(Codebook::bits == Bits,
                "strata::turbo<Bits, Group, Codebook>: Codebook::bits must equal Bits");

  struct block {
    std::uint16_t scale;                 // fp16
    std::uint8_t idx[Group * Bits / 8];  // packed indices
  };
  static_assert(sizeof(block) == 2 + Group * Bits / 8);  // Bits + 16/Group bits per value

  using codebook = Codebook;
  static constexpr int bits = Bits;
  static constexpr int group = Group;
  static constexpr std::size_t block_values = Group;
  static constexpr std::size_t block_bytes = sizeof(block);
  static constexpr double bits_per_value = 8.0 * block_bytes / block_values;
  static constexpr bool rotated = true;
  static constexpr const char* name = Bits == 2   ? "turbo2"
                                      : Bits == 3 ? "turbo3"
                                      : Bits == 4 ? "turbo4"
                                      : Bits == 5 ? "turbo5"
                                                  : "turbo6";
  static constexpr codec_id id = Bits == 2   ? codec_id::turbo2
                                 : Bits == 3 ? codec_id::turbo3
                                 : Bits == 4 ? codec_id::turbo4
                                 : Bits == 5 ? codec_id::turbo5
                                             : codec_id::turbo6;
  // The same codec with groups of G values (strata/codec/group.hpp picks G per head dim).
  template <int G> using with_group = turbo<Bits, G, Codebook>;
};

static_assert(sizeof(turbo<2>::block) == 34);      // 2.125 bits per value
static_assert(sizeof(turbo<3>::block) == 50);      // 3.125 bits per value
static_assert(sizeof(turbo<4>::block) == 66);      // 4.125 bits per value
static_assert(sizeof(turbo<5>::block) == 82);      // 5.125 bits per value
static_assert(sizeof(turbo<5, 64>::block) == 42);  // 5.25 bits per value
static_assert(sizeof(turbo<6>::block) == 98);      // 6.125 bits per value
static_assert(sizeof(turbo<6, 64>::block) == 50);  // 6.25 bits per value

}  // namespace strata
