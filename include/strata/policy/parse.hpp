#pragma once
// Runtime policy strings: what a user types on a command line.
//
//   parse_policy("q8_0")                           K and V q8_0 on every layer
//   parse_policy("-ctk q8_0 -ctv turbo3")          llama.cpp's --cache-type-k / -v spelling
//   parse_policy("la7")  parse_policy("boundary-v") a preset by name (see presets.hpp)
//   parse_policy("la1 -ctk turbo3 -ctv turbo3")    a preset whose fallback the user sets
//   parse_policy("v:first2,last2=q8_0;v=turbo2;k=q8_0")   the general form
//
// Grammar: clauses separated by ';' or whitespace, each one of
//   CODEC                      fallback of K and V
//   -ctk CODEC | -ctv CODEC    fallback of K (V)  (also --cache-type-k / --cache-type-v)
//   k=CODEC | v=CODEC | kv=CODEC                fallback of K, V or both
//   k:SELS=CODEC | v:SELS=CODEC | kv:SELS=CODEC a rule; SELS = SEL[,SEL...]
//   PRESET                     la1 la2 la5 la6 la7 boundary-v boundary-v-4-4
//   recent=N                   keep the newest N tokens also as f16 rows (policy_spec::recent)
//   k-balance                  per-channel K balancing (policy_spec::k_balance)
// SEL: all, firstN, lastN, everyN, everyN+M, N (one KV ordinal), N-M (ordinals N..M),
// sliding, global. Rules keep their order (the first matching rule wins, for K and V
// separately). A preset adds its rules where it appears and sets its fallbacks unless the
// string sets them explicitly (an explicit fallback always wins, wherever it appears).
// Codec names: f32 f16 bf16 q8_0 q4_0 turbo2 turbo3 turbo4 vq2 (llama.cpp's -ctk/-ctv names).
// Errors throw std::invalid_argument("error: <what> (policy \"<string>\")"), listing the
// valid names.

#include <charconv>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <strata/codec/standard_codecs.hpp>
#include <strata/policy/presets.hpp>
#include <strata/policy/spec.hpp>

namespace strata {

namespace detail {

inline std::string valid_preset_names() {
  std::string s;
  for (const auto& p : policy_presets) {
    if (!s.empty()) s += ' ';
    s += p.name;
  }
  return s;
}

template <class Set> struct policy_parser {
  std::string_view text;
  policy_spec spec;
  std::optional<codec_id> k_explicit, v_explicit, k_preset, v_preset;

  [[noreturn]] void fail(const std::string& what) const {
    throw std::invalid_argument("error: " + what + " (policy \"" + escaped(text) + "\")");
  }

  // The text with control bytes, '"' and '\\' escaped, so that a message shows every byte.
  static std::string escaped(std::string_view s) {
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    for (const char ch : s) {
      const auto b = static_cast<unsigned char>(ch);
      if (b == '"' || b == '\\') out += '\\';
      if (b < 0x20 || b == 0x7f) {
        out += "\\x";
        out += hex[b >> 4];
        out += hex[b & 15];
      } else {
        out += ch;
      }
    }
    return out;
  }

  codec_id codec(std::string_view name) const {
    if (auto c = Set::parse(name)) return *c;
    fail("unknown KV cache type '" + std::string(name) + "'; valid types: " + Set::names());
  }

  static bool number(std::string_view s, std::uint32_t& out) {
    if (s.empty()) return false;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && p == s.data() + s.size();
  }

  layer_selector selector(std::string_view s) const {
    using w = layer_selector::what;
    auto starts = [&](std::string_view p) { return s.substr(0, p.size()) == p; };
    std::uint32_t a = 0, b = 0;
    if (s == "all") return {w::all, 0, 0};
    if (s == "sliding") return {w::sliding, 0, 0};
    if (s == "global") return {w::global, 0, 0};
    if (starts("first") && number(s.substr(5), a)) return {w::first, a, 0};
    if (starts("last") && number(s.substr(4), a)) return {w::last, a, 0};
    if (starts("every")) {
      std::string_view rest = s.substr(5);
      const auto plus = rest.find('+');
      if (plus == std::string_view::npos && number(rest, a) && a > 0) return {w::every, a, 0};
      if (plus != std::string_view::npos && number(rest.substr(0, plus), a) &&
          number(rest.substr(plus + 1), b) && a > 0 && b < a)
        return {w::every, a, b};
    }
    if (number(s, a)) return {w::ordinal, a, a};
    const auto dash = s.find('-');
    if (dash != std::string_view::npos && number(s.substr(0, dash), a) &&
        number(s.substr(dash + 1), b) && a <= b)
      return {w::ordinal, a, b};
    fail("unknown layer selector '" + std::string(s) +
         "'; valid: all firstN lastN everyN everyN+M N N-M sliding global (N, M: KV-layer "
         "ordinals or counts)");
  }

  void set_fallback(std::string_view target, codec_id c) {
    if (target == "k" || target == "kv") k_explicit = c;
    if (target == "v" || target == "kv") v_explicit = c;
  }

  void clause(std::string_view c, std::string_view next, bool& used_next) {
    used_next = false;
    if (c == "-ctk" || c == "--cache-type-k" || c == "-ctv" || c == "--cache-type-v") {
      if (next.empty()) fail("'" + std::string(c) + "' needs a KV cache type");
      used_next = true;
      set_fallback(c == "-ctk" || c == "--cache-type-k" ? "k" : "v", codec(next));
      return;
    }
    for (const auto& p : policy_presets) {
      if (c == p.name) {
        policy_spec ps = p.spec();
        for (auto& r : ps.rules) spec.rules.push_back(std::move(r));
        k_preset = ps.k;
        v_preset = ps.v;
        return;
      }
    }
    if (c == "k-balance") {
      spec.k_balance = true;
      return;
    }
    const auto eq = c.find('=');
    if (eq == std::string_view::npos) {
      if (auto id = Set::parse(c)) {
        k_explicit = v_explicit = *id;
        return;
      }
      fail("cannot parse '" + std::string(c) + "'; expected a KV cache type (" + Set::names() +
           "), a preset (" + valid_preset_names() +
           "), -ctk/-ctv TYPE, k|v|kv[:selectors]=TYPE, recent=N or k-balance");
    }
    std::string_view lhs = c.substr(0, eq), rhs = c.substr(eq + 1);
    if (lhs == "recent") {
      std::uint32_t n = 0;
      if (!number(rhs, n) || n > (1u << 24))
        fail("bad recent window '" + std::string(rhs) + "' in '" + std::string(c) +
             "'; expected a token count 0.." + std::to_string(1u << 24));
      spec.recent = n;
      return;
    }
    const auto colon = lhs.find(':');
    std::string_view target = lhs.substr(0, colon);
    if (target != "k" && target != "v" && target != "kv")
      fail("unknown target '" + std::string(target) + "' in '" + std::string(c) +
           "'; valid targets: k v kv");
    const codec_id id = codec(rhs);
    if (colon == std::string_view::npos) {
      set_fallback(target, id);
      return;
    }
    policy_rule r;
    std::string_view sels = lhs.substr(colon + 1);
    if (sels.empty()) fail("no layer selector in '" + std::string(c) + "'");
    while (!sels.empty()) {
      const auto comma = sels.find(',');
      r.selectors.push_back(selector(sels.substr(0, comma)));
      if (comma == std::string_view::npos) break;
      sels = sels.substr(comma + 1);
      if (sels.empty()) fail("empty layer selector in '" + std::string(c) + "'");
    }
    if (target != "v") r.k = id;
    if (target != "k") r.v = id;
    spec.rules.push_back(std::move(r));
  }

  policy_spec run() {
    for (std::size_t b = 0; b < text.size(); ++b) {
      const auto ch = static_cast<unsigned char>(text[b]);
      if ((ch < 0x20 && ch != '\t' && ch != '\n') || ch == 0x7f)
        fail("control byte " + escaped(text.substr(b, 1)) + " at offset " + std::to_string(b) +
             "; a policy is printable text");
    }
    std::vector<std::string_view> tokens;
    std::size_t i = 0;
    auto sep = [](char ch) { return ch == ';' || ch == ' ' || ch == '\t' || ch == '\n'; };
    while (i < text.size()) {
      while (i < text.size() && sep(text[i])) ++i;
      std::size_t j = i;
      while (j < text.size() && !sep(text[j])) ++j;
      if (j > i) tokens.push_back(text.substr(i, j - i));
      i = j;
    }
    if (tokens.empty())
      fail("empty policy; give a KV cache type (" + Set::names() + ") or a preset (" +
           valid_preset_names() + ")");
    for (std::size_t t = 0; t < tokens.size(); ++t) {
      bool used_next = false;
      clause(tokens[t], t + 1 < tokens.size() ? tokens[t + 1] : std::string_view(), used_next);
      if (used_next) ++t;
    }
    spec.k = k_explicit ? *k_explicit : k_preset ? *k_preset : codec_id::f16;
    spec.v = v_explicit ? *v_explicit : v_preset ? *v_preset : codec_id::f16;
    return spec;
  }
};

}  // namespace detail

// Parses a policy string (grammar above) naming codecs of Set. Throws std::invalid_argument on
// bad input.
template <class Set = standard_codecs> policy_spec parse_policy(std::string_view text) {
  detail::policy_parser<Set> p{text, {}, {}, {}, {}, {}};
  return p.run();
}

}  // namespace strata
