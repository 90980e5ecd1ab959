#pragma once
// strata::codec_kernels: one codec's encode/decode/dot/axpy for rows of one head dim, with its
// layout, chosen once (per layer, per run) from a codec_id; hot loops call through the pointers
// and never switch on the codec. The one function-table type of strata: the cache holds one per
// layer and side, tools and examples get one from make_kernel_table.
//
// Signatures follow docs/formats.md:
//   encode(x, n, out)  decode(in, n, x)
//   dot(q, n_q, dim, keys, key_stride, n_keys, scores, score_stride)
//   axpy(w, n_q, w_stride, values, value_stride, n_values, dim, out)

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include <hwy/targets.h>
#include <strata/codec/group.hpp>
#include <strata/codec/key_tile.hpp>
#include <strata/codec/layout.hpp>
#include <strata/codec/standard_codecs.hpp>
#include <strata/kernels/kernels.hpp>
#include <strata/kernels/tile_scan.hpp>
#include <strata/reference/reference.hpp>

namespace strata {

struct codec_kernels {
  codec_layout layout;  // id, block and row sizes, rotated
  void (*encode)(const float* x, std::size_t n, void* out) = nullptr;
  void (*decode)(const void* in, std::size_t n, float* x) = nullptr;
  void (*dot)(const float* q, std::size_t n_q, std::size_t dim, const void* keys,
              std::size_t key_stride, std::size_t n_keys, float* scores,
              std::size_t score_stride) = nullptr;
  void (*axpy)(const float* w, std::size_t n_q, std::size_t w_stride, const void* values,
               std::size_t value_stride, std::size_t n_values, std::size_t dim,
               float* out) = nullptr;
  // Key tiles (strata/codec/key_tile.hpp), set for codecs with that layout (null otherwise):
  // the dot and axpy over a tiled store take its first tile and the first row's index in place
  // of a stride; put/get move n plain rows (nb blocks each) into or out of rows first.. of the
  // store. Whether a store uses them is the cache's choice (cache_options::key_tiles).
  decltype(dot) tile_dot = nullptr;
  decltype(axpy) tile_axpy = nullptr;
  void (*tile_put)(const void* rows, std::size_t n, std::size_t nb, void* tiles,
                   std::size_t first) = nullptr;
  void (*tile_get)(const void* tiles, std::size_t first, std::size_t n, std::size_t nb,
                   void* rows) = nullptr;

  bool has_tiles() const noexcept { return tile_dot != nullptr; }
};

// Whether the target dispatch picks now runs key-tile kernels of its own: x86 AVX2. Other
// targets run the scalar reference (tile_scan.hpp), slower than their row kernels; AVX3 keeps
// its 512-bit row kernels until the tiles are measured against them on an AVX-512 machine.
inline bool tile_kernels_native() {
#if HWY_ARCH_X86
  const std::int64_t t = hwy::SupportedTargets() & HWY_TARGETS;
  return (t & -t) == HWY_AVX2;  // the best target (lowest bit) is the one dispatch picks
#else
  return false;
#endif
}

// A codec that brings its own kernels (static encode/decode/dot/axpy with the signatures
// above, e.g. a program's scalar codec) is used through them; strata's codecs get Highway's.
template <class C>
concept provides_kernels = requires {
  { &C::encode } -> std::convertible_to<void (*)(const float*, std::size_t, void*)>;
  { &C::decode } -> std::convertible_to<void (*)(const void*, std::size_t, float*)>;
  { &C::dot } -> std::convertible_to<decltype(codec_kernels::dot)>;
  { &C::axpy } -> std::convertible_to<decltype(codec_kernels::axpy)>;
};

namespace detail {

template <provides_kernels C> codec_kernels own_kernels(std::uint32_t head_dim) {
  return {layout_of_type<C>(head_dim), &C::encode, &C::decode, &C::dot, &C::axpy};
}

// The Highway kernels (dispatched per call) or the scalar reference of one exact codec type.
struct simd_kernels {
  template <class C> static codec_kernels of(std::uint32_t head_dim) {
    if constexpr (provides_kernels<C>) {
      return own_kernels<C>(head_dim);
    } else {
      codec_kernels k{layout_of_type<C>(head_dim), &strata::encode<C>, &strata::decode<C>,
                      &strata::dot<C>, &strata::axpy<C>};
      if constexpr (tiled_codec<storage_t<C>>) {
        k.tile_dot = &strata::tile_dot<C>;
        k.tile_axpy = &strata::tile_axpy<C>;
        k.tile_put = &rows_to_tiles<storage_t<C>>;
        k.tile_get = &tiles_to_rows<storage_t<C>>;
      }
      return k;
    }
  }
};
struct reference_kernels {
  template <class C> static codec_kernels of(std::uint32_t head_dim) {
    if constexpr (provides_kernels<C>) {
      return own_kernels<C>(head_dim);  // its own kernels are its reference
    } else {
      codec_kernels k{layout_of_type<C>(head_dim), &reference::encode<C>, &reference::decode<C>,
                      &reference::dot<C>, &reference::axpy<C>};
      if constexpr (tiled_codec<storage_t<C>>) {
        k.tile_dot = &kernels::tile_dot_reference<storage_t<C>>;
        k.tile_axpy = &kernels::tile_axpy_reference<storage_t<C>>;
        k.tile_put = &rows_to_tiles<storage_t<C>>;
        k.tile_get = &tiles_to_rows<storage_t<C>>;
      }
      return k;
    }
  }
};

template <class C, class Source> codec_kernels kernels_for(std::uint32_t head_dim) {
  codec_kernels k;
  if (!with_group_for<C>(
          head_dim, [&](auto e) { k = Source::template of<typename decltype(e)::type>(head_dim); }))
    throw std::invalid_argument("error: head dim " + std::to_string(head_dim) +
                                " is not a multiple of " + C::name + "'s block of " +
                                std::to_string(smallest_block<C>()) + " values (codec kernels)");
  return k;
}

template <class Set, class Source> codec_kernels kernels_from(codec_id id, std::uint32_t head_dim) {
  codec_kernels k;
  if (!Set::visit(id,
                  [&](auto c) { k = kernels_for<typename decltype(c)::type, Source>(head_dim); }))
    throw std::invalid_argument("error: " + codec_label(id) +
                                " is not in this cache's codec set (codec kernels)");
  return k;
}

}  // namespace detail

// The Highway kernels of codec type C for rows of head_dim values (grouped codecs with the
// group the head dim needs). Throws std::invalid_argument when head_dim does not fit.
template <class C> codec_kernels kernels_of(std::uint32_t head_dim) {
  return detail::kernels_for<C, detail::simd_kernels>(head_dim);
}
// The scalar reference kernels of codec type C.
template <class C> codec_kernels reference_kernels_of(std::uint32_t head_dim) {
  return detail::kernels_for<C, detail::reference_kernels>(head_dim);
}

// The kernels of the codec of Set whose id is `id` (a kernel_resolver for Set); throws
// std::invalid_argument for an id outside Set or a head dim that does not fit.
template <class Set> codec_kernels kernels_from(codec_id id, std::uint32_t head_dim) {
  return detail::kernels_from<Set, detail::simd_kernels>(id, head_dim);
}
template <class Set> codec_kernels reference_kernels_from(codec_id id, std::uint32_t head_dim) {
  return detail::kernels_from<Set, detail::reference_kernels>(id, head_dim);
}

// The kernels of a standard codec for rows of head_dim values: what tools and examples use.
inline codec_kernels make_kernel_table(codec_id id, std::uint32_t head_dim) {
  return kernels_from<standard_codecs>(id, head_dim);
}

}  // namespace strata
