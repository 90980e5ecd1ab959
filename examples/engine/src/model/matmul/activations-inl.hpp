// Per Highway target: activations quantized for the integer path (engine::quantize_activations,
// model/matmul.hpp). Included by model/matmul.cpp only.

#if defined(ENGINE_MODEL_MATMUL_ACTIVATIONS_INL_HPP_) == defined(HWY_TARGET_TOGGLE)
#ifdef ENGINE_MODEL_MATMUL_ACTIVATIONS_INL_HPP_
#undef ENGINE_MODEL_MATMUL_ACTIVATIONS_INL_HPP_
#else
#define ENGINE_MODEL_MATMUL_ACTIVATIONS_INL_HPP_
#endif

#include <cstdint>

#include "model/matmul.hpp"
#include "model/matmul/common-inl.hpp"

HWY_BEFORE_NAMESPACE();
namespace engine {
namespace HWY_NAMESPACE {

// Activations: n_blocks blocks of 32 floats -> per block (64 bytes) either 32 int8 values c
// (one plane: step d = max|x| / 127), or (two planes) the coarse value c in steps of kActFine d
// with d = max|x| / (127 kActFine) and the remainder f in steps of d, stored as 32 int16
// kActFine * c + f; d; and d * (sum of the integer values) for each half.
template <bool kFine>
void quantize_blocks_act(const float* x, int64_t n_blocks, int8_t* q, float* d, float* sum16) {
  using DFq = hn::CappedTag<float, 16>;
  const DFq df;
  const hn::RebindToSigned<DFq> di;
  const hn::Rebind<int8_t, DFq> d8;
  const hn::Rebind<int16_t, DFq> d16;
  const size_t n = hn::Lanes(df);
  for (int64_t b = 0; b < n_blocks; ++b) {
    const float* v = x + b * 32;
    auto amax = hn::Zero(df);
    for (size_t k = 0; k < 32; k += n) amax = hn::Max(amax, hn::Abs(hn::LoadU(df, v + k)));
    const float m = hn::GetLane(hn::MaxOfLanes(df, amax));
    const float coarse = m / 127.0f, fine = kFine ? coarse / static_cast<float>(kActFine) : coarse;
    const auto inv = hn::Set(df, coarse > 0 ? 1.0f / coarse : 0.0f);
    const auto inv_fine = hn::Set(df, fine > 0 ? 1.0f / fine : 0.0f);
    const auto vcoarse = hn::Set(df, coarse);
    const auto lim = hn::Set(di, 127);
    auto s0 = hn::Zero(di), s1 = hn::Zero(di);
    for (size_t k = 0; k < 32; k += n) {
      const auto xv = hn::LoadU(df, v + k);
      const auto qc = hn::NearestInt(hn::Mul(xv, inv));
      if constexpr (!kFine) {
        if (k < 16)
          s0 = hn::Add(s0, qc);
        else
          s1 = hn::Add(s1, qc);
        hn::StoreU(hn::DemoteTo(d8, qc), d8, q + b * 64 + k);
        continue;
      }
      const auto rest = hn::NegMulAdd(hn::ConvertTo(df, qc), vcoarse, xv);  // |rest| <= coarse / 2
      const auto qf = hn::Min(hn::Max(hn::NearestInt(hn::Mul(rest, inv_fine)), hn::Neg(lim)), lim);
      const auto qv = hn::Add(hn::Mul(qc, hn::Set(di, kActFine)), qf);
      if (k < 16)
        s0 = hn::Add(s0, qv);
      else
        s1 = hn::Add(s1, qv);
      hn::StoreU(hn::DemoteTo(d16, qv), d16, reinterpret_cast<int16_t*>(q + b * 64) + k);
    }
    d[b] = fine;
    sum16[2 * b] = fine * static_cast<float>(hn::GetLane(hn::SumOfLanes(di, s0)));
    sum16[2 * b + 1] = fine * static_cast<float>(hn::GetLane(hn::SumOfLanes(di, s1)));
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace engine
HWY_AFTER_NAMESPACE();

#endif  // ENGINE_MODEL_MATMUL_ACTIVATIONS_INL_HPP_ toggle
