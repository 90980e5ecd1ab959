#pragma once
// The body of strata::kernels' translation units (CMake generates one .cpp per part, each
// defining STRATA_KERNELS_PART and STRATA_KERNELS_PARTS before including this header): the
// Highway kernels of every precompiled codec type (strata/kernels/precompiled.hpp) for every
// target, which units compiled with STRATA_KERNELS_PRECOMPILED call. Part P holds the types at
// positions P, P + PARTS, ... Taking each dispatch function's address instantiates it here;
// the array keeps them in the object file.

// strata::kernels also compiles Highway's AVX3_DL target (AVX-512 VNNI: Ice Lake, Zen 4), for
// the integer dot only (kernels-inl.hpp: its other kernels are AVX3's). Here only: header-only
// units keep Highway's default targets (every unit of a program that compiles the kernels
// must see the same targets), and this must come before any Highway header.
#ifndef HWY_WANT_AVX3_DL
#define HWY_WANT_AVX3_DL
#endif
#ifndef STRATA_KERNELS_DEFINE
#define STRATA_KERNELS_DEFINE 1
#endif
#ifndef STRATA_KERNELS_PART
#define STRATA_KERNELS_PART 0
#define STRATA_KERNELS_PARTS 1
#endif
#include <array>
#include <cstddef>

#include <strata/kernels/kernels.hpp>
#include <strata/kernels/precompiled.hpp>

namespace strata::kernels::detail {

static_assert(STRATA_KERNELS_PART < STRATA_KERNELS_PARTS,
              "strata::kernels: STRATA_KERNELS_PART must be below STRATA_KERNELS_PARTS");

struct dispatch_set {
  encode_fn (*encode)();
  decode_fn (*decode)();
  dot_fn (*dot)();
  axpy_fn (*axpy)();
};

namespace {
constexpr std::size_t part = STRATA_KERNELS_PART, parts = STRATA_KERNELS_PARTS;
constexpr std::size_t part_count = [] {
  std::size_t n = 0;
  for_each_precompiled_part<part, parts>([&](auto) { ++n; });
  return n;
}();
}  // namespace

// One array per part, named by it (external linkage: the definitions stay in the library even
// where nothing here calls them).
#define STRATA_KERNELS_JOIN2(a, b) a##b
#define STRATA_KERNELS_JOIN(a, b) STRATA_KERNELS_JOIN2(a, b)
#define STRATA_KERNELS_ARRAY STRATA_KERNELS_JOIN(precompiled_dispatch_, STRATA_KERNELS_PART)
extern const std::array<dispatch_set, part_count> STRATA_KERNELS_ARRAY;
const std::array<dispatch_set, part_count> STRATA_KERNELS_ARRAY = [] {
  std::array<dispatch_set, part_count> a{};
  std::size_t i = 0;
  for_each_precompiled_part<part, parts>([&](auto t) {
    using C = typename decltype(t)::type;
    a[i++] = {&dispatch<C>::encode, &dispatch<C>::decode, &dispatch<C>::dot, &dispatch<C>::axpy};
  });
  return a;
}();
#undef STRATA_KERNELS_ARRAY

// The key-tile kernels of the part's tiled codecs (strata/codec/key_tile.hpp).
struct tile_dispatch_set {
  dot_fn (*tile_dot)();
  axpy_fn (*tile_axpy)();
};
namespace {
constexpr std::size_t tiled_count = [] {
  std::size_t n = 0;
  for_each_precompiled_part<part, parts>([&](auto t) {
    if constexpr (tiled_codec<typename decltype(t)::type>) ++n;
  });
  return n;
}();
}  // namespace
#define STRATA_KERNELS_TILES STRATA_KERNELS_JOIN(precompiled_tiles_, STRATA_KERNELS_PART)
extern const std::array<tile_dispatch_set, tiled_count> STRATA_KERNELS_TILES;
const std::array<tile_dispatch_set, tiled_count> STRATA_KERNELS_TILES = [] {
  std::array<tile_dispatch_set, tiled_count> a{};
  std::size_t i = 0;
  for_each_precompiled_part<part, parts>([&](auto t) {
    using C = typename decltype(t)::type;
    if constexpr (tiled_codec<C>) a[i++] = {&dispatch<C>::tile_dot, &dispatch<C>::tile_axpy};
  });
  return a;
}();
#undef STRATA_KERNELS_TILES
#undef STRATA_KERNELS_JOIN
#undef STRATA_KERNELS_JOIN2

#if STRATA_KERNELS_PART == 0
// The softmax loops (no codec), compiled here for the units that see declarations only (in
// part 0 only: the set is defined once).
struct softmax_set {
  max_fn (*max_of)();
  exp_sum_fn (*exp_sub_sum)();
};
extern const softmax_set precompiled_softmax;
const softmax_set precompiled_softmax = {&softmax_dispatch<>::max_of,
                                         &softmax_dispatch<>::exp_sub_sum};
// The prefill path's matrix products (no codec), likewise.
struct gemm_set {
  gemm_fn (*gemm)();
  gemm_nt_fn (*gemm_nt)();
};
extern const gemm_set precompiled_gemm;
const gemm_set precompiled_gemm = {&gemm_dispatch<>::gemm, &gemm_dispatch<>::gemm_nt};
#endif

}  // namespace strata::kernels::detail
