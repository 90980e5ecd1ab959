// vq2 and its D8 codebook (strata/codec/d8_codebook.hpp): the table's stated properties, the
// encoder's exactness against a brute-force search of all 65,536 codewords, and the quality
// claim against turbo2 at the same 2.125 bits per value (docs/codecs.md).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <set>
#include <vector>

#include <strata/codec/d8_codebook.hpp>
#include <strata/reference/reference.hpp>
#include <strata/rotation/hadamard.hpp>

using namespace strata;

namespace {

std::array<std::int8_t, 8> point(std::uint16_t code) {
  std::array<std::int8_t, 8> k{};
  d8::decode_chunk(code, k.data());
  return k;
}

double dist2(const float* v, const std::array<std::int8_t, 8>& k) {
  double s = 0;
  for (int i = 0; i < 8; ++i)
    s += (double(v[i]) - k[std::size_t(i)] / 2.0) * (double(v[i]) - k[std::size_t(i)] / 2.0);
  return s;
}

}  // namespace

TEST_CASE("d8 codebook: 512 patterns by norm, then lexicographic; sorted index consistent") {
  const auto& b = d8::book;
  std::set<unsigned> seen;
  for (int p = 0; p < d8::patterns; ++p) {
    seen.insert(b.tuple[std::size_t(p)]);
    if (p > 0) {
      const bool ordered = b.norm2[std::size_t(p - 1)] < b.norm2[std::size_t(p)] ||
                           (b.norm2[std::size_t(p - 1)] == b.norm2[std::size_t(p)] &&
                            b.tuple[std::size_t(p - 1)] < b.tuple[std::size_t(p)]);
      CHECK(ordered);
    }
  }
  CHECK(seen.size() == 512);
  // Every tuple of norm <= 48 is present (451 of them); none beyond 56.
  int small = 0;
  for (unsigned t = 0; t < 65536u; ++t) {
    int n2 = 0;
    for (int i = 0; i < 8; ++i) n2 += (2 * d8::digit(t, i) + 1) * (2 * d8::digit(t, i) + 1);
    if (n2 <= 48) {
      ++small;
      CHECK(seen.count(t) == 1);
    }
    if (n2 > 56) CHECK(seen.count(t) == 0);
  }
  CHECK(small == 451);
  for (int k = 1; k < d8::patterns; ++k)
    CHECK(b.sorted_tuple[std::size_t(k - 1)] < b.sorted_tuple[std::size_t(k)]);
  for (int k = 0; k < d8::patterns; ++k)
    CHECK(b.tuple[b.sorted_pattern[std::size_t(k)]] == b.sorted_tuple[std::size_t(k)]);
}

TEST_CASE("d8 codebook: the 65,536 codes are distinct points of D8 + 1/2 within the ball") {
  std::set<std::array<std::int8_t, 8>> points;
  for (unsigned c = 0; c < 65536u; ++c) {
    const auto k = point(std::uint16_t(c));
    int sum = 0, n2 = 0;
    for (auto x : k) {
      CHECK((x & 1) != 0);  // odd half-units: coordinates in Z + 1/2
      sum += x;
      n2 += x * x;
    }
    CHECK(sum % 4 == 0);  // sum of the coordinates (sum / 2) even: in the lattice
    CHECK(n2 <= 56);
    points.insert(k);
  }
  CHECK(points.size() == 65536);
}

TEST_CASE("d8 encode_chunk: the nearest codeword (brute force), codewords map to themselves") {
  // All codewords, once, for the brute-force search.
  std::vector<std::array<std::int8_t, 8>> all(65536);
  for (unsigned c = 0; c < 65536u; ++c) all[c] = point(std::uint16_t(c));
  std::mt19937 rng(3);
  std::normal_distribution<float> nd;
  int exact = 0, n = 0;
  for (float sigma : {0.3f, 1.125f, 2.0f}) {  // inside the ball, typical, mostly outside
    for (int r = 0; r < 400; ++r) {
      float v[8];
      for (float& x : v) x = nd(rng) * sigma;
      const auto got = point(d8::encode_chunk(v));
      double best = std::numeric_limits<double>::max();
      for (const auto& k : all) best = std::min(best, dist2(v, k));
      const double d = dist2(v, got);
      // Exact in the metric of |v| rounded to 1/256: within that rounding of the true minimum.
      CHECK(d <= best + 0.02);
      exact += d <= best + 1e-9;
      ++n;
    }
  }
  MESSAGE("encode_chunk: " << exact << " of " << n << " at the exact float minimum");
  CHECK(exact >= n * 95 / 100);
  for (unsigned c = 0; c < 65536u; c += 7) {
    const auto k = point(std::uint16_t(c));
    float v[8];
    for (int i = 0; i < 8; ++i) v[i] = k[std::size_t(i)] / 2.0f;
    CHECK(d8::encode_chunk(v) == c);
  }
}

TEST_CASE("vq2: zero, NaN and inf inputs; the scale keeps the group's norm") {
  std::vector<float> x(128, 0.0f);
  vq2<128>::block b;
  reference::encode<vq2<128>>(x.data(), 128, &b);
  std::vector<float> y(128, 1.0f);
  reference::decode<vq2<128>>(&b, 128, y.data());
  for (float v : y) CHECK(v == 0.0f);
  std::mt19937 rng(9);
  std::normal_distribution<float> nd;
  for (auto& v : x) v = nd(rng);
  double n0 = 0;
  for (float v : x) n0 += double(v) * v;
  reference::encode<vq2<128>>(x.data(), 128, &b);
  reference::decode<vq2<128>>(&b, 128, y.data());
  double n1 = 0;
  for (float v : y) n1 += double(v) * v;
  CHECK(std::sqrt(n1) == doctest::Approx(std::sqrt(n0)).epsilon(1e-3));  // fp16 scale
  x[3] = std::numeric_limits<float>::quiet_NaN();
  x[9] = std::numeric_limits<float>::infinity();
  reference::encode<vq2<128>>(x.data(), 128, &b);
  reference::decode<vq2<128>>(&b, 128, y.data());
  for (float v : y) CHECK(std::isfinite(v));
}

TEST_CASE("vq2 vs turbo2 at 2.125 bits: rotated Gaussian rows, mean cosine") {
  constexpr std::size_t d = 128, rows = 4000;
  std::mt19937 rng(17);
  std::normal_distribution<float> nd;
  std::vector<float> x(rows * d);
  for (auto& v : x) v = nd(rng);
  const auto mean_cos = [&](auto codec) {
    using C = decltype(codec);
    std::vector<typename C::block> b(rows * d / C::block_values);
    std::vector<float> y(rows * d);
    reference::encode<C>(x.data(), x.size(), b.data());
    reference::decode<C>(b.data(), x.size(), y.data());
    double s = 0;
    for (std::size_t r = 0; r < rows; ++r) {
      double xy = 0, xx = 0, yy = 0;
      for (std::size_t c = 0; c < d; ++c) {
        xy += double(x[r * d + c]) * y[r * d + c];
        xx += double(x[r * d + c]) * x[r * d + c];
        yy += double(y[r * d + c]) * y[r * d + c];
      }
      s += xy / std::sqrt(xx * yy);
    }
    return s / rows;
  };
  const double v = mean_cos(vq2<128>{}), t = mean_cos(turbo<2>{});
  MESSAGE("mean cosine: vq2 " << v << ", turbo2 " << t << "; MSE ratio "
                              << (1 - v * v) / (1 - t * t));
  CHECK(vq2<128>::bits_per_value == turbo<2>::bits_per_value);
  CHECK(v > 0.95);
  CHECK(v > t + 0.01);
}
