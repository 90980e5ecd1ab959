#pragma once
// Scalar reference of the axpy kernel (docs/formats.md): every value row is decoded exactly as
// reference::decode does; out accumulates in f64 and is rounded once to f32 at the end.
//
//   out[i * dim + c] += sum_j w[i * w_stride + j] * value_j[c],
//   value_j at (const char*)values + j * value_stride.

#include <cstddef>
#include <vector>

#include <strata/reference/encode.hpp>

namespace strata::reference {

template <class Codec>
void axpy(const float* w, std::size_t n_q, std::size_t w_stride, const void* values,
          std::size_t value_stride, std::size_t n_values, std::size_t dim, float* out) {
  static_assert(check_codec<Codec>());
  detail::check_length<Codec>(dim, "strata::reference::axpy");
  std::vector<double> acc(n_q * dim);
  for (std::size_t i = 0; i < n_q * dim; ++i) acc[i] = out[i];
  std::vector<float> v(dim);
  for (std::size_t j = 0; j < n_values; ++j) {
    decode<Codec>(static_cast<const char*>(values) + j * value_stride, dim, v.data());
    for (std::size_t i = 0; i < n_q; ++i) {
      const double wij = w[i * w_stride + j];
      for (std::size_t c = 0; c < dim; ++c) acc[i * dim + c] += wij * double(v[c]);
    }
  }
  for (std::size_t i = 0; i < n_q * dim; ++i) out[i] = float(acc[i]);
}

}  // namespace strata::reference
