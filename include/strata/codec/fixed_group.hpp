#pragma once
// turbo_fixed<Bits, Group>: turbo<Bits, Group> under a name that fixes the group, chosen at run
// time in a policy string ("turbo4g32"). turbo<Bits> itself takes its group from the head dim
// (strata/codec/group.hpp: the largest of 128, 64, 32, 16 dividing it); a fixed group trades
// bits for precision on purpose (Bits + 16 / Group bits per value: turbo4g32 4.5, turbo4g256
// 4.0625) and is refused, naming codec and head dim, where Group does not divide the head dim.
// Ids: 12 + 4 (Bits - 2) + log2(Group / 32), turbo2g32 = 12 .. turbo5g256 = 27
// (strata/codec/codec_id.hpp).

#include <strata/codec/codec_alias.hpp>
#include <strata/codec/codec_id.hpp>
#include <strata/codec/turbo.hpp>

namespace strata {

constexpr codec_id fixed_turbo_id(int bits, int group) {
  int log2 = 0;
  while ((32 << log2) < group) ++log2;
  return codec_id(int(codec_id::turbo2g32) + 4 * (bits - 2) + log2);
}

template <int Bits, int Group>
struct turbo_fixed : codec_alias<turbo<Bits, Group>, fixed_turbo_id(Bits, Group), true> {
  static_assert(Group == 32 || Group == 64 || Group == 128 || Group == 256,
                "strata::turbo_fixed<Bits, Group>: Group must be 32, 64, 128 or 256");
  static constexpr int bits = Bits;
  static constexpr int group = Group;
  static constexpr alias_name name_text = [] {
    alias_name n;
    n += turbo<Bits>::name;
    n += "g";
    n += Group;
    return n;
  }();
  static constexpr const char* name = name_text.text.data();
};

static_assert(fixed_turbo_id(2, 32) == codec_id::turbo2g32);
static_assert(fixed_turbo_id(3, 128) == codec_id::turbo3g128);
static_assert(fixed_turbo_id(4, 32) == codec_id::turbo4g32);
static_assert(fixed_turbo_id(5, 256) == codec_id::turbo5g256);
static_assert(sizeof(turbo_fixed<4, 32>::block) == 18);    // 4.5 bits per value
static_assert(sizeof(turbo_fixed<4, 256>::block) == 130);  // 4.0625 bits per value

}  // namespace strata
