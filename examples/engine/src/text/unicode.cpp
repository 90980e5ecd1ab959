#include "text/unicode.hpp"

#include <algorithm>

namespace engine::unicode {

uint16_t flags_of(uint32_t cpt) {
  if (cpt >= invalid_byte_base) return undefined;
  // The last run whose first <= cpt.
  const range* end = ranges + n_ranges;
  const range* it =
      std::upper_bound(ranges, end, cpt, [](uint32_t c, const range& r) { return c < r.first; });
  return (it - 1)->flags;
}

uint32_t next_cpt(std::string_view s, std::size_t& pos) {
  const auto byte = [&](std::size_t i) { return static_cast<uint8_t>(s[i]); };
  const uint8_t lead = byte(pos);
  const int len = utf8_len(lead);
  if (lead < 0x80) {
    ++pos;
    return lead;
  }
  const auto invalid = [&] { return invalid_byte_base + byte(pos++); };
  if (len == 1 || pos + len > s.size()) return invalid();
  uint32_t cpt = lead & (0x7F >> len);
  for (int k = 1; k < len; ++k) {
    const uint8_t c = byte(pos + k);
    if ((c & 0xC0) != 0x80) return invalid();
    cpt = (cpt << 6) | (c & 0x3F);
  }
  // Overlong forms, surrogates and values past U+10FFFF are not valid UTF-8.
  static constexpr uint32_t min_for_len[5] = {0, 0, 0x80, 0x800, 0x10000};
  if (cpt < min_for_len[len] || cpt > 0x10FFFF || (cpt >= 0xD800 && cpt <= 0xDFFF)) {
    return invalid();
  }
  pos += len;
  return cpt;
}

void append_utf8(std::string& out, uint32_t cpt) {
  if (cpt >= invalid_byte_base) {
    out += static_cast<char>(cpt - invalid_byte_base);
  } else if (cpt < 0x80) {
    out += static_cast<char>(cpt);
  } else if (cpt < 0x800) {
    out += static_cast<char>(0xC0 | (cpt >> 6));
    out += static_cast<char>(0x80 | (cpt & 0x3F));
  } else if (cpt < 0x10000) {
    out += static_cast<char>(0xE0 | (cpt >> 12));
    out += static_cast<char>(0x80 | ((cpt >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cpt & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cpt >> 18));
    out += static_cast<char>(0x80 | ((cpt >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cpt >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cpt & 0x3F));
  }
}

namespace {
constexpr std::array<int16_t, 512> make_cpt_to_byte() {
  std::array<int16_t, 512> t{};
  for (auto& v : t) v = -1;
  for (int b = 0; b < 256; ++b) t[byte_to_cpt[b]] = static_cast<int16_t>(b);
  return t;
}
constexpr std::array<int16_t, 512> cpt_to_byte_table = make_cpt_to_byte();
}  // namespace

int cpt_to_byte(uint32_t cpt) {
  return cpt < cpt_to_byte_table.size() ? cpt_to_byte_table[cpt] : -1;
}

}  // namespace engine::unicode
