// Per Highway target: the float weight formats F32, F16 and BF16 (one value per block): the
// stored element type and its scalar read. Included by model/matmul.cpp only.

#if defined(ENGINE_MODEL_MATMUL_FLOATS_INL_HPP_) == defined(HWY_TARGET_TOGGLE)
#ifdef ENGINE_MODEL_MATMUL_FLOATS_INL_HPP_
#undef ENGINE_MODEL_MATMUL_FLOATS_INL_HPP_
#else
#define ENGINE_MODEL_MATMUL_FLOATS_INL_HPP_
#endif

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "model/matmul/common-inl.hpp"

HWY_BEFORE_NAMESPACE();
namespace engine {
namespace HWY_NAMESPACE {
namespace {

template <> struct weight_format<ggml_type::F32> { using scalar = float; };
template <> struct weight_format<ggml_type::F16> { using scalar = hwy::float16_t; };
template <> struct weight_format<ggml_type::BF16> { using scalar = hwy::bfloat16_t; };

// One stored element as float (the rows' scalar tail).
template <class W> HWY_INLINE float load_scalar(const W* p) {
  if constexpr (std::is_same_v<W, float>) {
    return *p;
  } else if constexpr (std::is_same_v<W, hwy::float16_t>) {
    uint16_t h;
    std::memcpy(&h, p, 2);
    return half_to_float(h);
  } else {
    uint16_t h;
    std::memcpy(&h, p, 2);
    return bf16_to_float(h);
  }
}

}  // namespace
}  // namespace HWY_NAMESPACE
}  // namespace engine
HWY_AFTER_NAMESPACE();

#endif  // ENGINE_MODEL_MATMUL_FLOATS_INL_HPP_ toggle
