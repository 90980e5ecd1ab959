// engine::thread_pool: coverage of [0, n) exactly once, exceptions, nesting, reuse.
#include <doctest/doctest.h>

#include <atomic>
#include <stdexcept>
#include <vector>

#include "model/thread_pool.hpp"

TEST_CASE("parallel_for covers every index exactly once") {
  for (int threads : {1, 2, 3, 8}) {
    engine::thread_pool pool(threads);
    CHECK(pool.size() == threads);
    for (int64_t n : {0, 1, 2, 5, 31, 1000, 100003}) {
      std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
      pool.parallel_for(n, [&](int64_t b, int64_t e) {
        REQUIRE(b < e);
        for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)].fetch_add(1);
      });
      int bad = 0;
      for (auto& h : hits) bad += h.load() != 1;
      CHECK(bad == 0);
    }
  }
}

TEST_CASE("many small back-to-back jobs (the decode pattern)") {
  engine::thread_pool pool(4);
  std::atomic<int64_t> sum{0};
  for (int rep = 0; rep < 2000; ++rep)
    pool.parallel_for(7, [&](int64_t b, int64_t e) { sum.fetch_add(e - b); });
  CHECK(sum.load() == 2000 * 7);
}

TEST_CASE("exceptions propagate; the pool stays usable") {
  engine::thread_pool pool(3);
  CHECK_THROWS_AS(pool.parallel_for(100,
                                    [](int64_t b, int64_t) {
                                      if (b == 0) throw std::runtime_error("boom");
                                    }),
                  std::runtime_error);
  std::atomic<int> count{0};
  pool.parallel_for(10, [&](int64_t b, int64_t e) { count.fetch_add(static_cast<int>(e - b)); });
  CHECK(count.load() == 10);
}

TEST_CASE("nested parallel_for runs inline") {
  engine::thread_pool pool(2);
  std::atomic<int> count{0};
  pool.parallel_for(4, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i)
      pool.parallel_for(
          3, [&](int64_t b2, int64_t e2) { count.fetch_add(static_cast<int>(e2 - b2)); });
  });
  CHECK(count.load() == 12);
}

TEST_CASE("default size is the hardware concurrency") {
  engine::thread_pool pool(0);
  CHECK(pool.size() >= 1);
}

TEST_CASE("jobs of alternating sizes: a late thread never takes a chunk of the next job") {
  // A job of 5 chunks then one of 8: a worker that read the first job's exhausted ticket must
  // not claim chunk 5 with the second job's parameters (that ran a chunk twice and left the
  // caller waiting forever for a count it had passed). Every index of every job exactly once.
  engine::thread_pool pool(3);
  std::vector<std::atomic<int>> hits(12);
  int bad = 0;
  for (int rep = 0; rep < 100000 && bad == 0; ++rep) {
    const int64_t n = rep % 2 ? 12 : 5;
    for (int64_t i = 0; i < n; ++i) hits[size_t(i)].store(0, std::memory_order_relaxed);
    pool.parallel_for(n, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) hits[size_t(i)].fetch_add(1);
    });
    for (int64_t i = 0; i < n; ++i) bad += hits[size_t(i)].load() != 1;
  }
  CHECK(bad == 0);
}
