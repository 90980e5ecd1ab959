// Sampling: greedy, seeds, top-k / top-p truncation, temperature.
#include <doctest/doctest.h>

#include <cmath>
#include <map>
#include <vector>

#include "error.hpp"
#include "run/sampler.hpp"

TEST_CASE("temperature 0 is argmax") {
  const std::vector<float> l = {0.1f, 3.0f, -1.0f, 2.9f};
  engine::sampler s({0.0f, 40, 0.95f, 7});
  for (int i = 0; i < 10; ++i) CHECK(s.sample(l.data(), 4) == 1);
  CHECK(engine::argmax(l.data(), 4) == 1);
}

TEST_CASE("the same seed gives the same tokens, another seed other tokens") {
  std::vector<float> l(100);
  for (int i = 0; i < 100; ++i) l[size_t(i)] = std::sin(float(i));
  auto run = [&](uint64_t seed) {
    engine::sampler s({1.0f, 0, 1.0f, seed});
    std::vector<int32_t> out;
    for (int i = 0; i < 50; ++i) out.push_back(s.sample(l.data(), 100));
    return out;
  };
  CHECK(run(3) == run(3));
  CHECK(run(3) != run(4));
}

TEST_CASE("top-k 1 and a tiny top-p are greedy") {
  const std::vector<float> l = {0.5f, 0.4f, 2.0f, 1.9f, 1.8f};
  engine::sampler k1({5.0f, 1, 1.0f, 1});
  engine::sampler p0({5.0f, 0, 1e-4f, 1});
  for (int i = 0; i < 50; ++i) {
    CHECK(k1.sample(l.data(), 5) == 2);
    CHECK(p0.sample(l.data(), 5) == 2);
  }
}

TEST_CASE("top-k keeps only the k largest; frequencies follow softmax(l / T)") {
  const std::vector<float> l = {1.0f, 0.0f, 2.0f, -5.0f};
  engine::sampler s({2.0f, 3, 1.0f, 11});
  std::map<int32_t, int> n;
  const int N = 40000;
  for (int i = 0; i < N; ++i) ++n[s.sample(l.data(), 4)];
  CHECK(n[3] == 0);
  const double z = std::exp(0.5) + std::exp(0.0) + std::exp(1.0);
  CHECK(n[2] / double(N) == doctest::Approx(std::exp(1.0) / z).epsilon(0.03));
  CHECK(n[0] / double(N) == doctest::Approx(std::exp(0.5) / z).epsilon(0.03));
  CHECK(n[1] / double(N) == doctest::Approx(1.0 / z).epsilon(0.05));
}

TEST_CASE("top-p keeps the smallest set reaching p") {
  // Probabilities at T=1 ~ 0.665, 0.245, 0.090: p = 0.8 keeps the first two.
  const std::vector<float> l = {2.0f, 1.0f, 0.0f};
  engine::sampler s({1.0f, 0, 0.8f, 5});
  std::map<int32_t, int> n;
  for (int i = 0; i < 5000; ++i) ++n[s.sample(l.data(), 3)];
  CHECK(n[2] == 0);
  CHECK(n[1] > 0);
  CHECK_THROWS_AS(engine::sampler({1.0f, 0, 0.0f, 5}), engine::error);
}
