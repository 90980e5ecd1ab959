// Codec types (compile-time traits, block sizes), index packing, and the scalar reference
// kernels: encode/decode round trips, dot and axpy against decode + f64 math.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <strata/codec/codecs.hpp>
#include <strata/codec/group.hpp>
#include <strata/codec/standard_codecs.hpp>
#include <strata/reference/reference.hpp>

#include "../support/codec_cases.hpp"

using namespace strata;

static_assert(f32::block_bytes == 4 && f32::bits_per_value == 32.0 && !f32::rotated);
static_assert(f16::block_bytes == 2 && f16::bits_per_value == 16.0 && !f16::rotated);
static_assert(bf16::block_bytes == 2 && bf16::bits_per_value == 16.0);
static_assert(q8_0::block_bytes == 34 && q8_0::block_values == 32 && q8_0::bits_per_value == 8.5);
static_assert(q4_0::block_bytes == 18 && q4_0::block_values == 32 && q4_0::bits_per_value == 4.5);
static_assert(turbo<2>::block_bytes == 34 && turbo<2>::bits_per_value == 2.125);
static_assert(turbo<3>::block_bytes == 50 && turbo<3>::bits_per_value == 3.125);
static_assert(turbo<4>::block_bytes == 66 && turbo<4>::bits_per_value == 4.125);
static_assert(turbo<4, 16>::block_bytes == 10 && turbo<4, 16>::bits_per_value == 5.0);
static_assert(turbo<3, 32>::block_bytes == 14 && turbo<3, 64>::block_values == 64);
static_assert(turbo<3>::rotated && turbo<3>::id == codec_id::turbo3);
static_assert(std::is_empty_v<turbo<2>> && std::is_empty_v<q8_0>);
static_assert(check_codec<turbo<4, 64, fork_codebook<4>>>());
static_assert(!codec<int> && !codec<float>);
static_assert(parse_codec("turbo3") == codec_id::turbo3 && !parse_codec("turbo7"));
static_assert(parse_codec("turbo5") == codec_id::turbo5 && turbo<5>::bits_per_value == 5.125);
static_assert(turbo<5, 64>::block_bytes == 42 && turbo<5, 16>::block_bytes == 12);
static_assert(parse_codec("turbo6") == codec_id::turbo6 && turbo<6>::bits_per_value == 6.125);
static_assert(turbo<6, 64>::block_bytes == 50 && turbo<6, 64>::bits_per_value == 6.25);
static_assert(turbo<6, 16>::block_bytes == 14 && turbo<6>::id == codec_id(28));
static_assert(!parse_codec("turbo6g32") && !parse_codec("turbo6g128"));  // no fixed groups
static_assert(parse_codec("q8_0r") == codec_id::q8_0r && parse_codec("q4_0r") == codec_id::q4_0r);
static_assert(q8_0r::rotated && !q8_0::rotated && q8_0r::block_bytes == 34);
static_assert(q4_0r::rotated && q4_0r::block_bytes == 18 && q4_0r::bits_per_value == 4.5);
static_assert(parse_codec("turbo4g32") == codec_id::turbo4g32 && !parse_codec("turbo4g16"));
static_assert(parse_codec("turbo2g256") == codec_id::turbo2g256 && !parse_codec("turbo4g512"));
static_assert(turbo_fixed<3, 64>::rotated && turbo_fixed<3, 64>::block_values == 64);
static_assert(std::is_same_v<storage_t<turbo_fixed<3, 64>>, turbo<3, 64>>);
static_assert(std::is_same_v<storage_t<q4_0r>, q4_0> && std::is_same_v<storage_t<q4_0>, q4_0>);
static_assert(!grouped_codec<turbo_fixed<4, 32>> && !grouped_codec<q8_0r>);
static_assert(codec_name(codec_id::q4_0) == "q4_0");

TEST_CASE("codec ids: names round trip and match the codec types") {
  for (codec_id id : all_codec_ids) CHECK(parse_codec(codec_name(id)) == id);
  CHECK(std::string_view(f32::name) == codec_name(f32::id));
  CHECK(std::string_view(f16::name) == codec_name(f16::id));
  CHECK(std::string_view(bf16::name) == codec_name(bf16::id));
  CHECK(std::string_view(q8_0::name) == codec_name(q8_0::id));
  CHECK(std::string_view(q4_0::name) == codec_name(q4_0::id));
  CHECK(std::string_view(turbo<2>::name) == codec_name(turbo<2>::id));
  CHECK(std::string_view(turbo<3, 32>::name) == "turbo3");
  CHECK(std::string_view(turbo<4>::name) == codec_name(turbo<4>::id));
  CHECK(std::string_view(turbo<5>::name) == "turbo5");
  CHECK(std::string_view(turbo<6, 64>::name) == "turbo6");
  CHECK(std::string_view(q8_0r::name) == "q8_0r");
  CHECK(std::string_view(q4_0r::name) == "q4_0r");
  // The fixed-group ids: 12 + 4 (B - 2) + log2(G / 32), names turbo<B>g<G>.
  int fixed = 0;
  standard_codecs::for_each([&](auto t) {
    using C = typename decltype(t)::type;
    if constexpr (requires { C::group; } && aliased_codec<C>) {
      const int lg = C::group == 32 ? 0 : C::group == 64 ? 1 : C::group == 128 ? 2 : 3;
      CHECK(int(C::id) == 12 + 4 * (C::bits - 2) + lg);
      CHECK(std::string(C::name) ==
            "turbo" + std::to_string(C::bits) + "g" + std::to_string(C::group));
      CHECK(C::block_bytes == std::size_t(2 + C::group * C::bits / 8));
      ++fixed;
    }
  });
  CHECK(fixed == 16);
  CHECK_FALSE(parse_codec("F16"));
  CHECK_FALSE(parse_codec(""));
}

template <int B, int G> void check_pack() {
  std::mt19937 rng(B * 1000 + G);
  std::uint8_t q[G], back[G], idx[G * B / 8];
  for (int rep = 0; rep < 50; ++rep) {
    for (int i = 0; i < G; ++i) q[i] = std::uint8_t(rng() % (1u << B));
    turbo_pack<B, G>(q, idx);
    turbo_unpack<B, G>(idx, back);
    for (int i = 0; i < G; ++i) REQUIRE(back[i] == q[i]);
  }
  // The layout itself, element by element (docs/formats.md).
  for (int e = 0; e < G; ++e) {
    std::memset(q, 0, sizeof q);
    q[e] = std::uint8_t((1u << B) - 1);
    turbo_pack<B, G>(q, idx);
    int set = 0;
    for (std::size_t j = 0; j < sizeof idx; ++j) set += __builtin_popcount(idx[j]);
    CHECK(set == B);
    if constexpr (B == 4) CHECK(idx[e % (G / 2)] == (e < G / 2 ? 0x0f : 0xf0));
    if constexpr (B == 5) {
      CHECK(idx[e % (G / 2)] == (e < G / 2 ? 0x0f : 0xf0));
      CHECK(idx[G / 2 + e % (G / 8)] == 1u << (e / (G / 8)));
    }
    if constexpr (B == 6) {  // the low nibble as B = 4, bits 4..5 as B = 2 after it
      CHECK(idx[e % (G / 2)] == (e < G / 2 ? 0x0f : 0xf0));
      CHECK(idx[G / 2 + e % (G / 4)] == 3u << (2 * (e / (G / 4))));
    }
    if constexpr (B == 2 || B == 3) CHECK(((idx[e % (G / 4)] >> (2 * (e / (G / 4)))) & 3) == 3);
    if constexpr (B == 3) CHECK(((idx[G / 4 + e % (G / 8)] >> (e / (G / 8))) & 1) == 1);
  }
}

TEST_CASE("turbo index packing: round trip and planar layout") {
  check_pack<2, 16>();
  check_pack<2, 32>();
  check_pack<2, 64>();
  check_pack<2, 128>();
  check_pack<3, 16>();
  check_pack<3, 32>();
  check_pack<3, 64>();
  check_pack<3, 128>();
  check_pack<4, 16>();
  check_pack<4, 32>();
  check_pack<4, 64>();
  check_pack<4, 128>();
  check_pack<4, 256>();
  check_pack<3, 256>();
  check_pack<5, 16>();
  check_pack<5, 32>();
  check_pack<5, 64>();
  check_pack<5, 128>();
  check_pack<5, 256>();
  check_pack<6, 16>();
  check_pack<6, 32>();
  check_pack<6, 64>();
  check_pack<6, 128>();
  check_pack<6, 256>();
  // Bits 4..5 alone: element j + k*G/4 in bits 2k..2k+1 of byte G/2 + j.
  std::uint8_t q[64] = {}, idx[48];
  q[17] = 0x20;  // bit 5 of element 17 = 1 + 1 * 16
  q[50] = 0x10;  // bit 4 of element 50 = 2 + 3 * 16
  turbo_pack<6, 64>(q, idx);
  for (int j = 0; j < 48; ++j) CHECK(idx[j] == (j == 33 ? 0x08 : j == 34 ? 0x40 : 0));
}

namespace {

std::vector<float> gaussian(std::size_t n, unsigned seed, float sigma = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, sigma);
  std::vector<float> v(n);
  for (auto& x : v) x = nd(rng);
  return v;
}

template <class C> std::vector<float> round_trip(const std::vector<float>& x) {
  std::vector<unsigned char> blocks(x.size() / C::block_values * C::block_bytes);
  reference::encode<C>(x.data(), x.size(), blocks.data());
  std::vector<float> y(x.size());
  reference::decode<C>(blocks.data(), x.size(), y.data());
  return y;
}

// dot and axpy of the reference against decode + f64 math over several shapes.
template <class C> void check_dot_axpy(std::size_t dim) {
  const std::size_t n_keys = 7, n_q = 3;
  const std::size_t row = dim / C::block_values * C::block_bytes, stride = row + 6;
  const auto x = gaussian(n_keys * dim, 11);
  std::vector<unsigned char> keys(n_keys * stride, 0xcd);
  for (std::size_t j = 0; j < n_keys; ++j)
    reference::encode<C>(x.data() + j * dim, dim, keys.data() + j * stride);
  std::vector<float> k(n_keys * dim);
  for (std::size_t j = 0; j < n_keys; ++j)
    reference::decode<C>(keys.data() + j * stride, dim, k.data() + j * dim);
  const auto q = gaussian(n_q * dim, 12);
  std::vector<float> scores(n_q * 9, -1.0f);
  reference::dot<C>(q.data(), n_q, dim, keys.data(), stride, n_keys, scores.data(), 9);
  for (std::size_t i = 0; i < n_q; ++i) {
    for (std::size_t j = 0; j < n_keys; ++j) {
      double s = 0;
      for (std::size_t c = 0; c < dim; ++c) s += double(q[i * dim + c]) * k[j * dim + c];
      CHECK(scores[i * 9 + j] == float(s));
    }
    for (std::size_t j = n_keys; j < 9; ++j) CHECK(scores[i * 9 + j] == -1.0f);  // untouched
  }
  const auto w = gaussian(n_q * 8, 13);
  std::vector<float> out(n_q * dim, 0.5f);
  reference::axpy<C>(w.data(), n_q, 8, keys.data(), stride, n_keys, dim, out.data());
  for (std::size_t i = 0; i < n_q; ++i)
    for (std::size_t c = 0; c < dim; ++c) {
      double s = 0.5;
      for (std::size_t j = 0; j < n_keys; ++j) s += double(w[i * 8 + j]) * k[j * dim + c];
      CHECK(out[i * dim + c] == float(s));
    }
}

}  // namespace

TEST_CASE("reference round trips: f32 and f16/bf16 element-wise") {
  const auto x = gaussian(256, 1);
  CHECK(round_trip<f32>(x) == x);
  const auto h = round_trip<f16>(x), b = round_trip<bf16>(x);
  for (std::size_t i = 0; i < x.size(); ++i) {
    CHECK(h[i] == f16_to_f32(f32_to_f16(x[i])));
    CHECK(b[i] == bf16_to_f32(f32_to_bf16(x[i])));
    CHECK(std::fabs(h[i] - x[i]) <= std::fabs(x[i]) * 0x1p-11f);
    CHECK(std::fabs(b[i] - x[i]) <= std::fabs(x[i]) * 0x1p-8f);
  }
}

TEST_CASE("reference round trip: turbo6 reads its 64 levels; error 3-4x below turbo5's") {
  const auto x = gaussian(128 * 400, 3);
  const auto mse = [&](const std::vector<float>& y) {
    double e = 0;
    for (std::size_t i = 0; i < x.size(); ++i) e += (double(y[i]) - x[i]) * (double(y[i]) - x[i]);
    return e / double(x.size());
  };
  const double e6 = mse(round_trip<turbo<6>>(x)), e5 = mse(round_trip<turbo<5>>(x));
  const double e6g64 = mse(round_trip<turbo<6, 64>>(x));
  MESSAGE("round trip MSE: turbo6 " << e6 << " (G 64: " << e6g64 << "), turbo5 " << e5);
  CHECK(e6 < lloyd_max_codebook<6>::mse);  // the scale search beats the N(0, 1) table
  CHECK(e5 / e6 > 3.0);
  CHECK(e5 / e6 < 4.5);
  CHECK(e6g64 < e6);  // more scale bits per value
  // Every decoded value is the block's scale times the centroid its packed index names, and
  // the indices use the whole table.
  std::vector<turbo<6>::block> blocks(x.size() / 128);
  reference::encode<turbo<6>>(x.data(), x.size(), blocks.data());
  std::vector<float> y(x.size());
  reference::decode<turbo<6>>(blocks.data(), x.size(), y.data());
  bool used[64] = {};
  for (std::size_t b = 0; b < blocks.size(); ++b) {
    std::uint8_t q[128];
    turbo_unpack<6, 128>(blocks[b].idx, q);
    const float s = f16_to_f32(blocks[b].scale);
    for (int i = 0; i < 128; ++i) {
      REQUIRE(y[b * 128 + std::size_t(i)] == s * lloyd_max_codebook<6>::centroids[q[i]]);
      used[q[i]] = true;
    }
  }
  for (bool u : used) CHECK(u);
}

TEST_CASE("reference: block codecs decode an all-zero row to zeros") {
  const std::vector<float> z(128, 0.0f);
  CHECK(round_trip<q8_0>(z) == z);
  CHECK(round_trip<q4_0>(z) == z);
  CHECK(round_trip<turbo<2>>(z) == z);
  CHECK(round_trip<turbo<3, 32>>(z) == z);
  CHECK(round_trip<turbo<4, 16>>(z) == z);
}

TEST_CASE("reference: lengths that are not whole blocks are refused") {
  std::vector<float> x(40);
  std::vector<unsigned char> out(1024);
  CHECK_THROWS_AS(reference::encode<q8_0>(x.data(), 40, out.data()), std::invalid_argument);
  CHECK_THROWS_AS(reference::decode<turbo<3>>(out.data(), 64, x.data()), std::invalid_argument);
  CHECK_NOTHROW(reference::encode<turbo<3, 16>>(x.data(), 32, out.data()));
}

TEST_CASE("reference dot and axpy equal decode + f64 math, for every codec") {
  check_dot_axpy<f32>(64);
  check_dot_axpy<f16>(40);
  check_dot_axpy<bf16>(8);
  check_dot_axpy<q8_0>(96);
  check_dot_axpy<q4_0>(64);
  check_dot_axpy<turbo<2>>(128);
  check_dot_axpy<turbo<3>>(256);
  check_dot_axpy<turbo<4>>(128);
  check_dot_axpy<turbo<4, 16>>(80);
  check_dot_axpy<turbo<3, 32>>(96);
  check_dot_axpy<turbo<2, 64>>(192);
  check_dot_axpy<turbo<6>>(256);
}

// One test case per codec of standard_codecs (and each group a cache can give a grouped codec):
// a codec added to the set is checked here with no edit.
TEST_CASE_TEMPLATE_DEFINE("standard codec: concept, names, zero rows, whole blocks, dot and axpy",
                          Case, standard_codec_checks) {
  using C = strata_test::codec_of<standard_codecs, Case>;
  CHECK(parse_codec(C::name) == C::id);
  CHECK(codec_name(C::id) == std::string_view(C::name));
  std::size_t n = 0;
  for_each_group_variant<C>([&](auto v) {
    using V = typename decltype(v)::type;
    INFO("codec ", V::name, ", blocks of ", V::block_values);
    static_assert(check_codec<V>());
    CHECK(V::id == C::id);
    CHECK(V::block_bytes == sizeof(typename V::block));
    const std::size_t dim = V::block_values == 1 ? 40 : 2 * V::block_values;
    const std::vector<float> z(dim, 0.0f);
    CHECK(round_trip<V>(z) == z);
    if (V::block_values > 1) {
      std::vector<float> x(V::block_values + 1);
      std::vector<unsigned char> out(4 * V::block_bytes);
      CHECK_THROWS_AS(reference::encode<V>(x.data(), x.size(), out.data()), std::invalid_argument);
    }
    check_dot_axpy<V>(dim);
    ++n;
  });
  CHECK(n == (grouped_codec<C> ? group_ladder::size() : 1));
}
TEST_CASE_TEMPLATE_APPLY(standard_codec_checks, strata_test::codec_cases<standard_codecs>);
