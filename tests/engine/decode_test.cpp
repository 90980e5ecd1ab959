// model::decode (several sequences in one step) against model::forward of each sequence alone:
// with SmolLM2 and caches of different lengths and policies, every item's logits are
// bit-identical to forward()'s for 1..8 items (the matmuls are batch-invariant), greedy
// generation of 4 interleaved sequences equals 4 sequential runs, and bad items are refused
// before any cache changes.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "error.hpp"
#include "kv/kv_strata.hpp"
#include "model/model.hpp"
#include "model/thread_pool.hpp"
#include "run/cli.hpp"

namespace {

std::string smollm2_path() {
  return std::string(STRATA_CACHE_DIR) + "/models/SmolLM2-135M-Instruct.Q4_1.gguf";
}

// Item i's prompt: 3 + 5 i tokens of a fixed text, so the caches have different lengths.
std::vector<int32_t> prompt(const engine::tokenizer& tok, int i) {
  static const std::string text =
      "The quick brown fox jumps over the lazy dog while the cat sleeps on a warm windowsill, "
      "dreaming of fish, birds and the long summer afternoons of its youth in the old town.";
  auto t = tok.encode(text, true, false);
  t.resize(std::min(t.size(), size_t(3 + 5 * i)));
  return t;
}

// Item i's cache policy: f16 for even items, q8_0 keys and turbo3 values for odd ones.
std::string policy(int i) { return i % 2 == 0 ? "-ctk f16 -ctv f16" : "-ctk q8_0 -ctv turbo3"; }

int32_t argmax(const std::vector<float>& v) {
  return int32_t(std::max_element(v.begin(), v.end()) - v.begin());
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

constexpr int kCtx = 128;

}  // namespace

TEST_CASE("decode: each item's logits are bit-identical to forward() alone, 1..8 items") {
  if (!std::filesystem::exists(smollm2_path())) {
    MESSAGE("skipped: " << smollm2_path() << " not found");
    return;
  }
  auto lm = engine::cli::load(smollm2_path(), true);
  engine::model& m = *lm.net;
  const size_t V = size_t(m.config().n_vocab);
  engine::thread_pool pool(2);
  constexpr int kItems = 8;
  // Per item: the cache decode() runs on, the cache forward() runs on, the next token.
  std::vector<std::unique_ptr<engine::kv_store>> batched, alone;
  std::vector<int32_t> next(kItems);
  std::vector<float> logits(V);
  for (int i = 0; i < kItems; ++i) {
    batched.push_back(std::make_unique<engine::kv_strata>(m, kCtx, policy(i), 64));
    alone.push_back(std::make_unique<engine::kv_strata>(m, kCtx, policy(i), 64));
    const auto p = prompt(*lm.tok, i);
    m.forward(p, 0, *batched.back(), pool, logits.data(), 1);
    m.forward(p, 0, *alone.back(), pool, logits.data(), 1);
    next[size_t(i)] = argmax(logits);
  }
  // Step n decodes items 0..n-1 together (so every item takes part in steps of several sizes).
  std::vector<std::vector<float>> out(kItems, std::vector<float>(V));
  for (int n = 1; n <= kItems; ++n) {
    std::vector<engine::decode_item> items;
    for (int i = 0; i < n; ++i)
      items.push_back({next[size_t(i)], batched[size_t(i)]->size(), batched[size_t(i)].get(),
                       out[size_t(i)].data()});
    m.decode(items, pool);
    for (int i = 0; i < n; ++i) {
      INFO("step with " << n << " items, item " << i << " (" << policy(i) << ")");
      engine::kv_store& kv = *alone[size_t(i)];
      m.forward({&next[size_t(i)], 1}, kv.size(), kv, pool, logits.data(), 1);
      CHECK(same_bits(out[size_t(i)], logits));
      CHECK(batched[size_t(i)]->size() == kv.size());
      next[size_t(i)] = argmax(logits);
    }
  }
}

TEST_CASE("decode: greedy generation of 4 interleaved sequences equals 4 sequential runs") {
  if (!std::filesystem::exists(smollm2_path())) {
    MESSAGE("skipped: " << smollm2_path() << " not found");
    return;
  }
  auto lm = engine::cli::load(smollm2_path(), true);
  engine::model& m = *lm.net;
  const size_t V = size_t(m.config().n_vocab);
  engine::thread_pool pool(2);
  constexpr int kSeqs = 4, kSteps = 12;
  std::vector<float> logits(V);
  // One at a time: prefill, then kSteps greedy tokens through forward().
  std::vector<std::vector<int32_t>> sequential(kSeqs);
  for (int i = 0; i < kSeqs; ++i) {
    engine::kv_strata kv(m, kCtx, policy(i), 64);
    const auto p = prompt(*lm.tok, 2 * i + 1);
    m.forward(p, 0, kv, pool, logits.data(), 1);
    for (int s = 0; s < kSteps; ++s) {
      const int32_t t = argmax(logits);
      sequential[size_t(i)].push_back(t);
      m.forward({&t, 1}, kv.size(), kv, pool, logits.data(), 1);
    }
  }
  // Interleaved: prefill all, then one decode() step for all four per token.
  std::vector<std::unique_ptr<engine::kv_store>> kv;
  std::vector<std::vector<float>> out(kSeqs, std::vector<float>(V));
  std::vector<std::vector<int32_t>> interleaved(kSeqs);
  for (int i = 0; i < kSeqs; ++i) {
    kv.push_back(std::make_unique<engine::kv_strata>(m, kCtx, policy(i), 64));
    m.forward(prompt(*lm.tok, 2 * i + 1), 0, *kv.back(), pool, out[size_t(i)].data(), 1);
  }
  for (int s = 0; s < kSteps; ++s) {
    std::vector<engine::decode_item> items;
    for (int i = 0; i < kSeqs; ++i) {
      const int32_t t = argmax(out[size_t(i)]);
      interleaved[size_t(i)].push_back(t);
      items.push_back({t, kv[size_t(i)]->size(), kv[size_t(i)].get(), out[size_t(i)].data()});
    }
    m.decode(items, pool);
  }
  for (int i = 0; i < kSeqs; ++i) {
    INFO("sequence " << i << " (" << policy(i) << ")");
    CHECK(interleaved[size_t(i)] == sequential[size_t(i)]);
  }
}

TEST_CASE("decode: bad items are refused before any cache changes") {
  const std::string path = std::string(STRATA_DATA_DIR) + "/stories260K.gguf";
  if (!std::filesystem::exists(path)) {
    MESSAGE("skipped: " << path << " not found");
    return;
  }
  auto lm = engine::cli::load(path, false);
  engine::model& m = *lm.net;
  engine::thread_pool pool(1);
  engine::kv_f32 a(m.config(), 4), b(m.config(), 4);
  std::vector<float> la(size_t(m.config().n_vocab)), lb(la.size());
  const int32_t t[3] = {1, 2, 3};
  m.forward(t, 0, a, pool, la.data(), 1);
  m.forward({t, 1}, 0, b, pool, lb.data(), 1);
  auto refused = [&](std::vector<engine::decode_item> items, const std::string& what) {
    INFO(what);
    CHECK_THROWS_WITH_AS(m.decode(items, pool), doctest::Contains(what.c_str()), engine::error);
    CHECK(a.size() == 3);
    CHECK(b.size() == 1);
  };
  refused({{5, 1, &b, lb.data()}, {5, 3, &a, la.data()}, {5, 1, &b, lb.data()}},
          "items 0 and 2 share a cache");
  refused({{5, 1, &b, lb.data()}, {5, 4, &a, la.data()}}, "position 4 is past the cache's 3");
  refused({{5, 1, &b, lb.data()}, {-1, 3, &a, la.data()}}, "token id -1 outside");
  refused({{5, 1, &b, lb.data()}, {5, 3, nullptr, la.data()}}, "no cache (model::decode, item 1)");
  // A full cache: position 4 of a 4-token cache.
  m.forward({t, 1}, 3, a, pool, la.data(), 1);
  CHECK_THROWS_WITH_AS(m.decode({{{5, 4, &a, la.data()}}}, pool),
                       doctest::Contains("context overflow"), engine::error);
  // An empty step does nothing; an item at pos < size() replaces what followed, as forward.
  m.decode({}, pool);
  m.decode({{{7, 1, &a, la.data()}, {9, 1, &b, nullptr}}}, pool);
  CHECK(a.size() == 2);
  CHECK(b.size() == 2);
}
