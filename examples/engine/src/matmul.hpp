// engine::matmul -- y = W x for quantized / float weight tensors, threaded over output rows.
//
// Fast path (the default): each token's activations are quantized to 8 bits per 32-value block
// (a float scale per block and, per 16 values, the float sum of the dequantized values), and the
// weight blocks are decoded to 16-bit integers and multiplied with integer multiply-adds
// (Highway, dispatched to the best target the CPU has), as llama.cpp does with its Q8 formats.
// All quantized formats have this path: Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q2_K Q3_K Q4_K Q5_K Q6_K.
// F32/F16/BF16 weights use f32 FMA with float activations. Several tokens (prefill) are
// processed per pass over a weight block.
#pragma once

#include <cstdint>
#include <vector>

#include "gguf.hpp"
#include "thread_pool.hpp"

namespace engine {

// W: a 2-D weight tensor, ne[0] = n_in (contiguous), ne[1] = n_out. x: n_tokens rows of n_in
// floats. y: n_tokens rows of n_out floats. y[t][r] = sum_c W[r][c] * x[t][c].
// Fast path: activations quantized to 8 bits per 32-block where the weight type allows (as
// llama.cpp does); threaded over rows with the pool. `exact` = dequantize to f32 and use f32
// math (the reference mode for correctness tests; it accumulates in f64).
void matmul(const tensor& W, const float* x, int64_t n_tokens, float* y, thread_pool& pool,
            bool exact = false);
// Row lookup (token embedding): out[0..ne[0]) = dequantized row r of W.
void get_row(const tensor& W, int64_t r, float* out);

// ---- additions ---------------------------------------------------------------------------------

// Whether `type` has the 8-bit-activation integer path (false: F32/F16/BF16 and Q8_1/Q8_K).
bool matmul_quantizes_activations(ggml_type type);

// Activations quantized for the fast path: per token, n_in int8 values in [-127, 127],
// one scale per 32 values (x ~= d * q) and, per 16 values, sum16 = d * sum(q).
struct q8_activations {
  int64_t n_in = 0, n_tokens = 0;
  std::vector<int8_t> q;      // [n_tokens][n_in]
  std::vector<float> d;       // [n_tokens][n_in / 32]
  std::vector<float> sum16;   // [n_tokens][n_in / 16]
};
// n_in must be a multiple of 32. Rounds x / d to nearest, d = max|x| / 127 per block.
void quantize_activations(const float* x, int64_t n_in, int64_t n_tokens, q8_activations& out);

// Scalar reference of the fast path: dequantizes W (engine::dequantize) and the quantized
// activations and sums in f64; the fast path must agree to float rounding.
void matmul_reference_q8(const tensor& W, const float* x, int64_t n_tokens, float* y);

}  // namespace engine
