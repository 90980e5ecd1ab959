// Thread safety of strata::runtime_kv_cache, as its header documents it: append on different
// layers may run concurrently; attend calls (any layers, any KV-head ranges) may run
// concurrently. The concurrent run must give bit-identical outputs to a sequential one. Run it
// under ThreadSanitizer with .ci/tsan.sh.
#include <doctest/doctest.h>

#include <cstddef>
#include <random>
#include <thread>
#include <vector>

#include <strata/cache/runtime_kv_cache.hpp>
#include <strata/policy/parse.hpp>

namespace {

constexpr std::size_t n_layers = 6, n_kv = 2, n_heads = 4, dim = 64, n_tok = 96;

struct inputs {
  std::vector<std::vector<float>> k, v, q;  // per layer: [n_tok][heads][dim]
};

inputs make_inputs() {
  std::mt19937 rng(7);
  std::normal_distribution<float> g;
  inputs in;
  for (std::size_t l = 0; l < n_layers; ++l) {
    std::vector<float> k(n_tok * n_kv * dim), v(k.size()), q(n_tok * n_heads * dim);
    for (auto& x : k) x = g(rng);
    for (auto& x : v) x = g(rng);
    for (auto& x : q) x = g(rng);
    in.k.push_back(std::move(k));
    in.v.push_back(std::move(v));
    in.q.push_back(std::move(q));
  }
  return in;
}

strata::runtime_kv_cache make_cache(const char* policy) {
  return strata::runtime_kv_cache(strata::layer_map::dense(n_layers, n_kv, dim, n_heads),
                                  strata::parse_policy(policy), {.n_ctx = 256});
}

// out[l]: attention of layer l's queries, computed per KV head (one call per head range).
std::vector<std::vector<float>> attend_all(strata::runtime_kv_cache& kv, const inputs& in,
                                           bool threaded) {
  std::vector<std::vector<float>> out(n_layers, std::vector<float>(n_tok * n_heads * dim));
  auto job = [&](std::size_t l, std::uint32_t head) {
    strata::attention_params p;
    p.scale = 0.125f;
    p.kv_head_begin = head;
    p.kv_head_end = head + 1;
    kv.attend(l, in.q[l].data(), n_tok, 0, out[l].data(), p);
  };
  if (!threaded) {
    for (std::size_t l = 0; l < n_layers; ++l)
      for (std::uint32_t h = 0; h < n_kv; ++h) job(l, h);
    return out;
  }
  std::vector<std::thread> th;
  for (std::size_t l = 0; l < n_layers; ++l)
    for (std::uint32_t h = 0; h < n_kv; ++h) th.emplace_back(job, l, h);
  for (auto& t : th) t.join();
  return out;
}

void append_all(strata::runtime_kv_cache& kv, const inputs& in, bool threaded) {
  auto job = [&](std::size_t l) {
    // Two batches per layer, so each thread also appends at a later position.
    kv.append(l, 0, in.k[l].data(), in.v[l].data(), n_tok / 2);
    kv.append(l, n_tok / 2, in.k[l].data() + n_tok / 2 * n_kv * dim,
              in.v[l].data() + n_tok / 2 * n_kv * dim, n_tok - n_tok / 2);
  };
  if (!threaded) {
    for (std::size_t l = 0; l < n_layers; ++l) job(l);
    return;
  }
  std::vector<std::thread> th;
  for (std::size_t l = 0; l < n_layers; ++l) th.emplace_back(job, l);
  for (auto& t : th) t.join();
}

}  // namespace

TEST_CASE(
    "runtime_kv_cache: concurrent appends per layer and attends per head match a sequential run") {
  const inputs in = make_inputs();
  for (const char* policy : {"f16", "-ctk q8_0 -ctv turbo3", "la7", "turbo4"}) {
    CAPTURE(policy);
    auto seq = make_cache(policy);
    append_all(seq, in, false);
    const auto want = attend_all(seq, in, false);

    auto par = make_cache(policy);
    append_all(par, in, true);
    const auto got = attend_all(par, in, true);
    for (std::size_t l = 0; l < n_layers; ++l) {
      CAPTURE(l);
      REQUIRE(got[l].size() == want[l].size());
      std::size_t mismatches = 0;
      for (std::size_t i = 0; i < got[l].size(); ++i) mismatches += got[l][i] != want[l][i];
      CHECK(mismatches == 0);
    }
    // The outputs are real attention results, not zeros.
    double energy = 0;
    for (float x : got[0]) energy += double(x) * x;
    CHECK(energy > 1.0);
  }
}

TEST_CASE("runtime_kv_cache: split-K jobs (KV head, key chunk) on threads match a sequential run") {
  const inputs in = make_inputs();
  constexpr std::size_t chunks = 3, rows = 4 * n_heads;  // the last 4 queries: a small batch
  for (const char* policy : {"f16", "-ctk q8_0 -ctv turbo3", "turbo4"}) {
    CAPTURE(policy);
    auto kv = make_cache(policy);
    append_all(kv, in, false);
    const strata::key_range keys = kv.visible_keys(0, n_tok - 4, 4);
    auto run = [&](bool threaded) {
      std::vector<std::vector<float>> out(chunks, std::vector<float>(rows * dim)),
          lse(chunks, std::vector<float>(rows));
      auto job = [&](std::size_t i, std::uint32_t head) {
        strata::attention_params p;
        p.kv_head_begin = head;
        p.kv_head_end = head + 1;
        p.key_begin = keys.chunk(chunks, i).begin;
        p.key_end = keys.chunk(chunks, i).end;
        p.lse = lse[i].data();
        kv.attend(0, in.q[0].data() + (n_tok - 4) * n_heads * dim, 4, n_tok - 4, out[i].data(), p);
      };
      std::vector<std::thread> th;
      for (std::size_t i = 0; i < chunks; ++i)
        for (std::uint32_t h = 0; h < n_kv; ++h) {
          if (threaded)
            th.emplace_back(job, i, h);
          else
            job(i, h);
        }
      for (auto& t : th) t.join();
      std::vector<strata::attention_part> parts;
      for (std::size_t i = 0; i < chunks; ++i) parts.push_back({out[i].data(), lse[i].data()});
      strata::merge_attention(parts, rows, dim, out[1].data());  // in place, not on the first
      return out[1];
    };
    const auto want = run(false), got = run(true);
    std::size_t mismatches = 0;
    for (std::size_t i = 0; i < got.size(); ++i) mismatches += got[i] != want[i];
    CHECK(mismatches == 0);
    double energy = 0;
    for (float x : got) energy += double(x) * x;
    CHECK(energy > 1.0);
  }
}
