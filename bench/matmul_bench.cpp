// Weight matmul (examples/engine/src/model/matmul.*) on the shapes of SmolLM2-135M and gemma3-270m,
// with random weights: y = W x for 1 token (decode) and 64 tokens (prefill), 1 and 2 threads.
//   hot:  one matrix, read again each iteration (it stays in L2/L3 when it fits)
//   cold: a ring of copies totalling >= 256 MB, one copy per iteration (read from DRAM, as a
//         decode step reads each layer's weights once)
// Counters: GB/s = weight bytes read per second (1e9), tok/s = tokens per second through this
// one matrix. Command and numbers: docs/engine-matmul.md.
#include <benchmark/benchmark.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "io/quant.hpp"
#include "model/matmul.hpp"
#include "model/thread_pool.hpp"

namespace {

using engine::ggml_type;

struct shape {
  const char* name;
  ggml_type type;
  int64_t n_in, n_out;
};

constexpr shape kShapes[] = {
    {"smollm2.ffn_up.Q4_1", ggml_type::Q4_1, 576, 1536},
    {"smollm2.ffn_down.Q4_1", ggml_type::Q4_1, 1536, 576},
    {"smollm2.output.Q8_0", ggml_type::Q8_0, 576, 49152},
    {"gemma3.attn_q.Q5_0", ggml_type::Q5_0, 640, 1024},
    {"gemma3.attn_output.Q4_K", ggml_type::Q4_K, 1024, 640},
    {"gemma3.ffn_down.Q6_K", ggml_type::Q6_K, 2048, 640},
    {"gemma3.attn_v.Q8_0", ggml_type::Q8_0, 640, 256},
    {"f32.576x576", ggml_type::F32, 576, 576},
    {"f16.576x576", ggml_type::F16, 576, 576},
};

// Random blocks; every 2-byte field that is a scale gets a small finite half (the formats'
// d/m/dmin fields sit at the offsets below).
std::vector<uint8_t> random_matrix(const shape& s, std::mt19937& rng) {
  const int64_t bb = engine::block_bytes(s.type), bv = engine::block_values(s.type);
  const int64_t n_blocks = s.n_in / bv * s.n_out;
  std::vector<uint8_t> bytes(static_cast<size_t>(n_blocks * bb));
  std::uniform_int_distribution<int> byte(0, 255);
  for (auto& b : bytes) b = static_cast<uint8_t>(byte(rng));
  std::vector<int64_t> halves;
  switch (s.type) {
    case ggml_type::Q4_1:
    case ggml_type::Q5_1:
    case ggml_type::Q4_K:
    case ggml_type::Q5_K: halves = {0, 2}; break;
    case ggml_type::Q4_0:
    case ggml_type::Q5_0:
    case ggml_type::Q8_0: halves = {0}; break;
    case ggml_type::Q6_K: halves = {208}; break;
    default: break;
  }
  std::uniform_real_distribution<float> scale(-0.05f, 0.05f);
  if (s.type == ggml_type::F32 || s.type == ggml_type::F16) {
    for (int64_t i = 0; i < n_blocks; ++i) {
      const float v = scale(rng);
      if (s.type == ggml_type::F32) {
        std::memcpy(bytes.data() + 4 * i, &v, 4);
      } else {
        const uint16_t h = engine::float_to_half(v);
        std::memcpy(bytes.data() + 2 * i, &h, 2);
      }
    }
  }
  for (int64_t k = 0; k < n_blocks && bv > 1; ++k)
    for (int64_t off : halves) {
      const uint16_t h = engine::float_to_half(scale(rng));
      std::memcpy(bytes.data() + k * bb + off, &h, 2);
    }
  return bytes;
}

// Args: shape index, tokens, threads, cold (0/1).
void BM_matmul(benchmark::State& state) {
  const shape& s = kShapes[state.range(0)];
  const int64_t n_tokens = state.range(1);
  const int threads = static_cast<int>(state.range(2));
  const bool cold = state.range(3) != 0;
  std::mt19937 rng(1);
  const std::vector<uint8_t> one = random_matrix(s, rng);
  const size_t copies = cold ? std::max<size_t>(2, (size_t{256} << 20) / one.size() + 1) : 1;
  std::vector<uint8_t> ring(one.size() * copies);
  for (size_t c = 0; c < copies; ++c)
    std::memcpy(ring.data() + c * one.size(), one.data(), one.size());
  std::vector<engine::tensor> tensors;
  for (size_t c = 0; c < copies; ++c)
    tensors.push_back(engine::tensor{
        s.name, s.type, 2, {s.n_in, s.n_out, 1, 1}, ring.data() + c * one.size(), one.size()});
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(s.n_in * n_tokens)),
      y(static_cast<size_t>(s.n_out * n_tokens));
  for (auto& v : x) v = normal(rng);
  engine::thread_pool pool(threads);
  size_t c = 0;
  for (auto _ : state) {
    engine::matmul(tensors[c], x.data(), n_tokens, y.data(), pool);
    benchmark::DoNotOptimize(y.data());
    c = c + 1 == copies ? 0 : c + 1;
  }
  const double bytes = static_cast<double>(one.size()) * static_cast<double>(state.iterations());
  state.counters["GB/s"] = benchmark::Counter(bytes / 1e9, benchmark::Counter::kIsRate);
  state.counters["tok/s"] =
      benchmark::Counter(static_cast<double>(n_tokens) * static_cast<double>(state.iterations()),
                         benchmark::Counter::kIsRate);
  state.SetLabel(std::string(s.name) + (cold ? " cold" : " hot"));
}

void args(benchmark::internal::Benchmark* b) {
  const int64_t n = static_cast<int64_t>(sizeof(kShapes) / sizeof(kShapes[0]));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t tokens : {1, 64})
      for (int64_t threads : {1, 2})
        for (int64_t cold : {0, 1}) {
          if (cold && tokens != 1) continue;  // prefill is compute-bound: hot only
          b->Args({i, tokens, threads, cold});
        }
  b->ArgNames({"shape", "tokens", "threads", "cold"});
  b->UseRealTime();
}

}  // namespace

BENCHMARK(BM_matmul)->Apply(args);
