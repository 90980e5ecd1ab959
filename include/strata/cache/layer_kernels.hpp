#pragma once
// The kernel resolvers of the cache: each layer's codec_kernels (strata/kernels/kernel_table.hpp)
// come from one of these, once per layer when the cache is built.

#include <cstdint>

#include <strata/codec/standard_codecs.hpp>
#include <strata/kernels/kernel_table.hpp>

namespace strata {

// The kernels the cache uses for the standard codec `id`: Highway, dispatched per call.
inline codec_kernels layer_kernels(codec_id id, std::uint32_t head_dim) {
  return kernels_from<standard_codecs>(id, head_dim);
}

// The scalar reference kernels of the standard codec `id`.
inline codec_kernels reference_kernels(codec_id id, std::uint32_t head_dim) {
  return reference_kernels_from<standard_codecs>(id, head_dim);
}

}  // namespace strata
