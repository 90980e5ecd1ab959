#pragma once
// The runtime name of a codec: what a policy string, a GGUF-style cache type or a kernel table
// refers to. The codec types themselves (f16, q8_0, turbo<3>, ...) carry their id.

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace strata {

// Append-only: the values are stored in state files (one byte per layer and side), so a value
// is never reused or renumbered. 0-127 are strata's; 128-255 are left to codecs a program
// defines itself.
enum class codec_id : std::uint8_t {
  f32 = 0,
  f16 = 1,
  bf16 = 2,
  q8_0 = 3,
  q4_0 = 4,
  turbo2 = 5,
  turbo3 = 6,
  turbo4 = 7,
  vq2 = 8,
};
inline constexpr std::uint8_t first_user_codec_id = 128;

inline constexpr std::array<codec_id, 9> all_codec_ids{
    codec_id::f32,    codec_id::f16,    codec_id::bf16,   codec_id::q8_0, codec_id::q4_0,
    codec_id::turbo2, codec_id::turbo3, codec_id::turbo4, codec_id::vq2,
};

// llama.cpp's --cache-type-k/-v spelling; "" for a value outside the enum.
constexpr std::string_view codec_name(codec_id id) {
  switch (id) {
    case codec_id::f32: return "f32";
    case codec_id::f16: return "f16";
    case codec_id::bf16: return "bf16";
    case codec_id::q8_0: return "q8_0";
    case codec_id::q4_0: return "q4_0";
    case codec_id::turbo2: return "turbo2";
    case codec_id::turbo3: return "turbo3";
    case codec_id::turbo4: return "turbo4";
    case codec_id::vq2: return "vq2";
  }
  return "";
}

// codec_name, or "codec id N" for a value this build does not know (for messages).
inline std::string codec_label(codec_id id) {
  const std::string_view n = codec_name(id);
  return n.empty() ? "codec id " + std::to_string(unsigned(id)) : std::string(n);
}

// f32, f16 and bf16 store every value on its own; the others are block codecs (a scale per
// block of values, or codebook indices).
constexpr bool is_element_codec(codec_id id) {
  return id == codec_id::f32 || id == codec_id::f16 || id == codec_id::bf16;
}

// Exact, case-sensitive match against codec_name; std::nullopt for anything else.
constexpr std::optional<codec_id> parse_codec(std::string_view name) {
  for (codec_id id : all_codec_ids)
    if (codec_name(id) == name) return id;
  return std::nullopt;
}

}  // namespace strata
