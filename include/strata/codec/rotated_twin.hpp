#pragma once
// rotated_twin<Base, Id>: Base's block format on rotated rows. The cache rotates each head
// vector with its rotation (the randomized Walsh-Hadamard of strata/rotation/hadamard.hpp, as
// for turbo) before Base encodes it, rotates queries alike, and rotates a V output back, so
// outlier channels are spread over the block before its scale is chosen. The blocks, sizes,
// encode rule and kernels are Base's; the name is Base's with an "r".
//
// llama.cpp rotates K and V of every quantized KV type (attn_rot_k / attn_rot_v, head dims
// that are multiples of 64): its q8_0 and q4_0 KV correspond to q8_0r and q4_0r here, strata's
// q8_0 and q4_0 to llama.cpp's with LLAMA_ATTN_ROT_DISABLE=1 (docs/policies.md).

#include <strata/codec/codec_alias.hpp>
#include <strata/codec/codec_id.hpp>
#include <strata/codec/q4_0.hpp>
#include <strata/codec/q8_0.hpp>

namespace strata {

template <class Base, codec_id Id> struct rotated_twin : codec_alias<Base, Id, true> {
  static_assert(!Base::rotated, "strata::rotated_twin<Base>: Base already stores rotated rows");
  static constexpr alias_name name_text = [] {
    alias_name n;
    n += Base::name;
    n += "r";
    return n;
  }();
  static constexpr const char* name = name_text.text.data();
};

using q8_0r = rotated_twin<q8_0, codec_id::q8_0r>;  // 8.5 bits per value, as q8_0
using q4_0r = rotated_twin<q4_0, codec_id::q4_0r>;  // 4.5 bits per value, as q4_0

static_assert(sizeof(q8_0r::block) == 34 && sizeof(q4_0r::block) == 18);

}  // namespace strata
