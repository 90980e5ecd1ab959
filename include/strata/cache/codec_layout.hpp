#pragma once
// The storage layout of a codec for one head dim: values and bytes per block, bytes per row,
// whether rows are rotated. This is what the cache allocates and what a policy report counts;
// it needs no kernels.
//
// turbo and vq2 codecs use the largest group G in {128, 64, 32, 16} that divides the head dim
// (docs/formats.md). A head dim that is not a whole number of blocks is refused with an error
// naming the head dim and the codec.

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include <strata/codec/codec_id.hpp>
#include <strata/codec/f32.hpp>
#include <strata/codec/f16.hpp>
#include <strata/codec/bf16.hpp>
#include <strata/codec/q8_0.hpp>
#include <strata/codec/q4_0.hpp>
#include <strata/codec/turbo.hpp>
#include <strata/codec/vq2.hpp>

namespace strata {

struct codec_layout {
  codec_id id{};
  std::size_t block_values = 0;
  std::size_t block_bytes = 0;
  std::size_t row_bytes = 0;  // bytes of one head vector
  bool rotated = false;

  double bits_per_value() const { return 8.0 * double(block_bytes) / double(block_values); }
};

namespace detail {
template <class C>
constexpr codec_layout layout_of_type(std::uint32_t head_dim) {
  return {C::id, C::block_values, C::block_bytes, head_dim / C::block_values * C::block_bytes,
          C::rotated};
}

template <int G>
constexpr codec_layout vq2_layout(std::uint32_t head_dim) {
  return layout_of_type<vq2<G>>(head_dim);
}
constexpr codec_layout vq2_layout_for(std::uint32_t head_dim) {
  if (head_dim % 128 == 0) return vq2_layout<128>(head_dim);
  if (head_dim % 64 == 0) return vq2_layout<64>(head_dim);
  if (head_dim % 32 == 0) return vq2_layout<32>(head_dim);
  return vq2_layout<16>(head_dim);
}

template <int B>
constexpr codec_layout turbo_layout(std::uint32_t head_dim) {
  if (head_dim % 128 == 0) return layout_of_type<turbo<B, 128>>(head_dim);
  if (head_dim % 64 == 0) return layout_of_type<turbo<B, 64>>(head_dim);
  if (head_dim % 32 == 0) return layout_of_type<turbo<B, 32>>(head_dim);
  return layout_of_type<turbo<B, 16>>(head_dim);
}
}  // namespace detail

// Throws std::invalid_argument when head_dim is not a whole number of the codec's blocks.
inline codec_layout layout_of(codec_id id, std::uint32_t head_dim) {
  codec_layout l;
  switch (id) {  // once per layer, when a cache or report is built
    case codec_id::f32: l = detail::layout_of_type<f32>(head_dim); break;
    case codec_id::f16: l = detail::layout_of_type<f16>(head_dim); break;
    case codec_id::bf16: l = detail::layout_of_type<bf16>(head_dim); break;
    case codec_id::q8_0: l = detail::layout_of_type<q8_0>(head_dim); break;
    case codec_id::q4_0: l = detail::layout_of_type<q4_0>(head_dim); break;
    case codec_id::turbo2: l = detail::turbo_layout<2>(head_dim); break;
    case codec_id::turbo3: l = detail::turbo_layout<3>(head_dim); break;
    case codec_id::turbo4: l = detail::turbo_layout<4>(head_dim); break;
    case codec_id::vq2: l = detail::vq2_layout_for(head_dim); break;
    default:
      throw std::invalid_argument("error: unknown codec id " + std::to_string(int(id)) +
                                  " (layout_of)");
  }
  if (head_dim == 0 || head_dim % l.block_values != 0)
    throw std::invalid_argument("error: head dim " + std::to_string(head_dim) +
                                " is not a multiple of " + std::string(codec_name(id)) +
                                "'s block of " + std::to_string(l.block_values) +
                                " values (layout_of)");
  return l;
}

}  // namespace strata
