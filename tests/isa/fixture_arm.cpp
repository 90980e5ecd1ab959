// Fixture for the instruction gate on AArch64 (isa_gate.py, run by .ci/aarch64.sh): an
// Advanced SIMD `sdot` (the dotprod feature, which Highway 1.0.3's NEON check does not test and
// a Cortex-A72 lacks) in the namespace of ISA_FIXTURE_NS (N_NEON: refused; N_SVE2 code may not
// run it either, since no check proves dotprod there).
#include <arm_neon.h>

namespace strata_isa_fixture::ISA_FIXTURE_NS {

#if ISA_FIXTURE_DOTPROD
__attribute__((noinline, target("arch=armv8.2-a+dotprod")))
#else
__attribute__((noinline))
#endif
int32x4_t
dot_i8(int32x4_t acc, int8x16_t a, int8x16_t b) {
#if ISA_FIXTURE_DOTPROD
  asm("sdot %0.4s, %1.16b, %2.16b" : "+w"(acc) : "w"(a), "w"(b));
#else
  acc = vaddq_s32(acc, vpaddlq_s16(vpaddlq_s8(vmulq_s8(a, b))));
#endif
  return acc;
}

}  // namespace strata_isa_fixture::ISA_FIXTURE_NS
