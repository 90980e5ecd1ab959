#pragma once
// strata::kernel_table: the kernels of one codec for one head dim, chosen at run time from a
// codec_id, once per layer (hot loops call through it and never switch on the codec).

#include <cstddef>
#include <stdexcept>
#include <string>

#include <strata/codec/codec_id.hpp>
#include <strata/kernels/kernels.hpp>

namespace strata {

struct kernel_table {
  kernels::detail::encode_fn encode = nullptr;  // strata::encode<Codec>
  kernels::detail::decode_fn decode = nullptr;  // strata::decode<Codec>
  kernels::detail::dot_fn dot = nullptr;        // strata::dot<Codec>
  kernels::detail::axpy_fn axpy = nullptr;      // strata::axpy<Codec>
  std::size_t block_values = 0;
  std::size_t block_bytes = 0;
  bool rotated = false;
  const char* name = "";
  codec_id id{};

  template <kernels::kernel_codec Codec>
  static constexpr kernel_table of() {
    return {&strata::encode<Codec>, &strata::decode<Codec>, &strata::dot<Codec>,
            &strata::axpy<Codec>,   Codec::block_values,    Codec::block_bytes,
            Codec::rotated,         Codec::name,            Codec::id};
  }
};

namespace kernels::detail {
template <int B>
kernel_table turbo_table(std::size_t head_dim) {
  if (head_dim % 128 == 0) return kernel_table::of<turbo<B, 128>>();
  if (head_dim % 64 == 0) return kernel_table::of<turbo<B, 64>>();
  if (head_dim % 32 == 0) return kernel_table::of<turbo<B, 32>>();
  return kernel_table::of<turbo<B, 16>>();
}
inline kernel_table vq2_table(std::size_t head_dim) {
  if (head_dim % 128 == 0) return kernel_table::of<vq2<128>>();
  if (head_dim % 64 == 0) return kernel_table::of<vq2<64>>();
  if (head_dim % 32 == 0) return kernel_table::of<vq2<32>>();
  return kernel_table::of<vq2<16>>();
}
}  // namespace kernels::detail

// The kernels for `id` on rows of `head_dim` values. Throws std::invalid_argument naming the
// codec and the head dim when the head dim is not a whole number of the codec's blocks.
inline kernel_table make_kernel_table(codec_id id, std::size_t head_dim) {
  kernel_table t;
  switch (id) {
    case codec_id::f32: t = kernel_table::of<f32>(); break;
    case codec_id::f16: t = kernel_table::of<f16>(); break;
    case codec_id::bf16: t = kernel_table::of<bf16>(); break;
    case codec_id::q8_0: t = kernel_table::of<q8_0>(); break;
    case codec_id::q4_0: t = kernel_table::of<q4_0>(); break;
    case codec_id::turbo2: t = kernels::detail::turbo_table<2>(head_dim); break;
    case codec_id::turbo3: t = kernels::detail::turbo_table<3>(head_dim); break;
    case codec_id::turbo4: t = kernels::detail::turbo_table<4>(head_dim); break;
    case codec_id::vq2: t = kernels::detail::vq2_table(head_dim); break;
    default:
      throw std::invalid_argument("error: unknown codec id " + std::to_string(int(id)) +
                                  " (strata::make_kernel_table, head dim " +
                                  std::to_string(head_dim) + ")");
  }
  if (head_dim == 0 || head_dim % t.block_values != 0)
    throw std::invalid_argument(std::string("error: codec ") + t.name + " cannot store head dim " +
                                std::to_string(head_dim) + " (blocks of " +
                                std::to_string(t.block_values) +
                                " values; strata::make_kernel_table)");
  return t;
}

}  // namespace strata
