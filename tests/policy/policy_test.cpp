// Layer map, selectors, compile-time and runtime policies, presets, reports.
#include <doctest/doctest.h>

#include <cmath>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

#include <strata/layer_map.hpp>
#include <strata/policy/parse.hpp>
#include <strata/policy/policy.hpp>
#include <strata/policy/presets.hpp>
#include <strata/policy/report.hpp>

using namespace strata;

namespace {

// The TurboQuant fork's bit rates, as its published table counts them.
double fork_bits(codec_id c, std::uint32_t) {
  switch (c) {
    case codec_id::q8_0: return 8.5;
    case codec_id::turbo2: return 2.5;
    case codec_id::turbo3: return 3.5;
    case codec_id::turbo4: return 4.5;
    case codec_id::f16: return 16;
    default: return 0;
  }
}

// Every KV ordinal of N: the compile-time codec types agree with the runtime resolution.
template <class P, std::size_t N, std::size_t... I>
void check_compile_time_matches_runtime(std::index_sequence<I...>) {
  const policy_spec s = to_spec<P>();
  const codec_id k[] = {policy_k_codec<P, I, N>::id...};
  const codec_id v[] = {policy_v_codec<P, I, N>::id...};
  for (std::size_t o = 0; o < N; ++o) {
    CHECK(k[o] == s.resolve(o, N).k);
    CHECK(v[o] == s.resolve(o, N).v);
  }
}

}  // namespace

TEST_CASE("layer_map: dense, hybrid, shared KV, sliding windows") {
  const layer_map d = layer_map::dense(28, 8, 128, 32);
  CHECK(d.n_layers() == 28);
  CHECK(d.n_kv_layers() == 28);
  CHECK(d.kv_ordinal(5) == 5);
  CHECK(d[3].n_heads == 32);

  const layer_map h = layer_map::hybrid(64, 4, 3, 2, 256);
  REQUIRE(h.n_kv_layers() == 16);
  CHECK(h.kv_layer(0) == 3);
  CHECK(h.kv_layer(15) == 63);
  CHECK(h.kv_ordinal(7) == 1);
  CHECK(h.kv_ordinal(8) == -1);
  CHECK(h.cache_layer(8) == -1);
  CHECK(h[3].n_heads == 2);  // defaults to n_kv_heads

  std::vector<layer_info> v(4);
  for (auto& l : v) l = {true, -1, attention_kind::global, 0, 8, 4, 64};
  v[1].kind = attention_kind::sliding;
  v[1].window = 512;
  v[3] = {false, 1, attention_kind::sliding, 512, 8, 0, 0};
  const layer_map s(v);
  CHECK(s.n_kv_layers() == 3);
  CHECK(s.cache_layer(3) == 1);
  CHECK(s[3].head_dim == 64);
  CHECK(s[3].n_kv_heads == 4);

  auto bad = v;
  bad[3].kv_source = 3;
  CHECK_THROWS_AS(layer_map{bad}, std::invalid_argument);
  bad = v;
  bad[0].n_heads = 6;  // not a multiple of 4
  CHECK_THROWS_WITH_AS(layer_map{bad}, doctest::Contains("layer 0"), std::invalid_argument);
  bad = v;
  bad[1].window = 0;
  CHECK_THROWS_AS(layer_map{bad}, std::invalid_argument);
}

TEST_CASE("selectors are empty types matching by KV ordinal") {
  static_assert(std::is_empty_v<boundary<2, 2>>);
  static_assert(std::is_empty_v<any_of<first_n<1>, every<4, 1>>>);
  static_assert(selector_matches<boundary<2, 2>>(0, 16));
  static_assert(selector_matches<boundary<2, 2>>(1, 16));
  static_assert(!selector_matches<boundary<2, 2>>(2, 16));
  static_assert(!selector_matches<boundary<2, 2>>(13, 16));
  static_assert(selector_matches<boundary<2, 2>>(14, 16));
  static_assert(selector_matches<last_n<8>>(8, 16) && !selector_matches<last_n<8>>(7, 16));
  static_assert(selector_matches<every<4, 1>>(5, 16) && !selector_matches<every<4, 1>>(4, 16));
  static_assert(selector_matches<ordinals<3, 5>>(5, 16) &&
                !selector_matches<ordinals<3, 5>>(6, 16));
  static_assert(selector_matches<sliding_window_layers>(0, 1, attention_kind::sliding));
  static_assert(!selector_matches<sliding_window_layers>(0, 1, attention_kind::global));
  static_assert(selector_matches<global_layers>(0, 1, attention_kind::global));
  static_assert(selector_matches<any_of<first_n<1>, every<4, 1>>>(0, 16));
  static_assert(selector_matches<any_of<first_n<1>, every<4, 1>>>(9, 16));
  static_assert(!selector_matches<any_of<first_n<1>, every<4, 1>>>(8, 16));
  // More boundary layers than KV layers: everything matches, nothing breaks.
  static_assert(selector_matches<boundary<4, 4>>(2, 3));
}

TEST_CASE("compile-time policies: first match wins, K and V separately") {
  using P = layered<uniform<q8_0, turbo<2>>, v_rule<first_n<1>, f16>, v_rule<first_n<3>, q8_0>,
                    k_rule<last_n<1>, f32>>;
  static_assert(std::is_empty_v<P>);
  static_assert(std::is_same_v<policy_v_codec<P, 0, 10>, f16>);
  static_assert(std::is_same_v<policy_v_codec<P, 1, 10>, q8_0>);
  static_assert(std::is_same_v<policy_v_codec<P, 2, 10>, q8_0>);
  static_assert(std::is_same_v<policy_v_codec<P, 3, 10>, turbo<2>>);
  static_assert(std::is_same_v<policy_k_codec<P, 0, 10>, q8_0>);
  static_assert(std::is_same_v<policy_k_codec<P, 9, 10>, f32>);
  static_assert(std::is_same_v<policy_v_codec<P, 9, 10>, turbo<2>>);
  // Rules per attention kind.
  using S = layered<uniform<f16>, kv_rule<sliding_window_layers, q8_0>>;
  static_assert(std::is_same_v<policy_k_codec<S, 0, 6, attention_kind::sliding>, q8_0>);
  static_assert(std::is_same_v<policy_k_codec<S, 0, 6, attention_kind::global>, f16>);
  // The codec set of a policy, without duplicates.
  static_assert(decltype(boost::hana::length(policy_codecs<P>()))::value == 4);
  static_assert(policy_uses_only<P, f32, f16, q8_0, turbo<2>>());
  static_assert(!policy_uses_only<P, f16, q8_0, turbo<2>>());

  check_compile_time_matches_runtime<P, 10>(std::make_index_sequence<10>{});
  check_compile_time_matches_runtime<boundary_v<>, 40>(std::make_index_sequence<40>{});
  check_compile_time_matches_runtime<la1<>, 28>(std::make_index_sequence<28>{});
  check_compile_time_matches_runtime<la6<>, 16>(std::make_index_sequence<16>{});
}

TEST_CASE("presets by KV ordinal") {
  const layer_map m = layer_map::dense(40, 8, 128);
  const auto bv = to_spec<boundary_v<>>().resolve(m);
  for (const auto& l : bv) {
    const bool edge = l.ordinal < 2 || l.ordinal >= 38;
    CHECK(l.k == codec_id::q8_0);
    CHECK(l.v == (edge ? codec_id::q8_0 : codec_id::turbo2));
  }
  const auto l1 = to_spec<la1<>>().resolve(m);
  CHECK(l1[3].k == codec_id::q8_0);
  CHECK(l1[4].k == codec_id::turbo3);
  CHECK(l1[36].v == codec_id::q8_0);
  const auto l2 = to_spec<la2<>>().resolve(m);
  CHECK(l2[31].v == codec_id::turbo3);
  CHECK(l2[32].v == codec_id::q8_0);
  const auto l5 = to_spec<la5<>>().resolve(m);
  CHECK(l5[1].v == codec_id::turbo4);
  CHECK(l5[2].v == codec_id::turbo2);
  CHECK(l5[39].v == codec_id::turbo4);
  const auto l6 = to_spec<la6<>>().resolve(m);
  CHECK(l6[0].v == codec_id::turbo2);
  CHECK(l6[32].v == codec_id::turbo4);
}

TEST_CASE("effective bits: the fork's published Boundary V numbers") {
  const layer_map m40 = layer_map::dense(40, 8, 128);
  const layer_map m28 = layer_map::dense(28, 8, 128);
  const auto bv40 = report(to_spec<boundary_v<>>(), m40);
  const auto bv28 = report(to_spec<boundary_v<>>(), m28);
  const auto b44_40 = report(to_spec<boundary_v_4_4<>>(), m40);
  const auto b44_28 = report(to_spec<boundary_v_4_4<>>(), m28);
  CHECK(bv40.bits_v(fork_bits) == doctest::Approx(3.10).epsilon(0.002));
  CHECK(bv28.bits_v(fork_bits) == doctest::Approx(3.357).epsilon(0.002));
  CHECK(b44_40.bits_v(fork_bits) == doctest::Approx(3.70).epsilon(0.002));
  CHECK(b44_28.bits_v(fork_bits) == doctest::Approx(4.214).epsilon(0.002));
  CHECK(std::round(bv28.bits_v(fork_bits) * 100) == 336);
  CHECK(std::round(b44_28.bits_v(fork_bits) * 100) == 421);
  // strata's own rates: q8_0 8.5, turbo2 2.125 (head dim 128); hand computation.
  CHECK(bv40.bits_v() == doctest::Approx((4 * 8.5 + 36 * 2.125) / 40));
  CHECK(bv40.bits_k() == doctest::Approx(8.5));
  CHECK(bv40.bits() == doctest::Approx((8.5 + (4 * 8.5 + 36 * 2.125) / 40) / 2));
}

TEST_CASE("hybrid 64 layers: Boundary V upgrades KV layers 3, 7, 59, 63") {
  const layer_map h = layer_map::hybrid(64, 4, 3, 2, 256, 16);
  const auto r = report(to_spec<boundary_v<>>(), h);
  REQUIRE(r.layers.size() == 16);
  std::vector<int> upgraded;
  for (const auto& l : r.layers)
    if (l.v == codec_id::q8_0) upgraded.push_back(l.layer);
  CHECK(upgraded == std::vector<int>{3, 7, 59, 63});
  CHECK(r.bits_v(fork_bits) == doctest::Approx((4 * 8.5 + 12 * 2.5) / 16));
  CHECK(r.table().find("| 0-1 | 3, 7 | global | q8_0 | q8_0 |") != std::string::npos);
  CHECK(r.table().find("| 2-13 | 11, 15, ..., 55 | global | q8_0 | turbo2 |") != std::string::npos);
  CHECK(r.table().find("| 14-15 | 59, 63 | global | q8_0 | q8_0 |") != std::string::npos);
  CHECK(r.table().find("48 of 64 layers have no KV cache") != std::string::npos);
}

TEST_CASE("exact bytes") {
  // 2 layers, 4 KV heads, head dim 64: K q8_0 (2 blocks x 34 B), V turbo3 (G = 64: 2 + 24 B).
  const layer_map m = layer_map::dense(2, 4, 64);
  const auto r = report(parse_policy("k=q8_0;v=turbo3"), m);
  CHECK(r.k_token_bytes(0) == 4 * 68);
  CHECK(r.v_token_bytes(0) == 4 * 26);
  CHECK(r.bytes(1000) == 1000 * 2 * (4 * 68 + 4 * 26));
  CHECK(r.k_bytes(10) + r.v_bytes(10) == r.bytes(10));
  // Head dim 80 does not fit q8_0's 32-value blocks.
  CHECK_THROWS_WITH_AS(report(parse_policy("q8_0"), layer_map::dense(2, 4, 80)),
                       doctest::Contains("head dim 80"), std::invalid_argument);
  CHECK_NOTHROW(report(parse_policy("turbo4"), layer_map::dense(2, 4, 80)));  // G = 16
}

TEST_CASE("policy strings") {
  const layer_map m = layer_map::dense(40, 8, 128);
  SUBCASE("a single type and -ctk/-ctv") {
    const policy_spec a = parse_policy("q8_0");
    CHECK(a.k == codec_id::q8_0);
    CHECK(a.v == codec_id::q8_0);
    CHECK(a.rules.empty());
    const policy_spec b = parse_policy("-ctk q8_0 -ctv turbo3");
    CHECK(b.k == codec_id::q8_0);
    CHECK(b.v == codec_id::turbo3);
    const policy_spec c = parse_policy("--cache-type-v turbo4");
    CHECK(c.k == codec_id::f16);
    CHECK(c.v == codec_id::turbo4);
  }
  SUBCASE("rotated twins, turbo5 and fixed turbo groups") {
    const policy_spec a = parse_policy("-ctk q8_0r -ctv q4_0r");
    CHECK(a.k == codec_id::q8_0r);
    CHECK(a.v == codec_id::q4_0r);
    const policy_spec b = parse_policy("k=turbo4g32;v=turbo5");
    CHECK(b.k == codec_id::turbo4g32);
    CHECK(b.v == codec_id::turbo5);
    const policy_spec c = parse_policy("v:first2,last2=q8_0r;k=turbo5g256;v=turbo2g64");
    CHECK(c.resolve(0, 10).v == codec_id::q8_0r);
    CHECK(c.resolve(5, 10).k == codec_id::turbo5g256);
    CHECK(c.resolve(5, 10).v == codec_id::turbo2g64);
    CHECK(parse_policy(c.to_string()).resolve(m) == c.resolve(m));
  }
  SUBCASE("turbo6: a codec name, a -ctk/-ctv type; no fixed groups") {
    for (const char* s :
         {"-ctk turbo6 -ctv turbo6", "turbo6", "kv=turbo6", "k=turbo5;k:0-3=turbo6;v=turbo6"}) {
      CAPTURE(s);
      const policy_spec p = parse_policy(s);
      CHECK(p.resolve(2, 10).k == codec_id::turbo6);
      CHECK(p.resolve(5, 10).v == codec_id::turbo6);
      CHECK(parse_policy(p.to_string()).resolve(m) == p.resolve(m));
    }
    CHECK(parse_policy("k=turbo5;k:0-3=turbo6").resolve(5, 10).k == codec_id::turbo5);
    // Head dim 128: groups of 128, 98 bytes.
    CHECK(report(parse_policy("turbo6"), m).bits() == doctest::Approx(6.125));
    for (const char* bad : {"k=turbo6g32", "v=turbo6g64", "-ctk turbo7"})
      CHECK_THROWS_WITH_AS(parse_policy(bad), doctest::Contains("unknown KV cache type"),
                           std::invalid_argument);
  }
  SUBCASE("presets by name equal the compile-time presets") {
    CHECK(parse_policy("la7") == to_spec<la7<>>());
    CHECK(parse_policy("boundary-v") == to_spec<boundary_v<>>());
    CHECK(parse_policy("boundary-v-4-4") == to_spec<boundary_v_4_4<>>());
    CHECK(parse_policy("la1") == to_spec<la1<>>());
    CHECK(parse_policy("la2") == to_spec<la2<>>());
    CHECK(parse_policy("la5") == to_spec<la5<>>());
    CHECK(parse_policy("la6") == to_spec<la6<>>());
    // An explicit fallback wins over the preset's, wherever it appears.
    const policy_spec p = parse_policy("-ctk turbo4 la7");
    CHECK(p.k == codec_id::turbo4);
    CHECK(p.v == codec_id::turbo2);
    CHECK(p.rules == to_spec<la7<>>().rules);
    CHECK(parse_policy("la1 -ctk turbo4 -ctv turbo2") ==
          to_spec<la1<uniform<turbo<4>, turbo<2>>>>());
  }
  SUBCASE("the general form") {
    const policy_spec g = parse_policy("v:first2,last2=q8_0;v=turbo2;k=q8_0");
    CHECK(g.resolve(m) == to_spec<boundary_v<>>().resolve(m));
    const policy_spec h =
        parse_policy("kv:0,5-6=f32; k:every4+1=q4_0; kv:sliding=bf16 ;k=turbo4;v=f16");
    CHECK(h.resolve(0, 10).k == codec_id::f32);
    CHECK(h.resolve(1, 10).k == codec_id::q4_0);
    CHECK(h.resolve(1, 10).v == codec_id::f16);
    CHECK(h.resolve(5, 10).k == codec_id::f32);  // first match wins over every4+1
    CHECK(h.resolve(6, 10).v == codec_id::f32);
    CHECK(h.resolve(7, 10).k == codec_id::turbo4);
    CHECK(h.resolve(7, 10, attention_kind::sliding).k == codec_id::bf16);
    CHECK(h.resolve(9, 10).k == codec_id::q4_0);
    // to_string round trip, recent window and K balance included
    for (const char* s : {"la1", "la5", "la7", "kv:0,5-6=f32;k:every4+1=q4_0;k=turbo4",
                          "k:all=q8_0;v:global,last3=turbo3;v=turbo2", "la7 recent=64 k-balance"}) {
      const policy_spec p = parse_policy(s);
      const policy_spec q = parse_policy(p.to_string());
      CHECK(p.resolve(m) == q.resolve(m));
      CHECK(q.recent == p.recent);
      CHECK(q.k_balance == p.k_balance);
      CHECK(p.resolve(layer_map::hybrid(64, 4, 3, 2, 256)) ==
            q.resolve(layer_map::hybrid(64, 4, 3, 2, 256)));
    }
  }
  SUBCASE("errors name the valid choices") {
    CHECK_THROWS_WITH_AS(parse_policy("turbo7"),
                         doctest::Contains(standard_codecs::names().c_str()),
                         std::invalid_argument);
    // Groups outside 32, 64, 128, 256, and spellings near the rotated twins', are unknown.
    for (const char* bad : {"k=turbo4g16", "k=turbo4g48", "v=turbo5g512", "k=turbo4g", "k=q8_0rr",
                            "-ctk q4_0R", "v=turbo1g32"})
      CHECK_THROWS_WITH_AS(parse_policy(bad), doctest::Contains("unknown KV cache type"),
                           std::invalid_argument);
    for (codec_id id : all_codec_ids)  // every standard codec is named in the list
      CHECK(standard_codecs::names().find(std::string(codec_name(id))) != std::string::npos);
    CHECK_THROWS_WITH_AS(parse_policy("la9"), doctest::Contains("la1 la2 la5 la6 la7 boundary-v"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(parse_policy("k=q9"), doctest::Contains("unknown KV cache type 'q9'"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(parse_policy("v:middle=q8_0"), doctest::Contains("firstN"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(parse_policy("x=q8_0"), doctest::Contains("k v kv"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(parse_policy("-ctk"), doctest::Contains("needs a KV cache type"),
                         std::invalid_argument);
    CHECK_THROWS_AS(parse_policy(""), std::invalid_argument);
    CHECK_THROWS_AS(parse_policy("v:=q8_0"), std::invalid_argument);
    CHECK_THROWS_AS(parse_policy("v:first2,=q8_0"), std::invalid_argument);
    CHECK_THROWS_AS(parse_policy("v:every0=q8_0"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(parse_policy("v:first2=q7"), doctest::Contains("(policy \"v:first2=q7\")"),
                         std::invalid_argument);
    // Control bytes are refused by offset, and every byte of the string shows in the message
    // (a NUL would otherwise end it early).
    using namespace std::string_literals;
    CHECK_THROWS_WITH_AS(parse_policy("q8_0\0x\r"s),
                         "error: control byte \\x00 at offset 4; a policy is printable text "
                         "(policy \"q8_0\\x00x\\x0d\")",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(parse_policy("q8_0 \"x\\"),
                         doctest::Contains("(policy \"q8_0 \\\"x\\\\\")"), std::invalid_argument);
  }
}

TEST_CASE("a rule that matches no KV layer is an error naming it") {
  const layer_map m30 = layer_map::dense(30, 3, 64);
  CHECK_THROWS_WITH_AS(parse_policy("v:99=q8_0;k=f16;v=turbo3").check_every_rule_matches(m30),
                       doctest::Contains("\"99\" matches no KV layer of this model (30 KV layers"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(parse_policy("v:sliding=q8_0").check_every_rule_matches(m30),
                       doctest::Contains("\"sliding\" matches no KV layer"), std::invalid_argument);
  // Selectors that reach at least one layer pass, also when wider than the model.
  CHECK_NOTHROW(parse_policy("v:first2,last2=q8_0;v=turbo2").check_every_rule_matches(m30));
  CHECK_NOTHROW(parse_policy("v:last40=q8_0").check_every_rule_matches(m30));
  CHECK_NOTHROW(parse_policy("v:5-99=q8_0").check_every_rule_matches(m30));
  std::vector<layer_info> v(4);
  for (auto& l : v) l = {true, -1, attention_kind::global, 0, 8, 4, 64};
  v[1].kind = attention_kind::sliding;
  v[1].window = 512;
  CHECK_NOTHROW(parse_policy("v:sliding=q8_0").check_every_rule_matches(layer_map(v)));
  // Every preset fits every depth the engine runs (stories260K has 5 KV layers).
  for (const char* preset : {"la1", "la2", "la5", "la6", "la7", "boundary-v", "boundary-v-4-4"})
    CHECK_NOTHROW(parse_policy(preset).check_every_rule_matches(layer_map::dense(5, 4, 64)));
}
