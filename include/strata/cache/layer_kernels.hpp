#pragma once
// The per-layer function table of the cache: one codec's encode/decode/dot/axpy plus its
// layout, resolved once per layer when the cache is built. Hot loops call through these
// pointers; nothing switches on the codec per token, block or element.
//
// Signatures follow docs/formats.md:
//   encode(x, n, out)  decode(in, n, x)
//   dot(q, n_q, dim, keys, key_stride, n_keys, scores, score_stride)
//   axpy(w, n_q, w_stride, values, value_stride, n_values, dim, out)

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include <strata/cache/codec_layout.hpp>
#include <strata/kernels/kernels.hpp>
#include <strata/reference/reference.hpp>

namespace strata {

struct codec_kernels {
  codec_layout layout;
  void (*encode)(const float* x, std::size_t n, void* out) = nullptr;
  void (*decode)(const void* in, std::size_t n, float* x) = nullptr;
  void (*dot)(const float* q, std::size_t n_q, std::size_t dim, const void* keys,
              std::size_t key_stride, std::size_t n_keys, float* scores,
              std::size_t score_stride) = nullptr;
  void (*axpy)(const float* w, std::size_t n_q, std::size_t w_stride, const void* values,
               std::size_t value_stride, std::size_t n_values, std::size_t dim,
               float* out) = nullptr;
};

namespace detail {

// turbo<B, G, CB> and vq2<G> with the group the cache uses for a head dim (the largest of 128,
// 64, 32, 16 that divides it); other codecs are unchanged.
template <class C, int G>
struct with_group {
  using type = C;
};
template <int B, int G0, class CB, int G>
struct with_group<turbo<B, G0, CB>, G> {
  using type = turbo<B, G, CB>;
};
template <int G0, int G>
struct with_group<vq2<G0>, G> {
  using type = vq2<G>;
};
template <class C>
inline constexpr bool is_turbo = false;  // a grouped codec: turbo or vq2
template <int B, int G, class CB>
inline constexpr bool is_turbo<turbo<B, G, CB>> = true;
template <int G>
inline constexpr bool is_turbo<vq2<G>> = true;

template <class C>
codec_kernels reference_kernels_exact(std::uint32_t head_dim) {
  codec_kernels k;
  k.layout = layout_of_type<C>(head_dim);
  k.encode = &reference::encode<C>;
  k.decode = &reference::decode<C>;
  k.dot = &reference::dot<C>;
  k.axpy = &reference::axpy<C>;
  return k;
}

template <class C>
codec_kernels simd_kernels_exact(std::uint32_t head_dim) {
  codec_kernels k;
  k.layout = layout_of_type<C>(head_dim);
  k.encode = &strata::encode<C>;
  k.decode = &strata::decode<C>;
  k.dot = &strata::dot<C>;
  k.axpy = &strata::axpy<C>;
  return k;
}

// The kernels of codec type C (Exact: the kernels of one exact codec type) for rows of
// head_dim values; turbo gets the group the head dim needs.
template <class C, template <class> class Exact>
codec_kernels kernels_for(std::uint32_t head_dim) {
  if constexpr (is_turbo<C>) {
    if (head_dim % 128 == 0) return Exact<typename with_group<C, 128>::type>::get(head_dim);
    if (head_dim % 64 == 0) return Exact<typename with_group<C, 64>::type>::get(head_dim);
    if (head_dim % 32 == 0) return Exact<typename with_group<C, 32>::type>::get(head_dim);
    if (head_dim % 16 == 0) return Exact<typename with_group<C, 16>::type>::get(head_dim);
  } else {
    if (head_dim > 0 && head_dim % C::block_values == 0) return Exact<C>::get(head_dim);
  }
  throw std::invalid_argument("error: head dim " + std::to_string(head_dim) +
                              " is not a multiple of " + C::name + "'s block of " +
                              std::to_string(C::block_values) + " values (cache layer kernels)");
}
template <class C>
struct reference_exact {
  static codec_kernels get(std::uint32_t d) { return reference_kernels_exact<C>(d); }
};
template <class C>
struct simd_exact {
  static codec_kernels get(std::uint32_t d) { return simd_kernels_exact<C>(d); }
};

template <template <class> class Exact, class... Codecs>
codec_kernels kernels_from(codec_id id, std::uint32_t head_dim) {
  codec_kernels out;
  bool found = false;
  ((!found && Codecs::id == id ? (out = kernels_for<Codecs, Exact>(head_dim), found = true)
                               : false),
   ...);
  if (!found)
    throw std::invalid_argument("error: codec " + std::string(codec_name(id)) +
                                " is not in this cache's codec set (cache layer kernels)");
  return out;
}

}  // namespace detail

// The scalar reference kernels of codec type C for rows of head_dim values (turbo: with the
// group the head dim needs). Throws std::invalid_argument when head_dim does not fit.
template <class C>
codec_kernels reference_kernels_of(std::uint32_t head_dim) {
  return detail::kernels_for<C, detail::reference_exact>(head_dim);
}
// The Highway kernels (dynamic dispatch) of codec type C.
template <class C>
codec_kernels kernels_of(std::uint32_t head_dim) {
  return detail::kernels_for<C, detail::simd_exact>(head_dim);
}

// kernel_resolvers for a fixed set of codec types: the kernels of the first of Codecs...
// whose id is `id`.
template <class... Codecs>
codec_kernels reference_kernels_from(codec_id id, std::uint32_t head_dim) {
  return detail::kernels_from<detail::reference_exact, Codecs...>(id, head_dim);
}
template <class... Codecs>
codec_kernels kernels_from(codec_id id, std::uint32_t head_dim) {
  return detail::kernels_from<detail::simd_exact, Codecs...>(id, head_dim);
}

// The scalar reference kernels of the standard codec `id`.
inline codec_kernels reference_kernels(codec_id id, std::uint32_t head_dim) {
  return reference_kernels_from<f32, f16, bf16, q8_0, q4_0, turbo<2>, turbo<3>, turbo<4>,
                                vq2<>>(id, head_dim);
}

// The kernels the cache uses for the standard codec `id`: Highway, dispatched per call.
inline codec_kernels layer_kernels(codec_id id, std::uint32_t head_dim) {
  return kernels_from<f32, f16, bf16, q8_0, q4_0, turbo<2>, turbo<3>, turbo<4>, vq2<>>(id,
                                                                                    head_dim);
}

}  // namespace strata
