// A codec family that specializes a kernel role without what the role requires (here an
// i8_reader with no D, query_t, kOffset, block or product): the kernels' entry point stops the
// build with the role's message (strata/kernels/roles-inl.hpp) instead of silently running the
// scalar path.
#include <strata/kernels/kernels.hpp>

namespace strata {
struct broken_q8 {  // q8_0's blocks under an id of its own
  static constexpr codec_id id = codec_id(251);
  static constexpr const char* name = "broken_q8";
  static constexpr std::size_t block_values = 32, block_bytes = q8_0::block_bytes;
  static constexpr bool rotated = false;
  using block = q8_0::block;
};
}  // namespace strata

template <> struct strata::kernels::family_of<strata::broken_q8> { using type = q8_family; };

HWY_BEFORE_NAMESPACE();
namespace strata::kernels::HWY_NAMESPACE {
template <> struct i8_reader<broken_q8> {
  struct state {};
};
}  // namespace strata::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

void score(const float* q, const void* keys, float* s) {
  strata::dot<strata::broken_q8>(q, 1, 32, keys, strata::q8_0::block_bytes, 1, s, 1);
}
