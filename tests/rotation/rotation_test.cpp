// Rotations: hadamard<Seed> is orthonormal (R^T R = I) for power-of-two and other head dims,
// inverse(forward(x)) = x, its signs come from the seed, and it turns a spiky vector into
// coordinates distributed like N(0, |x|^2 / d).
#include <doctest/doctest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <random>
#include <stdexcept>
#include <type_traits>
#include <vector>

#include <strata/rotation/hadamard.hpp>
#include <strata/rotation/identity.hpp>

using namespace strata;

static_assert(std::is_empty_v<hadamard<>> && std::is_empty_v<identity_rotation>);
static_assert(turbo_group_for(128) == 128 && turbo_group_for(256) == 128);
static_assert(turbo_group_for(64) == 64 && turbo_group_for(192) == 64 &&
              turbo_group_for(576) == 64);
static_assert(turbo_group_for(96) == 32 && turbo_group_for(80) == 16 && turbo_group_for(48) == 16);
static_assert(turbo_group_for(8) == 0 && turbo_group_for(40) == 0 && turbo_group_for(0) == 0);
static_assert(hadamard<1>::sign_bits[0] != hadamard<2>::sign_bits[0]);  // constexpr, seeded

TEST_CASE("hadamard signs: seeded splitmix64, balanced") {
  int ones = 0;
  for (auto w : hadamard<>::sign_bits) ones += std::popcount(w);
  const int total = int(hadamard<>::sign_bits.size() * 64);
  CHECK(std::abs(ones - total / 2) < 4 * int(std::sqrt(total / 4.0)));  // 4 sigma
  // splitmix64's published first output for seed 0 (reference implementation by S. Vigna).
  CHECK(hadamard<0>::sign_bits[0] == 0xe220a8397b1dcdafull);
}

namespace {

template <class R> void check_orthonormal(std::size_t d) {
  // Columns of R (the images of the unit vectors) are orthonormal: R^T R = I.
  std::vector<float> m(d * d, 0.0f);
  for (std::size_t k = 0; k < d; ++k) {
    m[k * d + k] = 1.0f;
    R::forward(m.data() + k * d, d);
  }
  double worst = 0;
  for (std::size_t a = 0; a < d; ++a)
    for (std::size_t b = a; b < d; ++b) {
      double s = 0;
      for (std::size_t i = 0; i < d; ++i) s += double(m[a * d + i]) * m[b * d + i];
      worst = std::max(worst, std::fabs(s - (a == b ? 1.0 : 0.0)));
    }
  CHECK_MESSAGE(worst < 1e-5, "d = " << d << ": max |R^T R - I| = " << worst);
  // The inverse is the transpose: inverse(R e_k) = e_k.
  for (std::size_t k = 0; k < d; ++k) {
    R::inverse(m.data() + k * d, d);
    for (std::size_t i = 0; i < d; ++i)
      REQUIRE(std::fabs(m[k * d + i] - (i == k ? 1.0f : 0.0f)) < 1e-5f);
  }
}

}  // namespace

TEST_CASE("hadamard: orthonormal, inverse = transpose, for power-of-two and other dims") {
  for (std::size_t d : {1, 2, 8, 16, 64, 128, 256, 80, 96, 192, 576, 33, 1000})
    check_orthonormal<hadamard<>>(d);
  check_orthonormal<hadamard<42>>(128);
  check_orthonormal<identity_rotation>(16);
}

TEST_CASE("hadamard: inverse(forward(x)) = x and norms are kept") {
  std::mt19937 rng(3);
  std::normal_distribution<float> nd;
  for (std::size_t d : {64, 80, 96, 128, 192, 576, 4096}) {
    std::vector<float> x(d), y;
    for (auto& v : x) v = nd(rng);
    y = x;
    hadamard<>::forward(y.data(), d);
    double nx = 0, ny = 0;
    for (std::size_t i = 0; i < d; ++i) nx += double(x[i]) * x[i], ny += double(y[i]) * y[i];
    CHECK(ny == doctest::Approx(nx).epsilon(1e-5));
    CHECK(y != x);
    hadamard<>::inverse(y.data(), d);
    for (std::size_t i = 0; i < d; ++i) REQUIRE(std::fabs(y[i] - x[i]) < 1e-5f);
  }
  std::vector<float> big(4097);
  CHECK_THROWS_AS(hadamard<>::forward(big.data(), big.size()), std::invalid_argument);
}

TEST_CASE("hadamard: a non-power-of-two dim mixes every coordinate (no partial rotation)") {
  for (std::size_t d : {80, 96, 192, 576}) {
    for (std::size_t k : {std::size_t{0}, d / 2, d - 1}) {
      std::vector<float> e(d, 0.0f);
      e[k] = 1.0f;
      hadamard<>::forward(e.data(), d);
      // A unit spike reaches many outputs and no output keeps more than half its energy.
      std::size_t nonzero = 0;
      float peak = 0;
      for (float v : e) nonzero += std::fabs(v) > 1e-7f, peak = std::max(peak, std::fabs(v));
      CHECK_MESSAGE(nonzero >= std::bit_floor(d), "d = " << d << " spike at " << k);
      CHECK(peak * peak <= 0.5f);
    }
  }
}

namespace {
// Kolmogorov-Smirnov distance of samples (sorted in place) to N(0, 1).
double ks_normal(std::vector<double>& s) {
  std::sort(s.begin(), s.end());
  double worst = 0;
  const double n = double(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    const double f = 0.5 * std::erfc(-s[i] / std::sqrt(2.0));
    worst = std::max({worst, std::fabs(f - double(i) / n), std::fabs(f - double(i + 1) / n)});
  }
  return worst;
}
double kurtosis(const std::vector<double>& s) {
  double m2 = 0, m4 = 0;
  for (double v : s) m2 += v * v, m4 += v * v * v * v;
  m2 /= double(s.size());
  m4 /= double(s.size());
  return m4 / (m2 * m2);
}
}  // namespace

TEST_CASE("hadamard: rotated coordinates of spiky vectors are close to N(0, |x|^2/d)") {
  // Heavy-tailed vectors: Student-t(5) coordinates and 4 channels 4x larger (a third of the
  // energy), like real K. (When one or two coordinates hold nearly all the energy, every output
  // is a sum of that many +-terms and no fixed rotation makes it Gaussian: over random signs the
  // kurtosis of an output is 3 - 2 sum x_k^4 / |x|^4.)
  const std::size_t d = 128, n = 400;
  std::mt19937 rng(9);
  std::student_t_distribution<double> t5(5.0);
  std::vector<double> before, after;
  for (std::size_t r = 0; r < n; ++r) {
    std::vector<float> x(d);
    for (auto& v : x) v = float(t5(rng));
    x[5] *= 4.0f, x[77] *= 4.0f, x[100] *= 4.0f, x[101] *= 4.0f;
    double norm2 = 0;
    for (float v : x) norm2 += double(v) * v;
    const double sd = std::sqrt(norm2 / double(d));
    for (float v : x) before.push_back(v / sd);
    hadamard<>::forward(x.data(), d);
    for (float v : x) after.push_back(v / sd);
  }
  double mean = 0, var = 0;
  for (double v : after) mean += v, var += v * v;
  mean /= double(after.size());
  var /= double(after.size());
  const double k_before = kurtosis(before), k_after = kurtosis(after);
  const double ks_before = ks_normal(before), ks_after = ks_normal(after);
  MESSAGE("kurtosis " << k_before << " -> " << k_after << ", KS distance to N(0,1) " << ks_before
                      << " -> " << ks_after);
  CHECK(std::fabs(mean) < 0.02);
  CHECK(var == doctest::Approx(1.0).epsilon(1e-4));  // orthonormal: exactly |x|^2/d on average
  CHECK(k_before > 8.0);
  CHECK(std::fabs(k_after - 3.0) < 0.3);
  CHECK(ks_before > 0.05);
  CHECK(ks_after < 0.02);
}
