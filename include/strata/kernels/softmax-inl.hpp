// The softmax's two loops over a row of scores, per Highway target: the maximum, and the
// weights exp(s - m) with their sum (strata/reference/softmax.hpp is the scalar reference).
// A fragment of kernels-inl.hpp.
//
// Same bits as the reference: exp takes the reference's operations in its order, each product
// rounded on its own (GCC would contract an intrinsic multiply and add into an FMA where the
// target has one: a barrier after each product stops it on x86, where the reference, compiled
// for baseline x86-64, has no FMA); the weights are computed at full vector width, then added in
// the reference's order (4-lane blocks lane-wise, in order). The reference's last n % 4 values
// are computed in 4 lanes from a padded copy and added one by one.

HWY_BEFORE_NAMESPACE();
namespace strata::kernels::HWY_NAMESPACE {

#if HWY_TARGET != HWY_SCALAR
// a * b, rounded to f32 before any later add (no FMA contraction).
template <class V> HWY_INLINE V mul_rounded(V a, V b) {
  V p = hn::Mul(a, b);
#if HWY_ARCH_X86 && HWY_TARGET != HWY_EMU128
  asm("" : "+v"(p.raw));
#endif
  return p;
}

// Float lanes holding integers in int32 range -> int32, truncating. x86: the plain
// cvttps2dq (Highway's ConvertTo adds a fix-up for out-of-range lanes: five instructions where
// the exponent below is always within +-128).
template <class DI, class V> HWY_INLINE hn::Vec<DI> to_int_in_range(DI di, V v) {
#if HWY_ARCH_X86 && HWY_TARGET != HWY_EMU128
  if constexpr (sizeof(v.raw) == 16)
    return hn::Vec<DI>{_mm_cvttps_epi32(v.raw)};
  else if constexpr (sizeof(v.raw) == 32)
    return hn::Vec<DI>{_mm256_cvttps_epi32(v.raw)};
#if HWY_TARGET <= HWY_AVX3
  else if constexpr (sizeof(v.raw) == 64)
    return hn::Vec<DI>{_mm512_cvttps_epi32(v.raw)};
#endif
  else
#endif
    return hn::ConvertTo(di, v);
}

// reference::fast_exp lane-wise.
template <class D> HWY_INLINE hn::Vec<D> exp_lanes(D d, hn::Vec<D> x) {
  const hn::RebindToSigned<D> di;
  x = hn::Min(hn::Max(x, hn::Set(d, -87.0f)), hn::Set(d, 88.0f));
  const auto big = hn::Set(d, 12582912.0f);
  const auto n = hn::Sub(hn::Add(mul_rounded(x, hn::Set(d, 1.44269504088896341f)), big), big);
  auto r = hn::Sub(x, mul_rounded(n, hn::Set(d, 0.693359375f)));
  r = hn::Add(r, mul_rounded(n, hn::Set(d, 2.12194440e-4f)));
  auto p = hn::Set(d, 1.9875691500e-4f);
  p = hn::Add(mul_rounded(p, r), hn::Set(d, 1.3981999507e-3f));
  p = hn::Add(mul_rounded(p, r), hn::Set(d, 8.3334519073e-3f));
  p = hn::Add(mul_rounded(p, r), hn::Set(d, 4.1665795894e-2f));
  p = hn::Add(mul_rounded(p, r), hn::Set(d, 1.6666665459e-1f));
  p = hn::Add(mul_rounded(p, r), hn::Set(d, 5.0000001201e-1f));
  p = hn::Add(hn::Add(mul_rounded(mul_rounded(p, r), r), r), hn::Set(d, 1.0f));
  const auto e = hn::ShiftLeft<23>(hn::Add(to_int_in_range(di, n), hn::Set(di, 127)));
  return mul_rounded(p, hn::BitCast(d, e));
}
#endif  // HWY_TARGET != HWY_SCALAR

#if HWY_TARGET != HWY_SCALAR
// acc + the 4-lane blocks of w (stored at p) in order. x86: taken from the register by halves
// (loading them back from p right after the wider store missed the store forwarding: 44 % of
// exp_sub_sum's samples sat on that load on AMD Zen).
template <class D, class V4>
HWY_INLINE V4 add_blocks4(D d, V4 acc, [[maybe_unused]] hn::Vec<D> w, const float* p) {
#if HWY_ARCH_X86 && HWY_TARGET != HWY_EMU128
  constexpr std::size_t N = hn::MaxLanes(d);
  if constexpr (N == 4) {
    return hn::Add(acc, V4{w.raw});
  } else if constexpr (N == 8) {
    const hn::Half<D> dh;
    acc = hn::Add(acc, V4{hn::LowerHalf(dh, w).raw});
    return hn::Add(acc, V4{hn::UpperHalf(dh, w).raw});
  } else if constexpr (N == 16) {
    const hn::Half<D> dh;
    const hn::Half<decltype(dh)> dq;
    const auto lo = hn::LowerHalf(dh, w), hi = hn::UpperHalf(dh, w);
    acc = hn::Add(acc, V4{hn::LowerHalf(dq, lo).raw});
    acc = hn::Add(acc, V4{hn::UpperHalf(dq, lo).raw});
    acc = hn::Add(acc, V4{hn::LowerHalf(dq, hi).raw});
    return hn::Add(acc, V4{hn::UpperHalf(dq, hi).raw});
  }
#endif
  const hn::CappedTag<float, 4> d4;
  for (std::size_t k = 0; k < hn::Lanes(d); k += 4) acc = hn::Add(acc, hn::LoadU(d4, p + k));
  return acc;
}
#endif  // HWY_TARGET != HWY_SCALAR

struct softmax_kernels {
  // max of x[0..n), n > 0.
  static float max_of(const float* x, std::size_t n) {
#if HWY_TARGET == HWY_SCALAR
    return reference::softmax_max(x, n);
#else
    const hn::ScalableTag<float> d;
    const std::size_t N = hn::Lanes(d);
    float r = x[0];
    std::size_t j = 0;
    if (n >= N) {
      auto m = hn::LoadU(d, x);
      for (j = N; j + N <= n; j += N) m = hn::Max(m, hn::LoadU(d, x + j));
      r = hn::GetLane(hn::MaxOfLanes(d, m));
    }
    for (; j < n; ++j) r = x[j] > r ? x[j] : r;
    return r;
#endif
  }

  // x[j] = exp(x[j] - m) for j < n; returns the sum (the reference's bits on x86).
  static float exp_sub_sum(float* x, std::size_t n, float m) {
#if HWY_TARGET == HWY_SCALAR
    return reference::softmax_exp_sum(x, n, m);
#else
    const hn::ScalableTag<float> d;
    const hn::CappedTag<float, 4> d4;
    const std::size_t N = hn::Lanes(d);
    const auto vm = hn::Set(d, m);
    const auto vm4 = hn::Set(d4, m);
    auto acc = hn::Zero(d4);
    std::size_t j = 0;
    for (; j + N <= n; j += N) {
      const auto w = exp_lanes(d, hn::Sub(hn::LoadU(d, x + j), vm));
      hn::StoreU(w, d, x + j);
      acc = add_blocks4(d, acc, w, x + j);
    }
    for (; j + 4 <= n; j += 4) {
      const auto w = exp_lanes(d4, hn::Sub(hn::LoadU(d4, x + j), vm4));
      hn::StoreU(w, d4, x + j);
      acc = hn::Add(acc, w);
    }
    HWY_ALIGN float a[4];
    hn::Store(acc, d4, a);
    float sum = (a[0] + a[1]) + (a[2] + a[3]);
    if (j < n) {
      HWY_ALIGN float t[4] = {0.0f, 0.0f, 0.0f, 0.0f};
      std::memcpy(t, x + j, (n - j) * sizeof(float));
      hn::Store(exp_lanes(d4, hn::Sub(hn::Load(d4, t), vm4)), d4, t);
      for (std::size_t i = 0; j < n; ++i, ++j) {
        x[j] = t[i];
        sum += t[i];
      }
    }
    return sum;
#endif
  }
};

}  // namespace strata::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();
