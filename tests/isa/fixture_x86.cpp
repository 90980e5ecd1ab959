// Fixtures for the instruction gate (isa_gate.py): one function in a Highway target namespace
// that executes vpdpbusd. ISA_FIXTURE_NS names the namespace (N_AVX3_DL, N_AVX3) and
// ISA_FIXTURE_VEX picks the VEX encoding (AVX-VNNI, proven by no run-time check) instead of
// EVEX (AVX-512 VNNI, proven by AVX3_DL's). gate_selftest.py states what the gate must say
// about each; the known-bad one is the VEX form in AVX3_DL code, the encoding that raised SIGILL
// on AVX-512 CPUs without AVX-VNNI.
#include <immintrin.h>

namespace strata_isa_fixture::ISA_FIXTURE_NS {

__attribute__((noinline, target("avx2,avx512f,avx512vl"))) __m256i dot_u8_i8(__m256i acc, __m256i u,
                                                                             __m256i c) {
#if ISA_FIXTURE_VEX
  asm("%{vex%} vpdpbusd %2, %1, %0" : "+x"(acc) : "x"(u), "x"(c));
#else
  asm("%{evex%} vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(u), "v"(c));
#endif
  return acc;
}

}  // namespace strata_isa_fixture::ISA_FIXTURE_NS
