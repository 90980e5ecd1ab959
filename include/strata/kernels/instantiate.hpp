#pragma once
// The body of strata::kernels' one translation unit (CMake generates a .cpp that includes this
// header): the Highway kernels of every precompiled codec type (strata/kernels/precompiled.hpp)
// for every target, which units compiled with STRATA_KERNELS_PRECOMPILED call. Taking each
// dispatch function's address instantiates it here; the array keeps them in the object file.

#ifndef STRATA_KERNELS_DEFINE
#define STRATA_KERNELS_DEFINE 1
#endif
#include <array>
#include <cstddef>

#include <strata/kernels/kernels.hpp>
#include <strata/kernels/precompiled.hpp>

namespace strata::kernels::detail {

inline constexpr std::size_t precompiled_count = [] {
  std::size_t n = 0;
  for_each_precompiled([&](auto) { ++n; });
  return n;
}();

struct dispatch_set {
  encode_fn (*encode)();
  decode_fn (*decode)();
  dot_fn (*dot)();
  axpy_fn (*axpy)();
};

// External linkage: the definitions stay in the library even where nothing here calls them.
extern const std::array<dispatch_set, precompiled_count> precompiled_dispatch;
const std::array<dispatch_set, precompiled_count> precompiled_dispatch = [] {
  std::array<dispatch_set, precompiled_count> a{};
  std::size_t i = 0;
  for_each_precompiled([&](auto t) {
    using C = typename decltype(t)::type;
    a[i++] = {&dispatch<C>::encode, &dispatch<C>::decode, &dispatch<C>::dot, &dispatch<C>::axpy};
  });
  return a;
}();

// The softmax loops (no codec), compiled here for the units that see declarations only.
struct softmax_set {
  max_fn (*max_of)();
  exp_sum_fn (*exp_sub_sum)();
};
extern const softmax_set precompiled_softmax;
const softmax_set precompiled_softmax = {&softmax_dispatch<>::max_of,
                                         &softmax_dispatch<>::exp_sub_sum};

}  // namespace strata::kernels::detail
