// Throughput of strata's Highway kernels per codec, head_dim 128, one thread:
//   encode / decode of n_keys rows; dot of n_q queries (one KV head's query group) against
//   n_keys keys; axpy of n_keys weighted value rows into n_q outputs.
// Counters: bytes_per_second = compressed bytes read (written, for encode) per second,
// items_per_second = values (n_keys * 128) per second. See docs/kernels.md for the command.

#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include <strata/codec/key_tile.hpp>
#include <strata/kernels/kernels.hpp>

#include "machine.hpp"

namespace {

constexpr std::size_t kDim = 128;

// STRATA_TARGET=AVX2 (or SSE4, SSSE3, SCALAR, ...) restricts dispatch to that target.
const bool kTargetForced = !strata_bench::forced_target().empty();

std::vector<float> gaussian(std::size_t n, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> x(n);
  for (auto& v : x) v = nd(rng);
  return x;
}

template <class Codec> struct rows {
  static constexpr std::size_t row_bytes = kDim / Codec::block_values * Codec::block_bytes;
  std::size_t n;
  std::vector<float> x;
  std::vector<unsigned char> enc;
  explicit rows(std::size_t n_rows)
      : n(n_rows), x(gaussian(n_rows * kDim, 1)), enc(n_rows * row_bytes) {
    strata::encode<Codec>(x.data(), x.size(), enc.data());
  }
};

void counters(benchmark::State& state, std::size_t n_rows, std::size_t bytes_per_row) {
  state.SetBytesProcessed(std::int64_t(state.iterations()) * std::int64_t(n_rows * bytes_per_row));
  state.SetItemsProcessed(std::int64_t(state.iterations()) * std::int64_t(n_rows * kDim));
}

template <class Codec> void BM_encode(benchmark::State& state) {
  rows<Codec> r(std::size_t(state.range(0)));
  for (auto _ : state) {
    strata::encode<Codec>(r.x.data(), r.x.size(), r.enc.data());
    benchmark::DoNotOptimize(r.enc.data());
    benchmark::ClobberMemory();
  }
  counters(state, r.n, rows<Codec>::row_bytes);
}

template <class Codec> void BM_decode(benchmark::State& state) {
  rows<Codec> r(std::size_t(state.range(0)));
  std::vector<float> out(r.x.size());
  for (auto _ : state) {
    strata::decode<Codec>(r.enc.data(), out.size(), out.data());
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  counters(state, r.n, rows<Codec>::row_bytes);
}

template <class Codec> void BM_dot(benchmark::State& state) {
  rows<Codec> r(std::size_t(state.range(0)));
  const std::size_t n_q = std::size_t(state.range(1));
  const auto q = gaussian(n_q * kDim, 2);
  std::vector<float> scores(n_q * r.n);
  for (auto _ : state) {
    strata::dot<Codec>(q.data(), n_q, kDim, r.enc.data(), rows<Codec>::row_bytes, r.n,
                       scores.data(), r.n);
    benchmark::DoNotOptimize(scores.data());
    benchmark::ClobberMemory();
  }
  counters(state, r.n, rows<Codec>::row_bytes);
}

template <class Codec> void BM_axpy(benchmark::State& state) {
  rows<Codec> r(std::size_t(state.range(0)));
  const std::size_t n_q = std::size_t(state.range(1));
  auto w = gaussian(n_q * r.n, 3);
  for (auto& v : w) v *= 1e-3f;
  std::vector<float> out(n_q * kDim, 0.0f);
  for (auto _ : state) {
    strata::axpy<Codec>(w.data(), n_q, r.n, r.enc.data(), rows<Codec>::row_bytes, r.n, kDim,
                        out.data());
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  counters(state, r.n, rows<Codec>::row_bytes);
}

// Key tiles (strata/codec/key_tile.hpp) against the row layout, turbo4 at the cache's group
// for the head dim (64: SmolLM2, 128: Llama), a GQA group of 3 or 4 query rows: the same keys in
// both layouts. Args: keys, query rows, head dim, tiled (0 = rows, the kernels above).
template <int G> struct tile_rows_of {
  using codec = strata::turbo<4, G>;
  std::size_t n, dim, row;
  std::vector<unsigned char> rows, tiles;
  tile_rows_of(std::size_t n_rows, std::size_t d)
      : n(n_rows),
        dim(d),
        row(d / G * codec::block_bytes),
        rows(n_rows * row),
        tiles((n_rows + strata::tile_rows - 1) / strata::tile_rows * strata::tile_rows * row) {
    const auto x = gaussian(n * dim, 1);
    strata::encode<codec>(x.data(), x.size(), rows.data());
    strata::rows_to_tiles<codec>(rows.data(), n, d / G, tiles.data());
  }
};

template <int G> void BM_layout_dot(benchmark::State& state) {
  using C = strata::turbo<4, G>;
  tile_rows_of<G> r(std::size_t(state.range(0)), std::size_t(state.range(2)));
  const std::size_t n_q = std::size_t(state.range(1));
  const bool tiled = state.range(3) != 0;
  const auto q = gaussian(n_q * r.dim, 2);
  std::vector<float> scores(n_q * r.n);
  for (auto _ : state) {
    if (tiled)
      strata::tile_dot<C>(q.data(), n_q, r.dim, r.tiles.data(), 0, r.n, scores.data(), r.n);
    else
      strata::dot<C>(q.data(), n_q, r.dim, r.rows.data(), r.row, r.n, scores.data(), r.n);
    benchmark::DoNotOptimize(scores.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(std::int64_t(state.iterations()) * std::int64_t(r.n * r.row));
}

template <int G> void BM_layout_axpy(benchmark::State& state) {
  using C = strata::turbo<4, G>;
  tile_rows_of<G> r(std::size_t(state.range(0)), std::size_t(state.range(2)));
  const std::size_t n_q = std::size_t(state.range(1));
  const bool tiled = state.range(3) != 0;
  auto w = gaussian(n_q * r.n, 3);
  for (auto& v : w) v = v * v * 1e-3f;  // softmax weights are >= 0
  std::vector<float> out(n_q * r.dim, 0.0f);
  for (auto _ : state) {
    if (tiled)
      strata::tile_axpy<C>(w.data(), n_q, r.n, r.tiles.data(), 0, r.n, r.dim, out.data());
    else
      strata::axpy<C>(w.data(), n_q, r.n, r.rows.data(), r.row, r.n, r.dim, out.data());
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(std::int64_t(state.iterations()) * std::int64_t(r.n * r.row));
}

template <int G> void layout_args(benchmark::internal::Benchmark* b) {
  for (int n : {4096, 16384})
    for (int q : {3, 4})
      for (int tiled : {0, 1}) b->Args({n, q, G, tiled});
}
BENCHMARK_TEMPLATE(BM_layout_dot, 64)->Apply(layout_args<64>);
BENCHMARK_TEMPLATE(BM_layout_axpy, 64)->Apply(layout_args<64>);
BENCHMARK_TEMPLATE(BM_layout_dot, 128)->Apply(layout_args<128>);
BENCHMARK_TEMPLATE(BM_layout_axpy, 128)->Apply(layout_args<128>);

void key_args(benchmark::internal::Benchmark* b) {
  (void)kTargetForced;
  for (int n : {1024, 16384}) b->Args({n});
}
void query_args(benchmark::internal::Benchmark* b) {
  for (int n : {1024, 16384})
    for (int q : {1, 4}) b->Args({n, q});
}

using strata::bf16;
using strata::f16;
using strata::f32;
using strata::q4_0;
using strata::q8_0;
using strata::turbo;
using strata::vq2;

#define STRATA_BENCH_CODEC(...)                                \
  BENCHMARK_TEMPLATE(BM_dot, __VA_ARGS__)->Apply(query_args);  \
  BENCHMARK_TEMPLATE(BM_axpy, __VA_ARGS__)->Apply(query_args); \
  BENCHMARK_TEMPLATE(BM_decode, __VA_ARGS__)->Apply(key_args); \
  BENCHMARK_TEMPLATE(BM_encode, __VA_ARGS__)->Apply(key_args);

STRATA_BENCH_CODEC(f32)
STRATA_BENCH_CODEC(f16)
STRATA_BENCH_CODEC(bf16)
STRATA_BENCH_CODEC(q8_0)
STRATA_BENCH_CODEC(q4_0)
STRATA_BENCH_CODEC(turbo<2>)
STRATA_BENCH_CODEC(turbo<3>)
STRATA_BENCH_CODEC(turbo<4>)
STRATA_BENCH_CODEC(turbo<5>)
STRATA_BENCH_CODEC(turbo<6>)
STRATA_BENCH_CODEC(vq2<128>)

}  // namespace
