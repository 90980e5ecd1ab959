#pragma once
// Scalar reference of the dot kernel (docs/formats.md): every key row is decoded exactly as
// reference::decode does, then each score is an f64 sum of f32 products, rounded once to f32.
//
//   scores[i * score_stride + j] = <q_i, key_j>,  q_i = q + i * dim,
//   key_j at (const char*)keys + j * key_stride.

#include <cstddef>
#include <vector>

#include <strata/reference/encode.hpp>

namespace strata::reference {

template <class Codec>
void dot(const float* q, std::size_t n_q, std::size_t dim, const void* keys, std::size_t key_stride,
         std::size_t n_keys, float* scores, std::size_t score_stride) {
  static_assert(check_codec<Codec>());
  detail::check_length<Codec>(dim, "strata::reference::dot");
  std::vector<float> k(dim);
  for (std::size_t j = 0; j < n_keys; ++j) {
    decode<Codec>(static_cast<const char*>(keys) + j * key_stride, dim, k.data());
    for (std::size_t i = 0; i < n_q; ++i) {
      double s = 0.0;
      for (std::size_t c = 0; c < dim; ++c) s += double(q[i * dim + c]) * double(k[c]);
      scores[i * score_stride + j] = float(s);
    }
  }
}

}  // namespace strata::reference
