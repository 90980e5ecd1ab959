#pragma once
// strata's codecs as one type list, the single source of what a policy string, a tool's
// -ctk/-ctv, a state file and a kernel table can name; codec_name, parse_codec and
// all_codec_ids are derived from it. Turbo and vq2 appear with their default group: a cache
// regroups them per head dim (strata/codec/group.hpp); turbo_fixed<B, G> ("turbo4g32") keeps
// its group G. q8_0r and q4_0r are q8_0 and q4_0 on rotated rows.

#include <array>
#include <optional>
#include <string>
#include <string_view>

#include <strata/codec/bf16.hpp>
#include <strata/codec/codec_id.hpp>
#include <strata/codec/codec_set.hpp>
#include <strata/codec/f16.hpp>
#include <strata/codec/f32.hpp>
#include <strata/codec/fixed_group.hpp>
#include <strata/codec/q4_0.hpp>
#include <strata/codec/q8_0.hpp>
#include <strata/codec/rotated_twin.hpp>
#include <strata/codec/turbo.hpp>
#include <strata/codec/vq2.hpp>

namespace strata {

// In codec_id order: the fixed-group turbos (turbo2g32 .. turbo5g256), then turbo6 (no
// fixed-group variants: every standard codec is compiled for every SIMD target).
using standard_codecs =
    codec_set<f32, f16, bf16, q8_0, q4_0, turbo<2>, turbo<3>, turbo<4>, vq2<>, q8_0r, q4_0r,
              turbo<5>, turbo_fixed<2, 32>, turbo_fixed<2, 64>, turbo_fixed<2, 128>,
              turbo_fixed<2, 256>, turbo_fixed<3, 32>, turbo_fixed<3, 64>, turbo_fixed<3, 128>,
              turbo_fixed<3, 256>, turbo_fixed<4, 32>, turbo_fixed<4, 64>, turbo_fixed<4, 128>,
              turbo_fixed<4, 256>, turbo_fixed<5, 32>, turbo_fixed<5, 64>, turbo_fixed<5, 128>,
              turbo_fixed<5, 256>, turbo<6>>;

inline constexpr std::array<codec_id, standard_codecs::size> all_codec_ids = standard_codecs::ids;

// llama.cpp's --cache-type-k/-v spelling; "" for an id outside standard_codecs.
constexpr std::string_view codec_name(codec_id id) { return standard_codecs::name(id); }

// codec_name, or "codec id N" for an id this build does not know (for messages).
inline std::string codec_label(codec_id id) {
  const std::string_view n = codec_name(id);
  return n.empty() ? "codec id " + std::to_string(unsigned(id)) : std::string(n);
}

// Exact, case-sensitive match against codec_name; std::nullopt for anything else.
constexpr std::optional<codec_id> parse_codec(std::string_view name) {
  return standard_codecs::parse(name);
}

// Codecs that store every value on its own (f32, f16, bf16: blocks of one value); the others
// keep a scale per block or codebook indices.
constexpr bool is_element_codec(codec_id id) {
  bool element = false;
  standard_codecs::visit(id, [&](auto t) { element = decltype(t)::type::block_values == 1; });
  return element;
}

}  // namespace strata
