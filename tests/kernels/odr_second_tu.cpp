// The second translation unit of strata_kernels_odr_test: it includes the kernels too, so the
// program holds two copies of every inline kernel and dispatch table, which the linker must
// merge into one (kernels_odr_test.cpp checks that).
#include "odr_second_tu.hpp"

#include <strata/kernels/kernels.hpp>

namespace odr_second {

const void* turbo4_dot_table() {
#if (HWY_TARGETS & (HWY_TARGETS - 1)) != 0
  return &strata::kernels::detail::tables<strata::turbo<4>>::dot[0];
#else
  return nullptr;
#endif
}

void encode_turbo4(const float* x, std::size_t n, void* out) {
  strata::encode<strata::turbo<4>>(x, n, out);
}

void dot_turbo4(const float* q, std::size_t n_q, std::size_t dim, const void* keys,
                std::size_t key_stride, std::size_t n_keys, float* scores) {
  strata::dot<strata::turbo<4>>(q, n_q, dim, keys, key_stride, n_keys, scores, n_keys);
}

void axpy_q8_0(const float* w, std::size_t n, const void* values, std::size_t dim, float* out) {
  strata::axpy<strata::q8_0>(w, 1, n, values, dim / 32 * 34, n, dim, out);
}

}  // namespace odr_second
