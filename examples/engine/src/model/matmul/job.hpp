// One matmul call as the kernels of model/matmul/ see it (target-independent). Included by
// model/matmul.cpp only.
#pragma once

#include <cstddef>
#include <cstdint>

namespace engine::matmul_detail {

struct job {
  const uint8_t* w;  // row r starts at w + r * row_bytes
  size_t row_bytes;
  int64_t n_in, n_out, n_tokens;
  const int8_t* xq;  // quantized activations (fast path: 64 bytes per 32-block) ...
  const float* xd;
  const float* xs;
  const float* xdT;  // xd transposed: [n_in / 32][n_tokens], or null: rows_x86_t8 is not used
  const float* xsT;  // xs transposed: [n_in / 16][n_tokens]
  const int8_t* xp;  // the int16 activations as byte planes for AVX3_DL's one-token kernels
                     // (dot_x86-inl.hpp: make_byte_planes), or null
  bool fine;         // two activation planes (activations::fine) or the coarse one (q8)
  const float* xf;   // ... or float activations (float weights)
  float* y;          // [n_tokens][n_out]
};

// Bytes per activation block in the AVX3_DL one-token byte planes (dot_x86-inl.hpp).
inline constexpr int64_t kPlaneBytes = 64;

// Bit l of a 16-bit word, for lane l.
alignas(64) inline constexpr uint16_t kBit16[16] = {1,   2,   4,    8,    16,   32,   64,    128,
                                                    256, 512, 1024, 2048, 4096, 8192, 16384, 32768};

}  // namespace engine::matmul_detail
