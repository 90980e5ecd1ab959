// engine::kv_recorder: rows copied from one recorded prefill give a cache the same contents as
// running the prefill into it, so the next token's logits are bit for bit the same.
#include <doctest/doctest.h>

#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "../support/data_file.hpp"
#include "error.hpp"
#include "kv/kv.hpp"
#include "kv/kv_recorder.hpp"
#include "kv/kv_select.hpp"
#include "model/model.hpp"
#include "model/thread_pool.hpp"
#include "run/cli.hpp"

namespace {

std::vector<float> next_logits(engine::model& m, engine::kv_store& kv, int pos, int32_t tok,
                               engine::thread_pool& pool) {
  std::vector<float> logits(size_t(m.config().n_vocab));
  m.forward({&tok, 1}, pos, kv, pool, logits.data(), 1);
  return logits;
}

}  // namespace

TEST_CASE("kv_recorder: copied rows equal a prefill (stories260K, f32 / f16 / bf16 caches)") {
  const std::string path = strata_test::data_file("stories260K.gguf");
  auto lm = engine::cli::load(path, false);
  engine::model& m = *lm.net;
  engine::thread_pool pool(2);
  const int n = 150, batch = 64;  // several batches, the last one partial
  std::mt19937 rng(7);
  std::uniform_int_distribution<int32_t> d(0, m.config().n_vocab - 1);
  std::vector<int32_t> toks(n);
  for (auto& t : toks) t = d(rng);
  engine::forward_options fwd;
  fwd.n_batch = batch;

  // The recording: an f16 cache does the work (as strata-bench's shared fill).
  engine::kv_options f16;
  f16.max_batch = batch;
  engine::kv_recorder rec(m.config(), engine::make_kv(m, n + 1, f16));
  m.forward(toks, 0, rec, pool, nullptr, 0, fwd);
  CHECK(rec.size() == n);
  CHECK(rec.capacity() == n + 1);
  CHECK(rec.describe() == engine::make_kv(m, n + 1, f16)->describe());

  for (const char* type : {"f32", "f16", "bf16", "f16 k-balance"}) {
    CAPTURE(type);
    engine::kv_options o;
    if (std::string(type) == "f16 k-balance")
      o.policy = type;  // the copy replays the first batch's queries: the same K scales
    else
      o.ctk = o.ctv = type;
    o.max_batch = batch;
    auto direct = engine::make_kv(m, n + 1, o);
    auto copied = engine::make_kv(m, n + 1, o);
    m.forward(toks, 0, *direct, pool, nullptr, 0, fwd);
    if (std::string(type) == "f16") {
      rec.copy_into(*copied, n, batch);
    } else {
      // The rows came from an f16 run: only the f16 cache is an exact match of its own
      // prefill; the others get the same rows encoded by their codec, so compare those with
      // a recorder around a cache of their own type.
      engine::kv_recorder own(m.config(), engine::make_kv(m, n + 1, o));
      m.forward(toks, 0, own, pool, nullptr, 0, fwd);
      own.copy_into(*copied, n, batch);
    }
    CHECK(copied->size() == n);
    const auto a = next_logits(m, *direct, n, toks.back(), pool);
    const auto b = next_logits(m, *copied, n, toks.back(), pool);
    CHECK(a == b);
  }

  // The plain f32 reference cache takes the rows too.
  engine::kv_f32 ref_direct(m.config(), n + 1), ref_copied(m.config(), n + 1);
  engine::kv_recorder own(m.config(), std::make_unique<engine::kv_f32>(m.config(), n + 1));
  m.forward(toks, 0, ref_direct, pool, nullptr, 0, fwd);
  m.forward(toks, 0, own, pool, nullptr, 0, fwd);
  own.copy_into(ref_copied, n, batch);
  CHECK(next_logits(m, ref_direct, n, 1, pool) == next_logits(m, ref_copied, n, 1, pool));

  // Fewer positions recorded than asked for: an error, not a read past the rows.
  auto other = engine::make_kv(m, 2 * n, f16);
  CHECK_THROWS_WITH_AS(rec.copy_into(*other, n + 1, batch),
                       doctest::Contains("151 positions, 150 recorded"), engine::error);
}
