// engine::matmul: the Highway kernels on every target this CPU supports against the scalar
// reference of the same math (matmul_reference_q8), and the 8-bit-activation path against the
// exact (f32 weights, f64 sums) mode within the bound that activation rounding allows.
#include <doctest/doctest.h>

// The engine compiles the AVX3_DL target into model/matmul.cpp: list it here too.
#define HWY_WANT_AVX3_DL
#include <hwy/targets.h>

#include <cmath>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "../support/targets.hpp"
#include "io/gguf.hpp"
#include "io/quant.hpp"
#include "model/matmul.hpp"
#include "model/thread_pool.hpp"

using engine::ggml_type;

namespace {

// Byte offsets of each block type's fp16 scales, so random blocks get finite, sane scales.
std::vector<size_t> half_fields(ggml_type t) {
  using namespace engine;
  switch (t) {
    case ggml_type::Q4_0: return {offsetof(block_q4_0, d)};
    case ggml_type::Q4_1: return {offsetof(block_q4_1, d), offsetof(block_q4_1, m)};
    case ggml_type::Q5_0: return {offsetof(block_q5_0, d)};
    case ggml_type::Q5_1: return {offsetof(block_q5_1, d), offsetof(block_q5_1, m)};
    case ggml_type::Q8_0: return {offsetof(block_q8_0, d)};
    case ggml_type::Q2_K: return {offsetof(block_q2_K, d), offsetof(block_q2_K, dmin)};
    case ggml_type::Q3_K: return {offsetof(block_q3_K, d)};
    case ggml_type::Q4_K: return {offsetof(block_q4_K, d), offsetof(block_q4_K, dmin)};
    case ggml_type::Q5_K: return {offsetof(block_q5_K, d), offsetof(block_q5_K, dmin)};
    case ggml_type::Q6_K: return {offsetof(block_q6_K, d)};
    default: return {};
  }
}

struct weights {
  std::vector<uint8_t> bytes;
  engine::tensor t;
};

weights random_weights(ggml_type type, int64_t n_in, int64_t n_out, std::mt19937& rng) {
  weights w;
  const int64_t bv = engine::block_values(type), bb = engine::block_bytes(type);
  const int64_t n_blocks = n_in / bv * n_out;
  w.bytes.resize(static_cast<size_t>(n_blocks * bb));
  std::normal_distribution<float> normal(0.0f, 1.0f);
  if (type == ggml_type::F32) {
    for (int64_t i = 0; i < n_in * n_out; ++i) {
      const float v = normal(rng);
      std::memcpy(w.bytes.data() + 4 * i, &v, 4);
    }
  } else if (type == ggml_type::F16 || type == ggml_type::BF16) {
    for (int64_t i = 0; i < n_in * n_out; ++i) {
      const float v = normal(rng);
      uint32_t bits;
      std::memcpy(&bits, &v, 4);
      const uint16_t h =
          type == ggml_type::F16 ? engine::float_to_half(v) : static_cast<uint16_t>(bits >> 16);
      std::memcpy(w.bytes.data() + 2 * i, &h, 2);
    }
  } else {
    std::uniform_int_distribution<int> byte(0, 255);
    for (auto& b : w.bytes) b = static_cast<uint8_t>(byte(rng));
    std::uniform_real_distribution<float> scale(-0.05f, 0.05f);
    for (int64_t k = 0; k < n_blocks; ++k)
      for (size_t off : half_fields(type)) {
        const uint16_t h = engine::float_to_half(scale(rng));
        std::memcpy(w.bytes.data() + k * bb + static_cast<int64_t>(off), &h, 2);
      }
  }
  w.t = engine::tensor{"w", type, 2, {n_in, n_out, 1, 1}, w.bytes.data(), w.bytes.size()};
  return w;
}

std::vector<float> random_x(int64_t n, std::mt19937& rng) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(n));
  for (auto& v : x) v = normal(rng);
  for (size_t i = 0; i < x.size(); i += 97) x[i] *= 20;  // outliers, as real activations have
  return x;
}

// Per output: sum |w| |x| (scale of float rounding) and the bound on the error that quantized
// activations can cause: sum_c |w_c| * d_block(c) / 2 where d = max|x| / steps per 32-block
// (steps = 127 for one int8 plane, 127 kActFine for two).
void bounds(const engine::tensor& W, const std::vector<float>& x, int64_t n_tokens,
            std::vector<double>& abs_sum, std::vector<double>& act_bound, double steps) {
  const int64_t n_in = W.ne[0], n_out = W.ne[1];
  abs_sum.assign(static_cast<size_t>(n_out * n_tokens), 0.0);
  act_bound.assign(static_cast<size_t>(n_out * n_tokens), 0.0);
  std::vector<float> row(static_cast<size_t>(n_in));
  for (int64_t r = 0; r < n_out; ++r) {
    engine::get_row(W, r, row.data());
    for (int64_t t = 0; t < n_tokens; ++t) {
      const float* xt = x.data() + t * n_in;
      double s = 0, a = 0;
      for (int64_t b = 0; b < n_in; b += 32) {
        float amax = 0;
        for (int64_t c = b; c < b + 32 && c < n_in; ++c) amax = std::max(amax, std::fabs(xt[c]));
        for (int64_t c = b; c < b + 32 && c < n_in; ++c) {
          s += std::fabs(row[static_cast<size_t>(c)]) * std::fabs(xt[c]);
          a += std::fabs(row[static_cast<size_t>(c)]) * amax / (2.0 * steps);
        }
      }
      abs_sum[static_cast<size_t>(t * n_out + r)] = s;
      act_bound[static_cast<size_t>(t * n_out + r)] = a;
    }
  }
}

// matmul on the current target vs the scalar reference of the same math, and vs exact mode.
void check_matmul(const engine::tensor& W, int64_t n_tokens, engine::thread_pool& pool,
                  std::mt19937& rng, bool all_targets) {
  const int64_t n_in = W.ne[0], n_out = W.ne[1];
  const std::vector<float> x = random_x(n_in * n_tokens, rng);
  const size_t ny = static_cast<size_t>(n_out * n_tokens);
  std::vector<float> exact(ny);
  engine::matmul(W, x.data(), n_tokens, exact.data(), pool, engine::activations::exact);
  for (const auto act : {engine::activations::fine, engine::activations::q8}) {
    const bool fine = act == engine::activations::fine;
    std::vector<double> abs_sum, act_bound;
    bounds(W, x, n_tokens, abs_sum, act_bound, fine ? 127.0 * engine::kActFine : 127.0);
    std::vector<float> ref(ny), fast(ny);
    engine::matmul_reference_q8(W, x.data(), n_tokens, ref.data(), act);
    const bool quantized = engine::matmul_quantizes_activations(W.type);
    const auto check_target = [&] {
      INFO("type " << engine::type_name(W.type) << ", " << n_in << "x" << n_out << ", tokens "
                   << n_tokens << (fine ? ", fine" : ", q8") << " activations");
      std::fill(fast.begin(), fast.end(), std::nanf(""));
      engine::matmul(W, x.data(), n_tokens, fast.data(), pool, act);
      int bad_ref = 0, bad_exact = 0;
      for (size_t i = 0; i < ny; ++i) {
        const double tol = 2e-5 * abs_sum[i] + 1e-30;
        if (!(std::fabs(fast[i] - ref[i]) <= tol) && bad_ref++ < 3)
          MESSAGE("y[" << i << "] fast " << fast[i] << " reference " << ref[i] << " tol " << tol);
        const double tol_exact = (quantized ? act_bound[i] * 1.001 : 0.0) + tol;
        if (!(std::fabs(fast[i] - exact[i]) <= tol_exact) && bad_exact++ < 3)
          MESSAGE("y[" << i << "] fast " << fast[i] << " exact " << exact[i] << " tol "
                       << tol_exact);
      }
      CHECK(bad_ref == 0);
      CHECK(bad_exact == 0);
    };
    if (all_targets)
      strata_test::for_each_target(check_target);
    else
      check_target();  // the best target
    // Exact mode is the f64 dot of the dequantized row with x: also check it against the
    // quantized-activation reference within the activation bound (independent of the kernels).
    if (quantized)
      for (size_t i = 0; i < ny; ++i)
        CHECK(std::fabs(exact[i] - ref[i]) <= act_bound[i] * 1.001 + 1e-5 * abs_sum[i]);
  }
}

// Every type matmul multiplies, from the one table of io/ggml_types.hpp.
std::vector<ggml_type> matmul_types() {
  std::vector<ggml_type> out;
  for (const engine::ggml_type_info& info : engine::kGgmlTypes)
    if (info.matmul != engine::matmul_path::none) out.push_back(info.type);
  return out;
}

}  // namespace

TEST_CASE("matmul: every target was exercised") { strata_test::check_targets_exercised(); }

TEST_CASE("every weight type on every target: fast path vs scalar reference and exact mode") {
  std::mt19937 rng(42);
  engine::thread_pool pool(3);
  for (ggml_type type : matmul_types()) {
    const int64_t n_in = engine::block_values(type) == 256 ? 512 : 544;  // 17 blocks: a tail of 1
    const weights w = random_weights(type, n_in, 37, rng);
    for (int64_t n_tokens : {1, 6, 21}) check_matmul(w.t, n_tokens, pool, rng, true);
  }
}

// A token's outputs in a batch of n tokens are bit-identical to the token's outputs alone: for
// n = 1..8 always (the kernels for 8, 4, 2 and 1 tokens sum in one order), for larger prefill
// batches when batch_invariant is asked (model::decode batches several sequences and must match
// forward() of each alone).
TEST_CASE(
    "batch invariance: every weight type, activation mode and target, batches 1..8 and more") {
  std::mt19937 rng(23);
  engine::thread_pool pool(3);
  constexpr int64_t kTokens = 34, kOut = 37;  // 37 rows: three 16-row blocks, the last partial
  for (ggml_type type : matmul_types()) {
    // Legacy: 17 blocks (two groups of eight and a tail block); K-quants: three super-blocks.
    const int64_t n_in = engine::block_values(type) == 256 ? 768 : 544;
    const weights w = random_weights(type, n_in, kOut, rng);
    const std::vector<float> x = random_x(n_in * kTokens, rng);
    for (const auto act :
         {engine::activations::fine, engine::activations::q8, engine::activations::exact}) {
      const char* mode = act == engine::activations::fine ? "fine"
                         : act == engine::activations::q8 ? "q8"
                                                          : "exact";
      strata_test::for_each_target([&] {
        INFO("type " << engine::type_name(type) << ", " << mode << " activations");
        std::vector<float> alone(static_cast<size_t>(kOut * kTokens));
        for (int64_t t = 0; t < kTokens; ++t)
          engine::matmul(w.t, x.data() + t * n_in, 1, alone.data() + t * kOut, pool, act);
        int bad = 0;
        for (int64_t n : {2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 16, 33})
          for (int64_t first : {int64_t(0), int64_t(1)}) {  // tokens [first, first + n)
            std::vector<float> y(static_cast<size_t>(kOut * n));
            const bool ask = n > 8;  // up to 8 tokens: invariant without asking
            engine::matmul(w.t, x.data() + first * n_in, n, y.data(), pool, act, ask);
            for (int64_t t = 0; t < n; ++t)
              if (std::memcmp(y.data() + t * kOut, alone.data() + (first + t) * kOut,
                              kOut * sizeof(float)) != 0 &&
                  bad++ < 3)
                MESSAGE("token " << first + t << " differs in the batch of " << n
                                 << " tokens starting at " << first);
          }
        CHECK(bad == 0);
      });
    }
  }
}

// The one-token Q4_0 / Q4_1 kernels at the ends of their integer ranges: every nibble 15 (or
// 0, or mixed) against activations whose int16 values reach +-(127 kActFine + 127), in rows of
// 3 x 8 blocks and a tail (AVX3_DL splits the int16 into bytes; a wrong sign or an overflow of
// the int32 lanes would be far outside float rounding). Alone and in batches, bit-identical.
TEST_CASE("one-token Q4_0 / Q4_1 at the integer extremes, every target") {
  engine::thread_pool pool(2);
  constexpr int64_t kIn = 800, kOut = 5, kTokens = 3;  // 25 blocks
  std::vector<float> x(static_cast<size_t>(kIn * kTokens));
  for (size_t i = 0; i < x.size(); ++i) {
    const size_t k = i % 32, b = i / 32;
    // b % 3 == 0: all at +-max (c = +-127, f = 0); 1: the max and values half a coarse step
    // off the grid (|f| = 127); 2: max and 126.5 / 127 of it alternating. Mixed signs.
    const float sign = (b % 2 == 0) == (k % 3 == 0) ? 1.0f : -1.0f;
    float v = 1.0f;
    if (b % 3 == 1 && k != 0) v = (std::floor(127.0f * static_cast<float>(k) / 32.0f) + 0.5f) / 127;
    if (b % 3 == 2 && k % 2 == 1) v = 126.5f / 127.0f;
    x[i] = sign * v * (b % 5 == 4 ? 1e-3f : 3.0f);
  }
  for (ggml_type type : {ggml_type::Q4_0, ggml_type::Q4_1}) {
    const int64_t bb = engine::block_bytes(type), nblk = kIn / 32 * kOut;
    const size_t half = type == ggml_type::Q4_1 ? 2 : 1;  // scales first, then 16 nibble bytes
    std::vector<uint8_t> bytes(static_cast<size_t>(nblk * bb));
    for (int64_t k = 0; k < nblk; ++k) {
      uint8_t* blk = bytes.data() + k * bb;
      const uint16_t d = engine::float_to_half(0.01f + 0.001f * static_cast<float>(k % 7));
      const uint16_t m = engine::float_to_half(-0.07f);
      std::memcpy(blk, &d, 2);
      if (half == 2) std::memcpy(blk + 2, &m, 2);
      const uint8_t fill = k % 4 == 0 ? 0xFF : k % 4 == 1 ? 0x00 : k % 4 == 2 ? 0xF0 : 0x0F;
      for (int i = 0; i < 16; ++i)
        blk[2 * half + static_cast<size_t>(i)] = k % 8 == 7 ? static_cast<uint8_t>(17 * i) : fill;
    }
    const engine::tensor W{"w", type, 2, {kIn, kOut, 1, 1}, bytes.data(), bytes.size()};
    std::vector<double> abs_sum, act_bound;
    bounds(W, x, kTokens, abs_sum, act_bound, 127.0 * engine::kActFine);
    std::vector<float> ref(static_cast<size_t>(kOut * kTokens));
    engine::matmul_reference_q8(W, x.data(), kTokens, ref.data());
    strata_test::for_each_target([&] {
      INFO("type " << engine::type_name(type));
      std::vector<float> alone(ref.size()), batch(ref.size());
      for (int64_t t = 0; t < kTokens; ++t)
        engine::matmul(W, x.data() + t * kIn, 1, alone.data() + t * kOut, pool);
      engine::matmul(W, x.data(), kTokens, batch.data(), pool);
      int bad = 0;
      for (size_t i = 0; i < ref.size(); ++i)
        if (!(std::fabs(alone[i] - ref[i]) <= 2e-5 * abs_sum[i]) && bad++ < 3)
          MESSAGE("y[" << i << "] " << alone[i] << " reference " << ref[i]);
      CHECK(bad == 0);
      CHECK(std::memcmp(alone.data(), batch.data(), alone.size() * sizeof(float)) == 0);
    });
  }
}

TEST_CASE("quantized activations: two planes (stored as int16), error at most half a fine step") {
  std::mt19937 rng(11);
  const int64_t n_in = 256, n_tokens = 3;
  std::vector<float> x = random_x(n_in * n_tokens, rng);
  for (int k = 0; k < 32; ++k) x[static_cast<size_t>(64 + k)] = 0.0f;  // an all-zero block
  x[200] = 1e30f;                                                      // a huge value
  for (int k = 0; k < 32; ++k)
    x[static_cast<size_t>(288 + k)] = 1e-30f * static_cast<float>(k - 16);  // tiny ones
  engine::q8_activations a;
  engine::quantize_activations(x.data(), n_in, n_tokens, a);
  REQUIRE(a.q.size() == static_cast<size_t>(2 * n_in * n_tokens));
  int bad = 0;
  for (int64_t b = 0; b < n_in * n_tokens / 32; ++b) {
    float amax = 0;
    for (int k = 0; k < 32; ++k)
      amax = std::max(amax, std::fabs(x[static_cast<size_t>(32 * b + k)]));
    const double step = static_cast<double>(amax) / (127.0 * engine::kActFine);
    CHECK(a.d[static_cast<size_t>(b)] == doctest::Approx(step).epsilon(1e-6));
    double sum[2] = {0, 0};
    for (int k = 0; k < 32; ++k) {
      const int64_t i = 32 * b + k;
      // The stored int16 is kActFine * c + f with c, f in [-127, 127].
      const int q = engine::activation_integer(a, i);
      const double v = engine::dequantized_activation(a, i);
      sum[k / 16] += v;
      if ((q < -127 * (engine::kActFine + 1) || q > 127 * (engine::kActFine + 1) ||
           std::fabs(v - static_cast<double>(x[static_cast<size_t>(i)])) > 0.51 * step + 1e-37) &&
          bad++ < 3)
        MESSAGE("x[" << i << "] = " << x[static_cast<size_t>(i)] << " -> " << v << " step " << step
                     << " d " << a.d[static_cast<size_t>(b)] << " (integer " << q << ")");
    }
    for (int h = 0; h < 2; ++h)
      CHECK(std::fabs(a.sum16[static_cast<size_t>(2 * b + h)] - sum[h]) <= 1e-5 * amax);
  }
  CHECK(bad == 0);
}

TEST_CASE("float weights with a row length that is not a multiple of the vector") {
  std::mt19937 rng(7);
  engine::thread_pool pool(2);
  for (ggml_type type : {ggml_type::F32, ggml_type::F16, ggml_type::BF16}) {
    const weights w = random_weights(type, 70, 9, rng);
    check_matmul(w.t, 5, pool, rng, true);
  }
}

TEST_CASE("thread counts give identical results") {
  std::mt19937 rng(3);
  const weights w = random_weights(ggml_type::Q4_K, 1024, 301, rng);
  const std::vector<float> x = random_x(1024 * 5, rng);
  std::vector<float> y1(301 * 5), y4(301 * 5);
  engine::thread_pool p1(1), p4(4);
  engine::matmul(w.t, x.data(), 5, y1.data(), p1);
  engine::matmul(w.t, x.data(), 5, y4.data(), p4);
  CHECK(y1 == y4);
}

// Several weights on one activation (q, k, v; gate, up) in one call: each output bit-identical
// to its own call, whatever the mix of formats (legacy, K-quants, float: a float weight among
// quantized ones runs on its own), the activation mode, the token count and the target.
TEST_CASE("weights sharing an activation: one call, the same bits as one call each") {
  std::mt19937 rng(29);
  engine::thread_pool pool(3);
  constexpr int64_t kIn = 512;
  const ggml_type types[] = {ggml_type::Q4_1, ggml_type::Q8_0, ggml_type::Q4_K,
                             ggml_type::Q6_K, ggml_type::Q4_0, ggml_type::F16};
  const int64_t outs[] = {37, 8, 19, 64, 1, 23};
  std::vector<weights> ws;
  for (size_t i = 0; i < std::size(types); ++i)
    ws.push_back(random_weights(types[i], kIn, outs[i], rng));
  const std::vector<float> x = random_x(kIn * 12, rng);
  for (const auto act :
       {engine::activations::fine, engine::activations::q8, engine::activations::exact}) {
    strata_test::for_each_target([&] {
      for (int64_t n : {1, 2, 5, 12})
        for (size_t count : {size_t(2), size_t(3), size_t(5), size_t(6)})
          for (bool inv : {false, true}) {
            INFO("activations " << int(act) << ", " << n << " tokens, " << count
                                << " weights, batch_invariant " << inv);
            std::vector<std::vector<float>> alone(count), grouped(count);
            std::vector<engine::matmul_output> group;
            for (size_t i = 0; i < count; ++i) {
              alone[i].assign(static_cast<size_t>(outs[i] * n), 0.0f);
              grouped[i].assign(static_cast<size_t>(outs[i] * n), -1.0f);
              engine::matmul(ws[i].t, x.data(), n, alone[i].data(), pool, act, inv);
              group.push_back({&ws[i].t, grouped[i].data()});
            }
            engine::matmul(group, x.data(), n, pool, act, inv);
            for (size_t i = 0; i < count; ++i) CHECK(grouped[i] == alone[i]);
          }
    });
  }
  // Rows of different lengths cannot share one activation.
  const weights shorter = random_weights(ggml_type::Q8_0, 256, 4, rng);
  std::vector<float> y1(37), y2(4);
  const engine::matmul_output bad[] = {{&ws[0].t, y1.data()}, {&shorter.t, y2.data()}};
  CHECK_THROWS_WITH_AS(engine::matmul(bad, x.data(), 1, pool),
                       doctest::Contains("one activation cannot feed both"), engine::error);
}

TEST_CASE("get_row and errors") {
  std::mt19937 rng(5);
  const weights w = random_weights(ggml_type::Q8_0, 64, 3, rng);
  std::vector<float> row(64), all(64 * 3);
  engine::dequantize(ggml_type::Q8_0, w.bytes.data(), all.data(), 64 * 3);
  engine::get_row(w.t, 2, row.data());
  CHECK(std::equal(row.begin(), row.end(), all.begin() + 128));
  CHECK_THROWS_WITH_AS(engine::get_row(w.t, 3, row.data()),
                       doctest::Contains("row 3 is out of range"), engine::error);
  engine::tensor t3 = w.t;
  t3.ne = {64, 1, 3, 1};
  engine::thread_pool pool(1);
  CHECK_THROWS_WITH_AS(engine::matmul(t3, row.data(), 1, all.data(), pool),
                       doctest::Contains("not a 2-D tensor"), engine::error);
}

TEST_CASE("real weights: SmolLM2 Q4_1 / Q8_0 and gemma3 Q4_K / Q6_K / Q5_0 / Q8_0 tensors") {
  std::mt19937 rng(11);
  engine::thread_pool pool(2);
  const std::string models = std::string(STRATA_CACHE_DIR) + "/models/";
  const std::string smol = models + "SmolLM2-135M-Instruct.Q4_1.gguf";
  if (std::filesystem::exists(smol)) {
    engine::gguf g(smol);
    check_matmul(g.get_tensor("blk.0.ffn_down.weight"), 3, pool, rng, false);
    check_matmul(g.get_tensor("blk.0.attn_q.weight"), 1, pool, rng, false);
    check_matmul(g.get_tensor("token_embd.weight"), 1, pool, rng, false);
  } else {
    MESSAGE("skipping: " << smol << " not found");
  }
  const std::string gemma = models + "gemma-3-270m-q4_k_m.gguf";
  if (std::filesystem::exists(gemma)) {
    engine::gguf g(gemma);
    for (const char* name : {"blk.0.attn_output.weight", "blk.0.ffn_down.weight",
                             "blk.0.attn_q.weight", "blk.0.attn_v.weight"})
      check_matmul(g.get_tensor(name), 2, pool, rng, false);
  } else {
    MESSAGE("skipping: " << gemma << " not found");
  }
}
