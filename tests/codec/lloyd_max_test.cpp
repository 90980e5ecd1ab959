// The Lloyd-Max tables satisfy their defining conditions for N(0, 1): each threshold is the
// midpoint of its neighbours, each centroid is the conditional mean of its cell, and the MSE
// matches both the stored value and the published one (../shared/README.md).
#include <doctest/doctest.h>

#include <cmath>
#include <cstddef>
#include <limits>

#include <strata/codec/lloyd_max.hpp>

using namespace strata;

namespace {

double upper(double x) {  // P(X > x)
  if (x == std::numeric_limits<double>::infinity()) return 0.0;
  if (x == -std::numeric_limits<double>::infinity()) return 1.0;
  return 0.5 * std::erfc(x / std::sqrt(2.0));
}
double mass(double a, double b) {
  if (a >= 0) return upper(a) - upper(b);
  if (b <= 0) return upper(-b) - upper(-a);
  return 1.0 - upper(b) - upper(-a);
}
double pdf(double x) {
  return std::isinf(x) ? 0.0 : std::exp(-0.5 * x * x) / std::sqrt(2.0 * 3.14159265358979323846);
}

// Exact MSE of a quantizer with centroids c and midpoint thresholds, for N(0, 1):
// sum over cells of E[(X - c)^2; cell] = m2 - 2 c m1 + c^2 m0 with the partial moments
// m0 = P, m1 = phi(a) - phi(b), m2 = P + a phi(a) - b phi(b).
template <std::size_t N> double quantizer_mse(const std::array<double, N>& c) {
  const double inf = std::numeric_limits<double>::infinity();
  double mse = 0.0;
  for (std::size_t i = 0; i < N; ++i) {
    const double a = i == 0 ? -inf : 0.5 * (c[i - 1] + c[i]);
    const double b = i + 1 == N ? inf : 0.5 * (c[i] + c[i + 1]);
    const double m0 = mass(a, b), m1 = pdf(a) - pdf(b);
    const double m2 = m0 + (std::isinf(a) ? 0.0 : a * pdf(a)) - (std::isinf(b) ? 0.0 : b * pdf(b));
    mse += m2 - 2.0 * c[i] * m1 + c[i] * c[i] * m0;
  }
  return mse;
}

template <int B> void check_lloyd_max(double published_mse) {
  using cb = lloyd_max_codebook<B>;
  const auto& c = cb::exact;
  const double inf = std::numeric_limits<double>::infinity();
  for (std::size_t i = 0; i < cb::size; ++i) {
    if (i > 0) CHECK(c[i - 1] < c[i]);
    CHECK(c[i] == doctest::Approx(-c[cb::size - 1 - i]).epsilon(1e-15));
    const double a = i == 0 ? -inf : 0.5 * (c[i - 1] + c[i]);
    const double b = i + 1 == cb::size ? inf : 0.5 * (c[i] + c[i + 1]);
    const double mean = (pdf(a) - pdf(b)) / mass(a, b);
    CHECK(std::fabs(mean - c[i]) < 1e-12);
  }
  for (std::size_t i = 0; i + 1 < cb::size; ++i) {
    CHECK(cb::thresholds[i] == 0.5f * (cb::centroids[i] + cb::centroids[i + 1]));
    CHECK(double(cb::centroids[i]) == doctest::Approx(c[i]).epsilon(1e-7));
  }
  const double mse = quantizer_mse(c);
  CHECK(std::fabs(mse - cb::mse) < 1e-12);
  // The published value, to its printed precision (4 significant digits).
  CHECK(std::fabs(mse - published_mse) < 5e-4 * published_mse);
  // Lloyd-Max beats a perturbed table (a local optimum, not just a fixed point).
  auto worse = c;
  worse[cb::size - 1] *= 1.01;
  worse[0] *= 1.01;
  CHECK(quantizer_mse(worse) > mse);
}

}  // namespace

TEST_CASE("Lloyd-Max N(0,1) tables: midpoints, conditional means, MSE") {
  check_lloyd_max<1>(0.3634);
  check_lloyd_max<2>(0.1175);
  check_lloyd_max<3>(0.03455);
  check_lloyd_max<4>(0.009501);
  check_lloyd_max<5>(0.002505);
  check_lloyd_max<6>(0.0006442);  // tools/lloyd_max.py's value (no published 6-bit table here)
  // Published positive centroids.
  CHECK(lloyd_max_codebook<2>::exact[3] == doctest::Approx(1.5104).epsilon(1e-4));
  CHECK(lloyd_max_codebook<3>::exact[4] == doctest::Approx(0.2451).epsilon(1e-3));
  CHECK(lloyd_max_codebook<4>::exact[15] == doctest::Approx(2.7326).epsilon(1e-4));
  // Lloyd-Max / Shannon ratios 1.45, 1.88, 2.21, 2.43, 2.56.
  CHECK(lloyd_max_codebook<1>::mse / shannon_mse(1) == doctest::Approx(1.45).epsilon(0.01));
  CHECK(lloyd_max_codebook<3>::mse / shannon_mse(3) == doctest::Approx(2.21).epsilon(0.01));
  CHECK(lloyd_max_codebook<5>::mse / shannon_mse(5) == doctest::Approx(2.56).epsilon(0.01));
  // 6 bits: the ratio keeps rising towards the high-rate (Panter-Dite) limit sqrt(3) pi / 2
  // = 2.72 without reaching it (2.64).
  const double r6 = lloyd_max_codebook<6>::mse / shannon_mse(6);
  CHECK(r6 > lloyd_max_codebook<5>::mse / shannon_mse(5));
  CHECK(r6 < std::sqrt(3.0) * 3.14159265358979323846 / 2.0);
  CHECK(r6 == doctest::Approx(2.64).epsilon(0.01));
}

TEST_CASE("fork codebook: rescaled to N(0,1); its 4-bit table is worse than Lloyd-Max") {
  CHECK(fork_codebook<4>::exact[15] == doctest::Approx(0.173926 * std::sqrt(128.0)));
  CHECK(fork_codebook<2>::exact[0] == doctest::Approx(-0.133462 * std::sqrt(128.0)));
  const double f2 = quantizer_mse(fork_codebook<2>::exact);
  const double f4 = quantizer_mse(fork_codebook<4>::exact);
  CHECK(f2 < 1.03 * lloyd_max_codebook<2>::mse);  // within a few % at 2 bits
  CHECK(f2 > lloyd_max_codebook<2>::mse);
  CHECK(f4 > 1.5 * lloyd_max_codebook<4>::mse);  // the fork's compressed 4-bit table
  MESSAGE("fork codebook MSE: 2 bits "
          << f2 << ", 3 bits " << quantizer_mse(fork_codebook<3>::exact) << ", 4 bits " << f4);
}
