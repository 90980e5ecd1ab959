// Codec quality: turbo<b> MSE against Lloyd-Max on 20,000 Gaussian vectors, q8_0/q4_0
// within their error bounds, f16/bf16 exact where they must be, the rotation keeps outlier
// vectors as easy as Gaussian ones, the norm-correction rule, and NaN/inf/huge inputs.
#include <doctest/doctest.h>

#include <cfloat>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include <strata/codec/half.hpp>
#include <strata/reference/encode.hpp>

#include "quality.hpp"

using namespace strata;
using namespace strata::quality;

namespace {

// Expected per-coordinate MSE of the codebook's quantizer applied to one coordinate of a random
// unit vector in G dimensions scaled by sqrt(G) (density ~ (1 - t^2/G)^((G-3)/2), |t| < sqrt(G)):
// what turbo<B, G> with the plain scale n / sqrt(G) must give, since it knows the group norm.
template <class Codebook> double sphere_marginal_mse(int g) {
  const double r = std::sqrt(double(g));
  const int steps = 200000;
  const double h = 2 * r / steps;
  double z = 0, e = 0;
  for (int i = 0; i <= steps; ++i) {
    const double t = -r + i * h;
    const double w = (i == 0 || i == steps) ? 1 : (i % 2 ? 4 : 2);
    const double f = std::pow(std::max(0.0, 1.0 - t * t / g), 0.5 * (g - 3));
    std::size_t k = 0;
    for (float th : Codebook::thresholds) k += th < t;
    const double c = Codebook::centroids[k];
    z += w * f;
    e += w * f * (t - c) * (t - c);
  }
  return e / z;
}

// `searched`: the codec's MSE over Lloyd-Max's as measured on these rows (1.009 for turbo2, which
// keeps the norm indices; 0.920, 0.817, 0.750, 0.723 for B = 3..6 with the scale search,
// docs/codecs.md "Scale search"): a regression of the encoder by more than 1% fails.
template <int B> void check_turbo_vs_lloyd_max(const std::vector<float>& x, double searched) {
  using C = turbo<B>;
  const double lm = lloyd_max_codebook<B>::mse;
  const double codec = relative_mse(x, round_trip_rows<C>(x, 128));
  const double plain = relative_mse(
      x, round_trip_rows<C, hadamard<>>(x, 128, encode_with_rule<C, turbo_scale_rule::plain>));
  const double norm = relative_mse(
      x,
      round_trip_rows<C, hadamard<>>(
          x, 128, encode_with_rule<C, turbo_scale_rule::norm_corrected, turbo_index_rule::norm>));
  const double sphere = sphere_marginal_mse<lloyd_max_codebook<B>>(128);
  MESSAGE("turbo" << B << ": MSE " << codec << " = " << codec / lm << " x Lloyd-Max " << lm
                  << "; norm indices " << norm << "; plain scale " << plain << ", predicted "
                  << sphere);
  // The quantizer does exactly what theory predicts for normalised coordinates...
  CHECK(plain == doctest::Approx(sphere).epsilon(0.01));
  // ...which is Lloyd-Max's N(0,1) value up to the light tails of a sphere's coordinates.
  CHECK(std::fabs(sphere / lm - 1.0) < 0.035);
  // Norm indices with norm correction (the encoder before the scale search): within 3%.
  CHECK(norm < 1.03 * lm);
  CHECK(norm > 0.95 * lm);
  // The codec (scale search, norm correction) is below Lloyd-Max's N(0, 1) value: a group's
  // best scale beats its norm's, more so the finer the table.
  CHECK(codec < 1.01 * searched * lm);
  CHECK(codec > 0.97 * searched * lm);
}

}  // namespace

TEST_CASE("turbo<b>: normalised per-coordinate MSE on 20,000 Gaussian vectors vs Lloyd-Max") {
  const auto x = gaussian_rows(20000, 128, 1);
  check_turbo_vs_lloyd_max<2>(x, 1.009);
  check_turbo_vs_lloyd_max<3>(x, 0.920);
  check_turbo_vs_lloyd_max<4>(x, 0.817);
  check_turbo_vs_lloyd_max<5>(x, 0.750);
  check_turbo_vs_lloyd_max<6>(x, 0.723);
  // The fork's 4-bit table is much worse with the fork's (norm) scale (its measured 0.018); the
  // scale search makes up most of that (measured 0.00854), still above Lloyd-Max's table.
  using F = turbo<4, 128, fork_codebook<4>>;
  const double fork = relative_mse(
      x,
      round_trip_rows<F, hadamard<>>(
          x, 128, encode_with_rule<F, turbo_scale_rule::norm_corrected, turbo_index_rule::norm>));
  CHECK(fork > 1.7 * lloyd_max_codebook<4>::mse);
  const double fork_searched = relative_mse(x, round_trip_rows<F>(x, 128));
  MESSAGE("fork table: " << fork << " (norm indices), " << fork_searched << " (searched)");
  CHECK(fork_searched > 1.05 * relative_mse(x, round_trip_rows<turbo<4>>(x, 128)));
}

TEST_CASE("q8_0 and q4_0: every element within the format's error bound; MSE as theory") {
  const auto x = gaussian_rows(2000, 128, 2);
  const auto y8 = round_trip_rows<q8_0>(x, 128);
  const auto y4 = round_trip_rows<q4_0>(x, 128);
  const double fp16_rel = 0x1p-11;  // the scale is rounded to fp16
  double e8 = 0, t8 = 0, e4 = 0, t4 = 0;
  for (std::size_t b = 0; b < x.size() / 32; ++b) {
    float amax = 0, max = 0;
    for (int i = 0; i < 32; ++i)
      if (std::fabs(x[b * 32 + i]) > amax) amax = std::fabs(x[b * 32 + i]), max = x[b * 32 + i];
    const double d8 = amax / 127.0, d4 = std::fabs(max) / 8.0;
    for (int i = 0; i < 32; ++i) {
      const double v = x[b * 32 + i];
      const double err8 = std::fabs(v - y8[b * 32 + i]), err4 = std::fabs(v - y4[b * 32 + i]);
      REQUIRE(err8 <= d8 * (0.5 + 127 * fp16_rel) * (1 + 1e-6));
      // q4_0's grid is -8..7 steps on max's side: the far end of the other side is one step off.
      const bool far_end = v * max < 0 && std::fabs(v) > 7.5 * d4;
      REQUIRE(err4 <= d4 * ((far_end ? 1.0 : 0.5) + 8 * fp16_rel) * (1 + 1e-6));
      e8 += err8 * err8, e4 += err4 * err4;
    }
    t8 += 32 * d8 * d8 / 12;  // uniform rounding noise
    t4 += 32 * d4 * d4 / 12;
  }
  MESSAGE("q8_0 MSE / (d^2/12) = " << e8 / t8 << ", q4_0 MSE / (d^2/12) = " << e4 / t4);
  CHECK(e8 / t8 == doctest::Approx(1.0).epsilon(0.1));
  CHECK(e4 / t4 == doctest::Approx(1.0).epsilon(0.15));
}

TEST_CASE("f16/bf16/f32: exact for representable values, correctly rounded otherwise") {
  std::vector<float> exact16, exactb;
  for (std::uint32_t h = 0; h < 0x10000; ++h) {
    const float f = f16_to_f32(std::uint16_t(h));
    if (std::isfinite(f)) exact16.push_back(f);
    const float b = bf16_to_f32(std::uint16_t(h));
    if (std::isfinite(b)) exactb.push_back(b);
  }
  exact16.resize(exact16.size() / 2 * 2);
  CHECK(round_trip_rows<f16>(exact16, 2) == exact16);
  CHECK(round_trip_rows<bf16>(exactb, 2) == exactb);
  const auto x = gaussian_rows(100, 64, 3);
  CHECK(round_trip_rows<f32>(x, 64) == x);
  const auto y = round_trip_rows<f16>(x, 64);
  for (std::size_t i = 0; i < x.size(); ++i) CHECK(y[i] == f16_to_f32(f32_to_f16(x[i])));
}

TEST_CASE("turbo: outlier channels cost at most 1.5x the Gaussian error (rotation at work)") {
  for (std::size_t d : {128, 64, 80, 96, 192, 576}) {
    const std::size_t n = 40000 / d;
    const auto g = gaussian_rows(n, d, 4);
    const auto o = outlier_rows(n, d, 4, 20.0f, 5);
    auto check = [&](auto codec) {
      using C = decltype(codec);
      const double eg = mean_row_relative_mse(g, round_trip_rows<C>(g, d), d);
      const double eo = mean_row_relative_mse(o, round_trip_rows<C>(o, d), d);
      const double none = mean_row_relative_mse(o, round_trip_rows<C, identity_rotation>(o, d), d);
      CHECK_MESSAGE(eo < 1.5 * eg, C::name << " d = " << d << ": " << eo << " vs " << eg);
      CHECK_MESSAGE(none > 2.0 * eg, C::name << " d = " << d << " unrotated: " << none);
    };
    with_turbo_group<2>(d, check);
    with_turbo_group<3>(d, check);
    with_turbo_group<4>(d, check);
  }
}

TEST_CASE("fixed turbo groups: Bits + 16 / G bits per value; the MSE falls with the group") {
  // turbo_fixed<B, G> is turbo<B, G>'s blocks; a smaller group spends scale bits for a lower
  // error (more norm information per value), a group of 256 saves them.
  const auto x = gaussian_rows(2000, 256, 11);
  const auto mse = [&](auto codec) {
    using C = decltype(codec);
    return relative_mse(x, round_trip_rows<C>(x, 256));
  };
  const double g32 = mse(turbo_fixed<4, 32>{}), g64 = mse(turbo_fixed<4, 64>{});
  const double g128 = mse(turbo_fixed<4, 128>{}), g256 = mse(turbo_fixed<4, 256>{});
  MESSAGE("turbo4 g32 " << g32 << ", g64 " << g64 << ", g128 " << g128 << ", g256 " << g256);
  CHECK(g32 < g64);
  CHECK(g64 < g128);
  CHECK(g128 < g256);
  CHECK(g256 < 1.03 * lloyd_max_codebook<4>::mse);
  // With the scale search (docs/codecs.md "Scale search"; measured 0.005852, 0.006921, 0.007823,
  // 0.008541; before it 0.00836, 0.00891, 0.00923, 0.00939): each within 1% of that.
  CHECK(g32 < 0.00591);
  CHECK(g64 < 0.00699);
  CHECK(g128 < 0.00790);
  CHECK(g256 < 0.00863);
  CHECK(g32 > 0.6 * lloyd_max_codebook<4>::mse);
  // At the same 4.5 bits, turbo4g32 is below q4_0r (absmax scale, uniform levels) by 20%.
  const double q4r = mse(q4_0r{});
  MESSAGE("q4_0r " << q4r);
  CHECK(g32 < 0.8 * q4r);
  CHECK(mse(turbo_fixed<5, 256>{}) < 1.03 * lloyd_max_codebook<5>::mse);
  CHECK(mse(turbo_fixed<5, 64>{}) < 0.00167);  // measured 0.001652 (before: 0.00233)
  CHECK(mse(turbo_fixed<2, 32>{}) < 1.03 * lloyd_max_codebook<2>::mse);
  CHECK(turbo_fixed<4, 32>::bits_per_value == 4.5);
  CHECK(turbo_fixed<4, 256>::bits_per_value == 4.0625);
  CHECK(turbo_fixed<5, 64>::bits_per_value == 5.25);
}

TEST_CASE("q8_0r and q4_0r: q8_0's and q4_0's blocks of rotated rows; outliers cost little") {
  // Rotation makes outlier rows Gaussian-like (docs/codecs.md "Rotations"): q4_0r's error on
  // rows with 4 channels at 20x stays within 1.5x its Gaussian error, q4_0's grows over 3x.
  const std::size_t d = 128, n = 300;
  const auto g = gaussian_rows(n, d, 12);
  const auto o = outlier_rows(n, d, 4, 20.0f, 13);
  const auto check = [&](auto twin, auto base) {
    using T = decltype(twin);
    using B = decltype(base);
    static_assert(T::rotated && !B::rotated && T::block_bytes == B::block_bytes);
    const double tg = mean_row_relative_mse(g, round_trip_rows<T>(g, d), d);
    const double to = mean_row_relative_mse(o, round_trip_rows<T>(o, d), d);
    const double bo = mean_row_relative_mse(o, round_trip_rows<B, identity_rotation>(o, d), d);
    MESSAGE(std::string(T::name) << ": Gaussian " << tg << ", outliers " << to << "; "
                                 << std::string(B::name) << " unrotated on outliers " << bo);
    CHECK(to < 1.5 * tg);
    CHECK(bo > 3.0 * to);
    // The same blocks: encoding a row with the twin gives the base's bytes.
    std::vector<unsigned char> a(d / T::block_values * T::block_bytes), b(a.size());
    reference::encode<T>(g.data(), d, a.data());
    reference::encode<B>(g.data(), d, b.data());
    CHECK(a == b);
  };
  check(q8_0r{}, q8_0{});
  check(q4_0r{}, q4_0{});
}

TEST_CASE("turbo scale search: lower MSE and K attention error than the norm's indices") {
  // docs/codecs.md "Scale search": the searched indices (with norm correction, the codec's
  // rule) against the norm indices, on Gaussian rows and on outlier keys through attention.
  const auto x = gaussian_rows(1000, 128, 21);
  const auto p = make_attention(128, 512, 32, 33);
  const auto exact = attention(p, p.k, p.v);
  const auto check = [&](auto codec, double mse_ratio) {
    using C = decltype(codec);
    using S = turbo_scale_rule;
    using I = turbo_index_rule;
    const auto norm = encode_with_rule<C, S::norm_corrected, I::norm>;
    const auto searched = encode_with_rule<C, S::norm_corrected, I::searched>;
    const double mn = relative_mse(x, round_trip_rows<C, hadamard<>>(x, 128, norm));
    const double ms = relative_mse(x, round_trip_rows<C, hadamard<>>(x, 128, searched));
    const double ms_codec = relative_mse(x, round_trip_rows<C>(x, 128));
    const auto k_error = [&](auto encode) {
      const auto k = round_trip_rows<C, hadamard<>>(p.k, 128, encode);
      return compare_attention(exact, attention(p, k, p.v), 128).rel_l2;
    };
    const double kn = k_error(norm), ks = k_error(searched);
    MESSAGE(std::string(C::name) << " G " << C::group << ": MSE " << mn << " -> " << ms << " ("
                                 << ms / mn << "), K attention rel. L2 " << kn << " -> " << ks);
    CHECK(ms_codec == (C::bits >= 3 ? ms : mn));  // the codec searches from 3 bits up
    CHECK(ms < mse_ratio * mn);
    if (C::bits >= 3) CHECK(ks < kn);
  };
  check(turbo<2, 64>{}, 0.99);
  check(turbo<3, 64>{}, 0.91);
  check(turbo<4, 32>{}, 0.70);
  check(turbo<4, 64>{}, 0.78);
  check(turbo<5, 64>{}, 0.72);
  check(turbo<6, 64>{}, 0.70);
  static_assert(turbo_index<2> == turbo_index_rule::norm);
  static_assert(turbo_index<3> == turbo_index_rule::searched);
}

TEST_CASE("turbo scale rule: norm correction lowers the attention error of compressed K") {
  // The measurement behind turbo_scale (docs/codecs.md "Norm correction"), kept as a test.
  const auto p = make_attention(128, 512, 32, 31);
  const auto exact = attention(p, p.k, p.v);
  auto k_error = [&](auto encode) {
    const auto k = round_trip_rows<turbo<3>, hadamard<>>(p.k, 128, encode);
    return compare_attention(exact, attention(p, k, p.v), 128).rel_l2;
  };
  const double plain = k_error(encode_with_rule<turbo<3>, turbo_scale_rule::plain>);
  const double corrected = k_error(encode_with_rule<turbo<3>, turbo_scale_rule::norm_corrected>);
  MESSAGE("turbo3 K: attention rel. L2 " << plain << " (plain) vs " << corrected
                                         << " (norm corrected)");
  CHECK(corrected < plain);
  static_assert(turbo_scale == turbo_scale_rule::norm_corrected);
}

namespace {
template <class C> void check_non_finite() {
  constexpr std::size_t n = C::block_values < 32 ? 32 : C::block_values;
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  auto x = gaussian_rows(1, n, 6);
  std::vector<unsigned char> blocks(n / C::block_values * C::block_bytes);
  std::vector<float> y(n), ref(n);
  auto all_finite = [&] {
    for (float v : y)
      if (!std::isfinite(v)) return false;
    return true;
  };
  // NaN is encoded as 0: the block is exactly the encoding with a 0 there.
  auto z = x;
  z[3] = 0.0f;
  x[3] = nan;
  reference::encode<C>(x.data(), n, blocks.data());
  reference::decode<C>(blocks.data(), n, y.data());
  CHECK(all_finite());
  reference::encode<C>(z.data(), n, blocks.data());
  reference::decode<C>(blocks.data(), n, ref.data());
  CHECK(y == ref);
  // +-inf saturates: finite everywhere, the inf position at the block's largest magnitude.
  x[3] = inf;
  x[5] = -inf;
  reference::encode<C>(x.data(), n, blocks.data());
  reference::decode<C>(blocks.data(), n, y.data());
  CHECK(all_finite());
  CHECK(y[3] > 1000.0f);
  CHECK(y[5] < -1000.0f);
  // Huge finite values (a group norm far beyond fp16): the scale clamps to 65504.
  for (auto& v : x) v = 1e30f;
  reference::encode<C>(x.data(), n, blocks.data());
  reference::decode<C>(blocks.data(), n, y.data());
  CHECK(all_finite());
  CHECK(y[0] > 1000.0f);
  // Tiny values: no NaN from 0/0 or 1/0.
  for (auto& v : x) v = 1e-40f;
  reference::encode<C>(x.data(), n, blocks.data());
  reference::decode<C>(blocks.data(), n, y.data());
  CHECK(all_finite());
}
}  // namespace

TEST_CASE("non-finite and huge inputs never poison other positions") {
  check_non_finite<q8_0>();
  check_non_finite<q4_0>();
  check_non_finite<turbo<2>>();
  check_non_finite<turbo<3, 32>>();
  check_non_finite<turbo<4, 16>>();
  // Element-wise codecs: NaN/inf stay where they are (IEEE conversions), neighbours untouched.
  std::vector<float> x{1.0f, std::numeric_limits<float>::quiet_NaN(), 1e30f, -2.5f};
  const auto h = round_trip_rows<f16>(x, 4);
  CHECK(h[0] == 1.0f);
  CHECK(std::isnan(h[1]));
  CHECK(std::isinf(h[2]));
  CHECK(h[3] == -2.5f);
  const auto b = round_trip_rows<bf16>(x, 4);
  CHECK(std::isnan(b[1]));
  CHECK(b[2] == bf16_to_f32(f32_to_bf16(1e30f)));
}
