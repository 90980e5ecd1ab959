// engine::matmul -- y = W x for quantized / float weight tensors, threaded over output rows.
//
// Fast path (the default): each token's activations are quantized per 32-value block to two
// int8 planes (a coarse value and its remainder: about 15 bits; a float scale per block and, per
// 16 values, the float sum of the dequantized values), or to one int8 plane as llama.cpp's Q8
// formats do (`activations::q8`), and the weight blocks are multiplied with them in integer
// multiply-adds (Highway, dispatched to the best target the CPU has).
// All quantized formats have this path: Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q2_K Q3_K Q4_K Q5_K Q6_K.
// F32/F16/BF16 weights use f32 FMA with float activations. Several tokens (prefill) are
// processed per pass over a weight block.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "io/gguf.hpp"
#include "model/thread_pool.hpp"

namespace engine {

// W: a 2-D weight tensor, ne[0] = n_in (contiguous), ne[1] = n_out. x: n_tokens rows of n_in
// floats. y: n_tokens rows of n_out floats. y[t][r] = sum_c W[r][c] * x[t][c].
// Threaded over rows with the pool.
//   fine  (default) activations in two int8 planes per 32-block where the weight type has an
//         integer path: about 15 bits, within float rounding of `exact` in practice;
//   q8    one int8 plane per 32-block (llama.cpp's Q8 activations): cheaper prefill, and on
//         SmolLM2 it moves the top-1 token on about 3 % of positions against `exact`;
//   exact weights dequantized to f32, f32 activations, f64 sums (the reference mode).
// A token's outputs are bit-identical in every call of 1 to 8 tokens, whatever its place in the
// batch (the kernels for 8, 4, 2 and 1 tokens sum in one order); with batch_invariant, in calls
// of any size. Without it, calls of more than 8 tokens may prefill legacy formats (Q4_0 ... Q8_0)
// on x86 in another order, which is faster.
enum class activations { fine, q8, exact };
void matmul(const tensor& W, const float* x, int64_t n_tokens, float* y, thread_pool& pool,
            activations act = activations::fine, bool batch_invariant = false);
// Several weights with the same row length applied to the same activations (q, k and v; gate
// and up) in one call: the activations quantized once and every weight's rows shared out in one
// parallel_for. Each output is bit-identical to its own matmul call. At most kMaxOutputs weights
// go in one parallel_for (more are split).
struct matmul_output {
  const tensor* W;
  float* y;  // [n_tokens][W->ne[1]]
};
inline constexpr size_t kMaxOutputs = 8;
void matmul(std::span<const matmul_output> outs, const float* x, int64_t n_tokens,
            thread_pool& pool, activations act = activations::fine, bool batch_invariant = false);
// Row lookup (token embedding): out[0..ne[0]) = dequantized row r of W.
void get_row(const tensor& W, int64_t r, float* out);

// ---- additions ---------------------------------------------------------------------------------

// Whether `type` has the 8-bit-activation integer path (false: F32/F16/BF16 and Q8_1/Q8_K).
bool matmul_quantizes_activations(ggml_type type);

// Activations quantized for the integer path. `fine`: per 32-value block a coarse part
// c = round(x / (kActFine d)) and the rounded remainder f = round((x - kActFine d c) / d), both
// in [-127, 127], so x ~= d * (kActFine * c + f) with |error| <= d / 2 and
// d = max|x| / (127 * kActFine), stored as the int16 kActFine * c + f (|value| <= 32385).
// `q8`: c alone, x ~= d * c with d = max|x| / 127, stored as int8.
inline constexpr int kActFine = 254;
// Per token, n_in / 32 blocks of 64 bytes (fine: 32 int16 values; q8: 32 int8 values, then 32
// unused bytes); one scale d per 32 values and, per 16 values, sum16 = d * (sum of the integer
// values).
struct q8_activations {
  int64_t n_in = 0, n_tokens = 0;
  bool fine = true;
  std::vector<int8_t> q;     // [n_tokens][n_in / 32][64 bytes]
  std::vector<float> d;      // [n_tokens][n_in / 32]
  std::vector<float> sum16;  // [n_tokens][n_in / 16]
};
// n_in must be a multiple of 32; `act` is fine or q8.
void quantize_activations(const float* x, int64_t n_in, int64_t n_tokens, q8_activations& out,
                          activations act = activations::fine);
// The integer of the activation at index i (token-major, as x): kActFine * c + f, or c.
inline int activation_integer(const q8_activations& a, int64_t i) {
  const int64_t b = i / 32, k = i % 32;
  if (!a.fine) return a.q[static_cast<size_t>(64 * b + k)];
  int16_t v;
  std::memcpy(&v, a.q.data() + 64 * b + 2 * k, sizeof v);
  return v;
}
// The value quantize_activations stands for at index i (token-major, as x).
inline float dequantized_activation(const q8_activations& a, int64_t i) {
  return a.d[static_cast<size_t>(i / 32)] * static_cast<float>(activation_integer(a, i));
}

// Scalar reference of the fast path: dequantizes W (engine::dequantize) and the quantized
// activations and sums in f64; the fast path must agree to float rounding.
void matmul_reference_q8(const tensor& W, const float* x, int64_t n_tokens, float* y,
                         activations act = activations::fine);

}  // namespace engine
