// Two translation units of one program include strata/kernels/kernels.hpp (this file and
// odr_second_tu.cpp): the program links (no duplicate symbols), both see the same dispatch
// table (one definition), and both compute the same results on every target.
#include <doctest/doctest.h>

#include <cstdint>
#include <random>
#include <vector>

#include <strata/kernels/kernels.hpp>

#include "odr_second_tu.hpp"

TEST_CASE("kernels: two translation units share one dispatch table and agree") {
#if (HWY_TARGETS & (HWY_TARGETS - 1)) != 0
  CHECK(odr_second::turbo4_dot_table() ==
        static_cast<const void*>(&strata::kernels::detail::tables<strata::turbo<4>>::dot[0]));
#endif
  constexpr std::size_t dim = 128, n = 37, n_q = 3;
  std::mt19937 rng(3);
  std::normal_distribution<float> nd;
  std::vector<float> x(n * dim), q(n_q * dim), w(n);
  for (auto& v : x) v = nd(rng);
  for (auto& v : q) v = nd(rng);
  for (auto& v : w) v = nd(rng);
  for (const std::int64_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    INFO("target ", std::string(hwy::TargetName(target)));
    std::vector<unsigned char> a(n * 66), b(n * 66);
    strata::encode<strata::turbo<4>>(x.data(), x.size(), a.data());
    odr_second::encode_turbo4(x.data(), x.size(), b.data());
    CHECK(a == b);
    std::vector<float> s1(n_q * n), s2(n_q * n);
    strata::dot<strata::turbo<4>>(q.data(), n_q, dim, a.data(), 66, n, s1.data(), n);
    odr_second::dot_turbo4(q.data(), n_q, dim, a.data(), 66, n, s2.data());
    CHECK(s1 == s2);
    std::vector<unsigned char> c(n * dim / 32 * 34);
    strata::encode<strata::q8_0>(x.data(), x.size(), c.data());
    std::vector<float> o1(dim, 1.0f), o2(dim, 1.0f);
    strata::axpy<strata::q8_0>(w.data(), 1, n, c.data(), 34 * dim / 32, n, dim, o1.data());
    odr_second::axpy_q8_0(w.data(), n, c.data(), dim, o2.data());
    CHECK(o1 == o2);
  }
  hwy::SetSupportedTargetsForTest(0);
}
