// strata::plan against caches that are actually built: the rows equal runtime_kv_cache::bytes()
// for every policy, map and context tried, the side data equals side_bytes() once the K means
// and balance scales are set, and largest_context finds the exact edge of a budget.
#include <doctest/doctest.h>

#include <cstddef>
#include <random>
#include <string>
#include <vector>

#include <strata/cache/runtime_kv_cache.hpp>
#include <strata/plan.hpp>
#include <strata/policy/parse.hpp>

#include "../support/test_layer.hpp"
#include "attention_reference.hpp"

using namespace strata;
using strata_test::gaussian;
using strata_test::test_layer;

namespace {

// A hybrid map: a sliding layer (window 4), a global one, a layer sharing the first's cache, a
// global layer with another head dim.
layer_map hybrid_map() {
  return layer_map(
      {test_layer(2, 64, true), test_layer(2, 64), test_layer(2, 64, true, 0), test_layer(1, 128)});
}

const char* const kPolicies[] = {"f16",
                                 "k=q8_0;v=turbo4",
                                 "la7",
                                 "turbo3",
                                 "k=q4_0;v=vq2;recent=8",
                                 "turbo4;k-balance",
                                 "v:first1=q8_0;v=turbo2;k=bf16"};

}  // namespace

TEST_CASE("plan: the rows equal the bytes of the cache built with the same options") {
  for (const layer_map& map : {layer_map::dense(3, 2, 64, 4), hybrid_map()})
    for (const char* policy : kPolicies)
      for (std::size_t n_ctx : {1, 7, 64, 1000})
        for (std::size_t max_batch : {0, 16}) {
          INFO("policy ", policy, ", n_ctx ", n_ctx, ", max_batch ", max_batch);
          const runtime_kv_cache c(map, parse_policy(policy),
                                   {.n_ctx = n_ctx, .max_batch = max_batch});
          const kv_plan p = plan(c.policy(), n_ctx, {.max_batch = max_batch});
          CHECK(p.kv == c.bytes());
          CHECK(plan(c.policy(), n_ctx, {.max_batch = max_batch, .n_seq = 3}).kv == 3 * c.bytes());
        }
}

TEST_CASE("plan: side data equals the cache's K means and balance scales once they are set") {
  const layer_map map = layer_map::dense(2, 2, 64, 4);
  const std::size_t n = 200, kv = 2 * 64, q_row = 4 * 64;
  const auto k = gaussian(n * kv, 1), v = gaussian(n * kv, 2), q = gaussian(n * q_row, 3);
  for (const char* policy : {"turbo4", "turbo4;k-balance"})
    for (bool k_mean : {false, true}) {
      INFO("policy ", policy, ", K mean ", k_mean);
      runtime_kv_cache c(map, parse_policy(policy), {.n_ctx = 256, .subtract_k_mean = k_mean});
      for (std::size_t layer = 0; layer < 2; ++layer) {
        c.balance_k(layer, q.data(), n, k.data(), n);
        c.append(layer, 0, k.data(), v.data(), n);
      }
      const kv_plan p = plan(c.policy(), 256, {.subtract_k_mean = k_mean});
      CHECK(p.side == c.side_bytes());
      CHECK((p.side > 0) == (k_mean || std::string(policy).find("k-balance") != std::string::npos));
    }
}

TEST_CASE("plan: the f16 column of the Phase-1 report (40 layers, 8 KV heads, head dim 128)") {
  const policy_report r = report(parse_policy("f16"), layer_map::dense(40, 8, 128, 32));
  constexpr std::size_t MiB = 1 << 20;
  CHECK(plan(r, 2048).kv == 320 * MiB);
  CHECK(plan(r, 8192).kv == 1280 * MiB);
  CHECK(plan(r, 32768).kv == 5120 * MiB);
  CHECK(plan(r, 65536).kv == 10240 * MiB);
}

TEST_CASE("largest_context: the exact edge of a budget, per sequence, and nothing when too small") {
  for (const char* policy : kPolicies) {
    INFO("policy ", policy);
    const policy_report r = report(parse_policy(policy), layer_map::dense(4, 2, 64, 8));
    for (const plan_options o : {plan_options{}, plan_options{.n_seq = 3, .n_threads = 2}})
      for (std::size_t n_ctx : {1, 100, 4097}) {
        // The edge: the largest context whose plan fits. Rows in key tiles (turbo4) take 32
        // slots at a time, so a budget that fits n_ctx may fit up to 31 tokens more.
        const std::size_t budget = plan(r, n_ctx, o).total();
        const std::size_t n = largest_context(r, budget, o);
        CHECK(n >= n_ctx);
        CHECK(n < n_ctx + tile_rows);
        CHECK(plan(r, n, o).total() <= budget);
        CHECK(plan(r, n + 1, o).total() > budget);
        const std::size_t below = largest_context(r, budget - 1, o);
        CHECK(below < n_ctx);
        if (below > 0) CHECK(plan(r, below, o).total() <= budget - 1);
        CHECK(plan(r, below + 1, o).total() > budget - 1);
        if (plan(r, n_ctx + 1, o).total() > plan(r, n_ctx, o).total()) {
          CHECK(n == n_ctx);  // every token adds bytes here
          CHECK(below == n_ctx - 1);
        }
      }
    CHECK(largest_context(r, plan(r, 1).total() - 1) == 0);
    CHECK(largest_context(r, ~std::size_t(0) / 4, {}, 5000) == 5000);  // the limit
  }
  // A map of sliding layers only stops growing at the window: any context fits then.
  const policy_report sliding = report(parse_policy("q8_0"), layer_map({test_layer(2, 64, true)}));
  CHECK(largest_context(sliding, plan(sliding, 1000, {.max_batch = 8}).total(), {.max_batch = 8},
                        1 << 20) == 1 << 20);
}

TEST_CASE("plan: scratch per thread, lines name each part") {
  const policy_report r = report(parse_policy("la7"), layer_map::dense(4, 2, 64, 8));
  const kv_plan one = plan(r, 512, {.n_threads = 1}), four = plan(r, 512, {.n_threads = 4});
  CHECK(one.scratch > 0);
  CHECK(four.scratch == 4 * one.scratch);
  CHECK(four.kv == one.kv);
  const auto lines = four.lines();
  REQUIRE(lines.size() == 3);
  CHECK(lines[0].bytes + lines[1].bytes + lines[2].bytes == four.total());
  CHECK(lines[2].what.find("4 threads") != std::string::npos);
}
