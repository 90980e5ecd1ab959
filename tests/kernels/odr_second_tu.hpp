#pragma once
// Functions of the second translation unit of strata_kernels_odr_test.
#include <cstddef>

namespace odr_second {
const void* turbo4_dot_table();
void encode_turbo4(const float* x, std::size_t n, void* out);
void dot_turbo4(const float* q, std::size_t n_q, std::size_t dim, const void* keys,
                std::size_t key_stride, std::size_t n_keys, float* scores);
void axpy_q8_0(const float* w, std::size_t n, const void* values, std::size_t dim, float* out);
}  // namespace odr_second
