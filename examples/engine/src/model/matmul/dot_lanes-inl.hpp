// Per Highway target: the portable drivers, on any target: rows of a quantized weight through
// its `lanes` reader (int16 lanes, widening multiply-adds) and rows of float weights (f32 FMA).
// Included by model/matmul.cpp only.
//
// Per 32-value block of one weight row and one token:
//   y += sum_h d_h(W) * d(x) * sum_{16 values of half h} qw * qx  +  m_h(W) * sum16_h(x)
// where qw are the block's integer values (decoded to int16), d_h its scale for the half
// (legacy formats and Q4_K/Q5_K: one scale per 32; Q2_K/Q3_K/Q6_K: one per 16) and m_h the
// offset of formats that have one (Q4_1/Q5_1: +m; K-quants with mins: -dmin*m_j).

#if defined(ENGINE_MODEL_MATMUL_DOT_LANES_INL_HPP_) == defined(HWY_TARGET_TOGGLE)
#ifdef ENGINE_MODEL_MATMUL_DOT_LANES_INL_HPP_
#undef ENGINE_MODEL_MATMUL_DOT_LANES_INL_HPP_
#else
#define ENGINE_MODEL_MATMUL_DOT_LANES_INL_HPP_
#endif

#include <cstdint>
#include <type_traits>

#include "model/matmul/common-inl.hpp"
#include "model/matmul/floats-inl.hpp"

HWY_BEFORE_NAMESPACE();
namespace engine {
namespace HWY_NAMESPACE {
namespace {

// Activations [k, k + N) of block `blk` as int16: the stored kActFine * coarse + fine (at most
// 32385 in magnitude), or the coarse int8 value widened.
template <bool kFine> HWY_INLINE V16 act16(const int8_t* blk, size_t k) {
  const D16 d16;
  if constexpr (!kFine) return hn::PromoteTo(d16, hn::LoadU(DI8(), blk + k));
  return hn::LoadU(d16, reinterpret_cast<const int16_t*>(blk) + k);
}

// Rows [r0, r1) for tokens [t0, t0 + NT): the integer path of format F.
template <class F, int NT, bool kFine>
HWY_NOINLINE void rows_q(const job& jb, int64_t r0, int64_t r1, int64_t t0) {
  using R = typename F::lanes;
  const D16 d16;
  const D32 d32;
  const DF df;
  const size_t n16 = hn::Lanes(d16);
  constexpr int64_t kBlockValues = 32 * F::kSub;
  const int64_t n_super = jb.n_in / kBlockValues;
  const int64_t nb32 = jb.n_in / 32;
  const int8_t* xq[NT];
  const float* xd[NT];
  const float* xs[NT];
  for (int t = 0; t < NT; ++t) {
    xq[t] = jb.xq + (t0 + t) * 2 * jb.n_in;
    xd[t] = jb.xd + (t0 + t) * nb32;
    xs[t] = jb.xs + (t0 + t) * nb32 * 2;
  }
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* row = jb.w + static_cast<size_t>(r) * jb.row_bytes;
    hn::Vec<DF> acc[NT];
    float macc[NT];
    for (int t = 0; t < NT; ++t) {
      acc[t] = hn::Zero(df);
      macc[t] = 0;
    }
    for (int64_t sb = 0; sb < n_super; ++sb) {
      const R f(row + static_cast<size_t>(sb) * sizeof(typename F::block));
      for (int j = 0; j < F::kSub; ++j) {
        const int64_t blk = sb * F::kSub + j;
        hn::Vec<D32> s_lo[NT], s_hi[NT], s_lo1[NT], s_hi1[NT];
        for (int t = 0; t < NT; ++t) s_lo[t] = s_hi[t] = s_lo1[t] = s_hi1[t] = hn::Zero(d32);
        for (size_t k = 0; k < 16; k += n16) {
          V16 lo, hi;
          f.decode(j, k, lo, hi);
          for (int t = 0; t < NT; ++t) {
            const int8_t* x = xq[t] + blk * 64;
            const V16 x_lo = act16<kFine>(x, k), x_hi = act16<kFine>(x, 16 + k);
            s_lo[t] = hn::ReorderWidenMulAccumulate(d32, lo, x_lo, s_lo[t], s_lo1[t]);
            if constexpr (F::kSplit)
              s_hi[t] = hn::ReorderWidenMulAccumulate(d32, hi, x_hi, s_hi[t], s_hi1[t]);
            else
              s_lo[t] = hn::ReorderWidenMulAccumulate(d32, hi, x_hi, s_lo[t], s_lo1[t]);
          }
        }
        for (int t = 0; t < NT; ++t) {
          const float dx = xd[t][blk];
          const auto lo_sum = hn::ConvertTo(df, hn::RearrangeToOddPlusEven(s_lo[t], s_lo1[t]));
          acc[t] = hn::MulAdd(lo_sum, hn::Set(df, f.d_lo(j) * dx), acc[t]);
          if constexpr (F::kSplit) {
            const auto hi_sum = hn::ConvertTo(df, hn::RearrangeToOddPlusEven(s_hi[t], s_hi1[t]));
            acc[t] = hn::MulAdd(hi_sum, hn::Set(df, f.d_hi(j) * dx), acc[t]);
          }
          if constexpr (R::kMin)
            macc[t] += f.m_lo(j) * xs[t][2 * blk] + f.m_hi(j) * xs[t][2 * blk + 1];
        }
      }
    }
    for (int t = 0; t < NT; ++t)
      jb.y[(t0 + t) * jb.n_out + r] = hn::GetLane(hn::SumOfLanes(df, acc[t])) + macc[t];
  }
}

// Float weights: f32 FMA over full vectors, a scalar tail.
template <class F, int NT>
HWY_NOINLINE void rows_f(const job& jb, int64_t r0, int64_t r1, int64_t t0) {
  using W = typename F::scalar;
  const hn::ScalableTag<float> df;
  const hn::Rebind<W, decltype(df)> dw;
  const int64_t nl = static_cast<int64_t>(hn::Lanes(df));
  const int64_t n = jb.n_in, main = n - n % nl;
  for (int64_t r = r0; r < r1; ++r) {
    const W* row = reinterpret_cast<const W*>(jb.w + static_cast<size_t>(r) * jb.row_bytes);
    hn::Vec<decltype(df)> acc[NT];
    for (int t = 0; t < NT; ++t) acc[t] = hn::Zero(df);
    for (int64_t c = 0; c < main; c += nl) {
      hn::Vec<decltype(df)> w;
      if constexpr (std::is_same_v<W, float>)
        w = hn::LoadU(df, row + c);
      else
        w = hn::PromoteTo(df, hn::LoadU(dw, row + c));
      for (int t = 0; t < NT; ++t)
        acc[t] = hn::MulAdd(w, hn::LoadU(df, jb.xf + (t0 + t) * n + c), acc[t]);
    }
    for (int t = 0; t < NT; ++t) {
      float s = hn::GetLane(hn::SumOfLanes(df, acc[t]));
      for (int64_t c = main; c < n; ++c) s += load_scalar(row + c) * jb.xf[(t0 + t) * n + c];
      jb.y[(t0 + t) * jb.n_out + r] = s;
    }
  }
}

}  // namespace
}  // namespace HWY_NAMESPACE
}  // namespace engine
HWY_AFTER_NAMESPACE();

#endif  // ENGINE_MODEL_MATMUL_DOT_LANES_INL_HPP_ toggle
