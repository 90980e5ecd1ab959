#pragma once
// Scalar paths of the kernels: used on Highway's SCALAR target (one lane: no 16-entry byte
// lookup) and for block codecs whose packed planes are narrower than the target's vectors.
// They forward to the scalar references of strata/reference/.

#include <cstddef>

#include <strata/reference/reference.hpp>

namespace strata::kernels {

template <class Codec> void scalar_encode(const float* x, std::size_t n, void* out) {
  reference::encode<Codec>(x, n, out);
}
template <class Codec> void scalar_decode(const void* in, std::size_t n, float* x) {
  reference::decode<Codec>(in, n, x);
}
template <class Codec>
void scalar_axpy(const float* w, std::size_t n_q, std::size_t w_stride, const void* values,
                 std::size_t value_stride, std::size_t n_values, std::size_t dim, float* out) {
  reference::axpy<Codec>(w, n_q, w_stride, values, value_stride, n_values, dim, out);
}

}  // namespace strata::kernels
