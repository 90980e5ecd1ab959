// Every Highway kernel against its scalar reference, on every SIMD target this CPU supports
// and this build generated (hwy::SupportedAndGeneratedTargets()), for every codec, several
// head dims, odd key counts and 1, 4 and 5 queries per call.
//   encode, decode: bit-exact against strata::reference (same arithmetic).
//   dot, f32/f16/bf16: within float rounding of the exact (f64) strata::reference::dot.
//   dot, q8_0/q4_0/turbo: within float reassociation of kernels::int8_dot_reference (the same
//     integer arithmetic), and within the stated bound of the exact reference::dot.
//   axpy: within float rounding of strata::reference::axpy (f64 accumulation); where the
//     integer V product runs (int8_v codecs on x86 AVX2/AVX3), bit for bit
//     kernels::int8_axpy_reference and within its stated bound of strata::reference::axpy.
//   gemm_f32 (the prefill path's matrix product): the bits of reference::gemm_f32 on targets
//     with FMA, within float rounding on the others.

// strata::kernels compiles the AVX3_DL target (its integer dot): see it here too, so the
// per-target loops run it (must come before any Highway header).
#define HWY_WANT_AVX3_DL
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <strata/codec/key_tile.hpp>
#include <strata/kernels/int8_axpy.hpp>
#include <strata/kernels/int8_dot.hpp>
#include <strata/kernels/kernel_table.hpp>
#include <strata/kernels/tile_scan.hpp>

#include <strata/reference/gemm.hpp>
#include <strata/reference/reference.hpp>
#include <strata/reference/softmax.hpp>
#include "../support/codec_cases.hpp"
#include "../support/int8_v.hpp"
#include "../support/targets.hpp"

namespace {

using namespace strata;

// Gaussian values with a few outlier channels (20x), like real keys.
std::vector<float> make_rows(std::size_t n_rows, std::size_t dim, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> x(n_rows * dim);
  for (std::size_t r = 0; r < n_rows; ++r)
    for (std::size_t c = 0; c < dim; ++c) x[r * dim + c] = nd(rng) * (c % 37 == 5 ? 20.0f : 1.0f);
  if (!x.empty()) x[0] = 0.0f;
  if (n_rows > 2)
    std::fill(x.begin() + std::ptrdiff_t(dim), x.begin() + std::ptrdiff_t(2 * dim), 0.0f);
  return x;
}

// Encodes rows of `dim` values into rows of key_stride bytes (row bytes + padding).
template <class Codec>
std::vector<unsigned char> encode_rows(const std::vector<float>& x, std::size_t dim,
                                       std::size_t stride) {
  const std::size_t n_rows = x.size() / dim;
  std::vector<unsigned char> out(n_rows * stride + 1, 0xAB);
  for (std::size_t r = 0; r < n_rows; ++r)
    reference::encode<Codec>(&x[r * dim], dim, &out[r * stride]);
  return out;
}

template <class Codec> std::vector<float> decode_row(const unsigned char* row, std::size_t dim) {
  std::vector<float> v(dim);
  reference::decode<Codec>(row, dim, v.data());
  return v;
}

template <class Codec> void check_encode_decode(std::size_t dim) {
  constexpr std::size_t rows = 300;
  const std::size_t n = dim * rows;
  auto x = make_rows(rows, dim, 11);
  for (std::size_t r = 3; r < rows; ++r)  // magnitudes from 1e-3 to 1e3
    for (std::size_t c = 0; c < dim; ++c) x[r * dim + c] *= std::pow(10.0f, float(int(r % 7) - 3));
  x[3] = 1e-30f;   // subnormal after scaling
  x[4] = -7.5e4f;  // beyond f16's range
  x[5] = std::numeric_limits<float>::quiet_NaN();
  x[6] = std::numeric_limits<float>::infinity();
  x[dim + 1] = -std::numeric_limits<float>::infinity();
  for (std::size_t i = 0; i < dim && 2 * dim + i < n; ++i)
    x[2 * dim + i] = (i % 3 == 0) ? -2.5f : 2.5f;  // ties
  const std::size_t bytes = n / Codec::block_values * Codec::block_bytes;
  std::vector<unsigned char> a(bytes + 8, 0x5A), b(bytes + 8, 0x5A);
  strata::encode<Codec>(x.data(), n, a.data());
  reference::encode<Codec>(x.data(), n, b.data());
  CHECK_MESSAGE(std::memcmp(a.data(), b.data(), a.size()) == 0, "encode ", std::string(Codec::name),
                " dim ", dim);
  std::vector<float> da(n + 1, -3.0f), db(n + 1, -3.0f);
  strata::decode<Codec>(b.data(), n, da.data());
  reference::decode<Codec>(b.data(), n, db.data());
  CHECK_MESSAGE(std::memcmp(da.data(), db.data(), da.size() * sizeof(float)) == 0, "decode ",
                std::string(Codec::name), " dim ", dim);
}

template <class Codec> void check_dot(std::size_t dim, std::size_t n_keys, std::size_t n_q) {
  constexpr bool is_float = std::is_same_v<kernels::family_t<Codec>, kernels::float_family>;
  const std::size_t stride = dim / Codec::block_values * Codec::block_bytes + 8;  // padded, aligned
  const auto keys_f = make_rows(n_keys, dim, std::uint32_t(n_keys * 31 + dim));
  const auto keys = encode_rows<Codec>(keys_f, dim, stride);
  const auto q = make_rows(n_q, dim, std::uint32_t(n_q + 7));
  const std::size_t ss = n_keys + 3;
  std::vector<float> got(n_q * ss, -1.0f), exact(n_q * ss, -1.0f), same(n_q * ss, -1.0f);
  strata::dot<Codec>(q.data(), n_q, dim, keys.data(), stride, n_keys, got.data(), ss);
  reference::dot<Codec>(q.data(), n_q, dim, keys.data(), stride, n_keys, exact.data(), ss);
  if constexpr (!is_float)
    kernels::int8_dot_reference<Codec>(q.data(), n_q, dim, keys.data(), stride, n_keys, same.data(),
                                       ss);
  // x86 AVX2 and up run the 4-key integer dot (kernels/dot_i8-inl.hpp) for blocks of 64 values
  // or more (AVX3_DL: also q8_0 and q4_0): the reference's arithmetic in its order, so its bits.
  if constexpr (!is_float) {
    const std::int64_t t = hwy::SupportedTargets();
    const bool four_keys =
        (Codec::block_values >= 64 && (t & (HWY_AVX2 | HWY_AVX3 | HWY_AVX3_DL)) != 0) ||
        ((std::is_same_v<Codec, q8_0> || std::is_same_v<Codec, q4_0>)&&(t & HWY_AVX3_DL) != 0);
    if (four_keys && HWY_ARCH_X86) {
      std::size_t differ = 0;
      for (std::size_t i = 0; i < n_q; ++i)
        for (std::size_t j = 0; j < n_keys; ++j)
          differ += std::memcmp(&got[i * ss + j], &same[i * ss + j], sizeof(float)) != 0;
      CHECK_MESSAGE(differ == 0, "dot ", std::string(Codec::name), " dim ", dim, " keys ", n_keys,
                    " n_q ", n_q, ": ", differ, " scores differ from int8_dot_reference's bits");
    }
  }
  // Per score: sum |q||k| (scale of float rounding) and the int8 bound.
  bool ok = true;
  for (std::size_t j = 0; j < n_keys && ok; ++j) {
    const auto k = decode_row<Codec>(&keys[j * stride], dim);
    for (std::size_t i = 0; i < n_q; ++i) {
      double mag = 0, kabs = 0;
      for (std::size_t c = 0; c < dim; ++c) mag += std::fabs(double(q[i * dim + c]) * k[c]);
      const float g = got[i * ss + j], e = exact[i * ss + j];
      if constexpr (is_float) {
        ok = std::fabs(double(g) - e) <= 1e-6 * mag + 1e-30;
      } else {
        // Same integer arithmetic: only the order of float additions differs. The kernels
        // convert int32 lane sums to float before adding the lanes, and readers with an
        // offset (q4_0: nibble = k + 8; turbo: codebook + 64) put -offset * sum(q) in one
        // lane, so the rounding scales with dk * dq * offset * sum |q| as well as with mag.
        double offset_mag = 0;
        constexpr bool is_vq = std::is_same_v<kernels::family_t<Codec>, kernels::vq_family>;
        if constexpr (std::is_same_v<Codec, q4_0> || is_vq ||
                      std::is_same_v<kernels::family_t<Codec>, kernels::turbo_family>) {
          constexpr std::size_t V = Codec::block_values;
          double offset = 8;  // q4_0: nibble = k + 8; vq2: odd integer + 8
          if constexpr (!std::is_same_v<Codec, q4_0> && !is_vq)
            offset = kernels::turbo_traits<Codec>::codebook_offset;
          for (std::size_t b = 0; b < dim / V; ++b) {
            typename Codec::block blk;
            std::memcpy(&blk, &keys[j * stride + b * Codec::block_bytes], sizeof blk);
            double dk = 0;
            if constexpr (std::is_same_v<Codec, q4_0>)
              dk = f16_to_f32(blk.d);
            else if constexpr (is_vq)
              dk = 0.5 * f16_to_f32(blk.scale);
            else
              dk = f16_to_f32(blk.scale) * kernels::turbo_traits<Codec>::unit;
            double qabs = 0;
            for (std::size_t c = b * V; c < (b + 1) * V; ++c) qabs += std::fabs(q[i * dim + c]);
            offset_mag += std::fabs(dk) * offset * qabs;
          }
        }
        ok = std::fabs(double(g) - same[i * ss + j]) <= 1e-6 * (mag + offset_mag) + 1e-30;
        // Bound against the exact product: per block, query rounding dq/2 per element times
        // |k|, plus (turbo) codebook rounding scale*unit/2 per element times |q| + dq/2.
        double bound = 0;
        constexpr std::size_t V = Codec::block_values;
        for (std::size_t b = 0; b < dim / V; ++b) {
          float amax = 0, qabs = 0;
          kabs = 0;
          for (std::size_t c = b * V; c < (b + 1) * V; ++c) {
            amax = std::max(amax, std::fabs(q[i * dim + c]));
            qabs += std::fabs(q[i * dim + c]);
            kabs += std::fabs(k[c]);
          }
          const double dq = amax / 127.0;
          bound += dq / 2 * kabs;
          if constexpr (std::is_same_v<kernels::family_t<Codec>, kernels::turbo_family>) {
            typename Codec::block blk;
            std::memcpy(&blk, &keys[j * stride + b * Codec::block_bytes], sizeof blk);
            const double kerr = f16_to_f32(blk.scale) * kernels::turbo_traits<Codec>::unit / 2;
            bound += kerr * (qabs + V * dq / 2);
          }
        }
        ok = ok && std::fabs(double(g) - e) <= bound * (1 + 1e-5) + 1e-6 * mag + 1e-30;
      }
      if (!ok) {
        FAIL_CHECK("dot ", std::string(Codec::name), " dim ", dim, " keys ", n_keys, " n_q ", n_q,
                   " key ", j, " query ", i, ": got ", g, " exact ", e, " same-arith ",
                   same[i * ss + j], " diff ", double(g) - same[i * ss + j], " mag ", mag);
        break;
      }
    }
  }
  // Nothing written outside the scores.
  for (std::size_t i = 0; i < n_q; ++i)
    for (std::size_t j = n_keys; j < ss; ++j) CHECK(got[i * ss + j] == -1.0f);
}

template <class Codec> void check_axpy(std::size_t dim, std::size_t n_values, std::size_t n_q) {
  const std::size_t stride = dim / Codec::block_values * Codec::block_bytes + 4;  // padded, aligned
  const auto vf = make_rows(n_values, dim, std::uint32_t(n_values + dim));
  const auto values = encode_rows<Codec>(vf, dim, stride);
  const std::size_t ws = n_values + 1;
  std::vector<float> w(n_q * ws);
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> ud(-1.0f, 1.0f);
  for (auto& x : w) x = ud(rng);
  std::vector<float> got(n_q * dim), want(n_q * dim);
  for (std::size_t i = 0; i < got.size(); ++i) got[i] = want[i] = float(i % 7) - 3.0f;
  strata::axpy<Codec>(w.data(), n_q, ws, values.data(), stride, n_values, dim, got.data());
  reference::axpy<Codec>(w.data(), n_q, ws, values.data(), stride, n_values, dim, want.data());
  std::vector<double> mag(n_q * dim, 0.0);
  for (std::size_t j = 0; j < n_values; ++j) {
    const auto v = decode_row<Codec>(&values[j * stride], dim);
    for (std::size_t i = 0; i < n_q; ++i)
      for (std::size_t c = 0; c < dim; ++c) mag[i * dim + c] += std::fabs(w[i * ws + j] * v[c]);
  }
  std::vector<double> bound(n_q * dim, 0.0);
  if constexpr (kernels::int8_v<Codec>) {
    if (strata_test::int8_v_here<Codec>()) {
      // The same arithmetic as int8_axpy_reference, bit for bit ...
      std::vector<float> same(n_q * dim);
      for (std::size_t i = 0; i < same.size(); ++i) same[i] = float(i % 7) - 3.0f;
      kernels::int8_axpy_reference<Codec>(w.data(), n_q, ws, values.data(), stride, n_values, dim,
                                          same.data());
      CHECK_MESSAGE(std::memcmp(got.data(), same.data(), got.size() * sizeof(float)) == 0,
                    "int8 axpy ", std::string(Codec::name), " dim ", dim, " values ", n_values,
                    " n_q ", n_q);
      // ... and within its bound of the exact product: per group of keys, the weights' rounding
      // (d / 2 each, d = the group's max |w f| / 127) times |u - offset|, and per value the
      // image's rounding |f| / 2 times |w|.
      constexpr std::size_t V = Codec::block_values;
      constexpr int o = kernels::v8_block<Codec>::offset;
      std::vector<float> f(n_values);
      std::vector<std::vector<std::uint8_t>> us(n_values, std::vector<std::uint8_t>(V));
      for (std::size_t b = 0; b < dim / V; ++b) {
        for (std::size_t j = 0; j < n_values; ++j) {
          typename Codec::block blk;
          std::memcpy(&blk, &values[j * stride + b * sizeof blk], sizeof blk);
          f[j] = kernels::v8_block<Codec>::unpack(blk, us[j].data());
        }
        for (std::size_t i = 0; i < n_q; ++i)
          for (std::size_t j0 = 0; j0 < n_values; j0 += kernels::kV8Group) {
            const std::size_t j1 = std::min(n_values, j0 + kernels::kV8Group);
            double m = 0;
            for (std::size_t j = j0; j < j1; ++j)
              m = std::max(m, std::fabs(double(w[i * ws + j]) * f[j]));
            for (std::size_t j = j0; j < j1; ++j)
              for (std::size_t c = 0; c < V; ++c)
                bound[i * dim + b * V + c] += m / 127 / 2 * std::abs(int(us[j][c]) - o) +
                                              std::fabs(double(w[i * ws + j]) * f[j]) / 2;
          }
      }
    }
  }
  for (std::size_t e = 0; e < got.size(); ++e) {
    if (!(std::fabs(double(got[e]) - want[e]) <= bound[e] * (1 + 1e-5) + 1e-6 * (mag[e] + 3.0))) {
      FAIL_CHECK("axpy ", std::string(Codec::name), " dim ", dim, " values ", n_values, " n_q ",
                 n_q, " element ", e, ": got ", got[e], " want ", want[e]);
      break;
    }
  }
}

// The long case's key count: 1000, or STRATA_TEST_LONG_KEYS (.ci/aarch64.sh: 131 under qemu,
// where the long case was most of the stage; every loop, remainder and prefetch distance of
// the kernels is still crossed, and the Arm kernels have no longer-range structure).
std::size_t long_keys() {
  static const std::size_t n = [] {
    const char* env = std::getenv("STRATA_TEST_LONG_KEYS");
    if (env == nullptr || *env == '\0') return std::size_t(1000);
    char* end = nullptr;
    const unsigned long v = std::strtoul(env, &end, 10);
    REQUIRE_MESSAGE((*end == '\0' && v >= 100 && v <= 100000),
                    "STRATA_TEST_LONG_KEYS must be a whole number in 100..100000, not '", env, "'");
    return std::size_t(v);
  }();
  return n;
}

template <class Codec> void check_codec(const std::vector<std::size_t>& dims) {
  const std::size_t n_long = long_keys();
  for (std::size_t dim : dims) {
    check_encode_decode<Codec>(dim);
    for (std::size_t n_keys : {std::size_t(1), std::size_t(7), std::size_t(33), n_long})
      for (std::size_t n_q : {1, 3, 4, 5, 6, 7}) {  // tiles of 1, 3, 4, 4 + 1, 4 + 2, 4 + 3
        if (n_keys == n_long && n_q != 5 && n_q != 3 && n_q != 6) continue;
        check_dot<Codec>(dim, n_keys, n_q);
        check_axpy<Codec>(dim, n_keys, n_q);
      }
  }
}

}  // namespace

// Head dims per variant: whole rows of 1, 2 or more blocks and odd lengths for element codecs.
template <class C> std::vector<std::size_t> test_dims() {
  if constexpr (C::block_values == 1)
    return {128, 8, 13};
  else if constexpr (!strata::grouped_codec<C>)
    return {128, C::block_values, 3 * C::block_values};
  else if constexpr (C::block_values == 128)
    return {128, 256};
  else if constexpr (C::block_values == 64)
    return {64, 192};
  else if constexpr (C::block_values == 32)
    return {96};
  else
    return {5 * C::block_values};
}

// Whether some non-alias codec of standard_codecs gives S with a group of the ladder (then its
// own test case checks S's kernels).
template <class S> constexpr bool on_the_ladder() {
  bool found = false;
  standard_codecs::for_each([&](auto t) {
    using C = typename decltype(t)::type;
    if constexpr (!aliased_codec<C>)
      for_each_group_variant<C>(
          [&](auto v) { found = found || std::is_same_v<typename decltype(v)::type, S>; });
  });
  return found;
}

// An alias (q8_0r, turbo4g32) runs its storage type's kernels: the same bytes and results
// through the alias as through the storage type, on the current target.
template <class A> void check_alias(std::size_t dim) {
  using S = storage_t<A>;
  const std::size_t n = 7, row = dim / A::block_values * A::block_bytes;
  const auto x = make_rows(n, dim, 77);
  std::vector<unsigned char> a(n * row), b(n * row);
  strata::encode<A>(x.data(), n * dim, a.data());
  strata::encode<S>(x.data(), n * dim, b.data());
  CHECK(a == b);
  std::vector<float> da(n * dim), db(n * dim);
  strata::decode<A>(a.data(), n * dim, da.data());
  strata::decode<S>(b.data(), n * dim, db.data());
  CHECK(da == db);
  const auto q = make_rows(5, dim, 78);
  std::vector<float> sa(5 * n), sb(5 * n);
  strata::dot<A>(q.data(), 5, dim, a.data(), row, n, sa.data(), n);
  strata::dot<S>(q.data(), 5, dim, b.data(), row, n, sb.data(), n);
  CHECK(sa == sb);
  std::vector<float> oa(5 * dim, 0.0f), ob(5 * dim, 0.0f);
  strata::axpy<A>(sb.data(), 5, n, a.data(), row, n, dim, oa.data());
  strata::axpy<S>(sb.data(), 5, n, b.data(), row, n, dim, ob.data());
  CHECK(oa == ob);
}

// Every codec of standard_codecs, with every group the ladder gives it, against the reference
// on every target: one test case per codec (a codec added to the set is tested here with no
// edit), which .ci/aarch64.sh runs as separate processes under qemu. An alias is checked to
// run its storage type's kernels; a storage type no ladder gives (turbo<B, 256>) is checked
// against the reference too, at one head dim (qemu's SVE is slow).
TEST_CASE_TEMPLATE_DEFINE("kernels: a standard codec matches the reference on every target", Case,
                          kernels_match_reference) {
  using C = strata_test::codec_of<standard_codecs, Case>;
  strata_test::for_each_target([] {
    if constexpr (aliased_codec<C>) {
      using S = storage_t<C>;
      INFO("codec ", C::name, ", stored as ", S::name, " with blocks of ", S::block_values);
      check_alias<C>(2 * C::block_values);
      if constexpr (!on_the_ladder<S>()) check_codec<S>({S::block_values});
    } else {
      for_each_group_variant<C>([](auto v) {
        using V = typename decltype(v)::type;
        INFO("codec ", V::name, ", groups of ", V::block_values);
        check_codec<V>(test_dims<V>());
      });
    }
  });
}
TEST_CASE_TEMPLATE_APPLY(kernels_match_reference, strata_test::codec_cases<standard_codecs>);

// The softmax loops (strata::softmax_max / softmax_exp_sum) against reference/softmax.hpp: the
// same bits on x86 (the golden attention outputs rely on it), within 1e-6 relative elsewhere
// (the Arm reference may be contracted into FMAs by the compiler). Lengths around each vector
// width, scores from -120 (below exp's clamp) up to the maximum.
TEST_CASE("kernels: the softmax loops match the reference on every target") {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> ud(-30.0f, 12.0f);
  for (const std::size_t n :
       {1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 257, 2048}) {
    std::vector<float> s(n);
    for (auto& v : s) v = ud(rng);
    if (n > 3) s[n / 3] = -120.0f;
    const float m_ref = reference::softmax_max(s.data(), n);
    std::vector<float> w_ref = s;
    const float sum_ref = reference::softmax_exp_sum(w_ref.data(), n, m_ref);
    strata_test::for_each_target([&] {
      INFO("n = ", n);
      const float m = softmax_max(s.data(), n);
      CHECK(m == m_ref);
      std::vector<float> w = s;
      const float sum = softmax_exp_sum(w.data(), n, m_ref);
#if HWY_ARCH_X86
      CHECK(std::memcmp(&sum, &sum_ref, sizeof sum) == 0);
      CHECK(std::memcmp(w.data(), w_ref.data(), n * sizeof(float)) == 0);
#else
      CHECK(std::fabs(sum - sum_ref) <= 1e-6f * sum_ref);
      for (std::size_t j = 0; j < n; ++j) CHECK(std::fabs(w[j] - w_ref[j]) <= 1e-6f * w_ref[j]);
#endif
    });
  }
}

// strata::gemm_f32 and gemm_nt_f32 against reference/gemm.hpp: shapes around every block size (rows
// 1-13 over the 6-row blocks, columns over 1-4 vectors and a scalar tail, k from 1 to 257), strided
// operands, overwrite and accumulate. Same bits where the target has FMA (x86 AVX2/AVX3, Arm);
// SSE4 and SSSE3 multiply and add apart: within float rounding there. A wrong element, a missed
// row or column, or a lost accumulate would be far off.
TEST_CASE("kernels: the f32 matrix product matches the reference on every target") {
  std::mt19937 rng(11);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  struct shape {
    std::size_t m, n, k;
  };
  for (const shape sh :
       {shape{1, 1, 1}, shape{5, 17, 3}, shape{6, 64, 128}, shape{7, 65, 128}, shape{13, 128, 256},
        shape{12, 131, 33}, shape{3, 16, 257}, shape{32, 256, 128}, shape{11, 200, 64}}) {
    const std::size_t lda = sh.k + 3, ldb = sh.n + 5, ldc = sh.n + 2;
    std::vector<float> a(sh.m * lda), b(sh.k * ldb), c0(sh.m * ldc);
    for (auto& v : a) v = nd(rng);
    for (auto& v : b) v = nd(rng);
    for (auto& v : c0) v = nd(rng);
    for (const bool accumulate : {false, true}) {
      std::vector<float> want = c0;
      reference::gemm_f32(a.data(), lda, b.data(), ldb, want.data(), ldc, sh.m, sh.n, sh.k,
                          accumulate);
      strata_test::for_each_target([&] {
        INFO("m ", sh.m, " n ", sh.n, " k ", sh.k, " accumulate ", accumulate);
        std::vector<float> got = c0;
        gemm_f32(a.data(), lda, b.data(), ldb, got.data(), ldc, sh.m, sh.n, sh.k, accumulate);
        // (the one target forced: SupportedTargets() is just it)
        const bool fma = (hwy::SupportedTargets() & (HWY_SSE4 | HWY_SSSE3 | HWY_EMU128)) == 0;
        std::size_t bad = 0;
        for (std::size_t i = 0; i < sh.m; ++i)
          for (std::size_t j = 0; j < ldc; ++j) {
            const float x = got[i * ldc + j], y = want[i * ldc + j];
            if (j >= sh.n) {
              bad += x != c0[i * ldc + j];  // padding untouched
            } else if (fma) {
              bad += std::memcmp(&x, &y, sizeof x) != 0;
            } else {
              bad += std::fabs(x - y) > 1e-5f * (std::fabs(y) + std::sqrt(float(sh.k)));
            }
          }
        CHECK(bad == 0);
      });
    }
    // gemm_nt: b's rows as columns (b read as n x k with row stride lda here), against the f64
    // sums within float rounding of the sum of |terms|.
    std::vector<float> want_f(sh.m * ldc);
    reference::gemm_nt_f32(a.data(), lda, b.data(), lda, want_f.data(), ldc, sh.m,
                           std::min(sh.n, b.size() / lda), sh.k);
    const std::size_t n_nt = std::min(sh.n, b.size() / lda);
    strata_test::for_each_target([&] {
      INFO("gemm_nt m ", sh.m, " n ", n_nt, " k ", sh.k);
      std::vector<float> got = c0;
      gemm_nt_f32(a.data(), lda, b.data(), lda, got.data(), ldc, sh.m, n_nt, sh.k);
      std::size_t bad = 0;
      for (std::size_t i = 0; i < sh.m; ++i)
        for (std::size_t j = 0; j < ldc; ++j) {
          if (j >= n_nt) {
            bad += got[i * ldc + j] != c0[i * ldc + j];
            continue;
          }
          double mag = 0;
          for (std::size_t p = 0; p < sh.k; ++p)
            mag += std::fabs(double(a[i * lda + p]) * double(b[j * lda + p]));
          bad += std::fabs(double(got[i * ldc + j]) - double(want_f[i * ldc + j])) >
                 1e-6 * mag + 1e-30;
        }
      CHECK(bad == 0);
    });
  }
}

// Key tiles (strata/codec/key_tile.hpp): rows survive the tile layout byte for byte, and the
// scan kernels give strata/kernels/tile_scan.hpp's bits on every target (partial first and last
// tiles, 1-5 query rows, signed and softmax-like weights; groups of 64 and 128 over one or two
// blocks), within the tables' stated bound of
// the exact product (dot) and near the exact weighted sum (V).
template <class Codec> void check_tiles(std::size_t dim) {
  constexpr std::size_t G = Codec::block_values;
  const std::size_t nb = dim / G, row = nb * Codec::block_bytes, n_rows = 100;
  INFO("codec ", Codec::name, ", groups of ", G, ", dim ", dim);
  const auto x = make_rows(n_rows, dim, std::uint32_t(dim + 3));
  const auto rows = encode_rows<Codec>(x, dim, row);
  // 4 tiles (128 rows); the 28 beyond the last row hold junk the kernels must not use
  std::vector<unsigned char> tiles(4 * tile_rows * row, 0xFF);
  rows_to_tiles<Codec>(rows.data(), n_rows, nb, tiles.data());
  std::vector<unsigned char> back(n_rows * row + 1, 0xAB);
  tiles_to_rows<Codec>(tiles.data(), 0, n_rows, nb, back.data());
  CHECK(std::memcmp(back.data(), rows.data(), n_rows * row) == 0);

  std::mt19937 rng(5);
  std::uniform_real_distribution<float> ud(0.0f, 1.0f);
  for (const std::size_t n_q : {1, 3, 4, 5}) {
    const auto q = make_rows(n_q, dim, std::uint32_t(n_q * 13 + dim));
    for (const auto& [first, n] : {std::pair<std::size_t, std::size_t>{0, 100},
                                   {5, 60},
                                   {31, 2},
                                   {32, 32},
                                   {7, 1},
                                   {64, 36},
                                   {40, 60}}) {  // pairs of tiles: (1 only), (2, 3)
      INFO("n_q ", n_q, " keys ", first, "..", first + n);
      const std::size_t ss = n + 2;
      std::vector<float> ref(n_q * ss, -1.0f);
      kernels::tile_dot_reference<Codec>(q.data(), n_q, dim, tiles.data(), first, n, ref.data(),
                                         ss);
      // against the exact product with the decoded keys: per dimension at most s * delta / 2
      std::vector<float> exact(n_q * ss);
      reference::dot<Codec>(q.data(), n_q, dim, rows.data() + first * row, row, n, exact.data(),
                            ss);
      kernels::tile_query tq;
      for (std::size_t i = 0; i < n_q; ++i) {
        kernels::make_tile_query<Codec>(q.data() + i * dim, dim, tq);
        for (std::size_t k = 0; k < n; ++k) {
          const auto* blk =
              reinterpret_cast<const typename Codec::block*>(&rows[(first + k) * row]);
          double bound = 0, mag = 0;
          for (std::size_t b = 0; b < nb; ++b) {
            const double s = std::fabs(f16_to_f32(blk[b].scale));
            bound += s * double(G) * tq.delta * 0.5;
            for (std::size_t c = 0; c < G; ++c) mag += s * std::fabs(q[i * dim + b * G + c]) * 3.0;
          }
          CHECK(std::fabs(double(ref[i * ss + k]) - exact[i * ss + k]) <=
                bound * 1.001 + 1e-5 * mag);
        }
      }
      std::vector<float> w(n_q * n);
      for (auto& v : w) v = ud(rng) * ud(rng);
      std::vector<float> wn = w;  // signed weights too
      for (std::size_t k = 0; k < wn.size(); k += 3) wn[k] = -wn[k];
      std::vector<float> vref(n_q * dim, 0.25f), vref_n(n_q * dim, 0.25f);
      kernels::tile_axpy_reference<Codec>(w.data(), n_q, n, tiles.data(), first, n, dim,
                                          vref.data());
      kernels::tile_axpy_reference<Codec>(wn.data(), n_q, n, tiles.data(), first, n, dim,
                                          vref_n.data());
      std::vector<float> vexact(n_q * dim, 0.25f);
      reference::axpy<Codec>(w.data(), n_q, n, rows.data() + first * row, row, n, dim,
                             vexact.data());
      double e2 = 0, n2 = 0;
      for (std::size_t c = 0; c < vexact.size(); ++c) {
        e2 += (double(vref[c]) - vexact[c]) * (double(vref[c]) - vexact[c]);
        n2 += (double(vexact[c]) - 0.25) * (double(vexact[c]) - 0.25);
      }
      CHECK(std::sqrt(e2 / n2) < 0.02);  // 8-bit weights, 7-bit codebook image
      strata_test::for_each_target([&] {
        std::vector<float> got(n_q * ss, -1.0f);
        tile_dot<Codec>(q.data(), n_q, dim, tiles.data(), first, n, got.data(), ss);
        CHECK(std::memcmp(got.data(), ref.data(), got.size() * sizeof(float)) == 0);
        std::vector<float> v(n_q * dim, 0.25f), v_n(n_q * dim, 0.25f);
        tile_axpy<Codec>(w.data(), n_q, n, tiles.data(), first, n, dim, v.data());
        tile_axpy<Codec>(wn.data(), n_q, n, tiles.data(), first, n, dim, v_n.data());
        CHECK(std::memcmp(v.data(), vref.data(), v.size() * sizeof(float)) == 0);
        CHECK(std::memcmp(v_n.data(), vref_n.data(), v_n.size() * sizeof(float)) == 0);
      });
    }
  }
}

TEST_CASE("kernels: key tiles (turbo4) keep rows and match the scan reference on every target") {
  check_tiles<turbo<4, 64>>(64);
  check_tiles<turbo<4, 64>>(128);
  check_tiles<turbo<4, 128>>(128);
  check_tiles<turbo<4, 128>>(256);
}

TEST_CASE("kernels: every target was exercised") { strata_test::check_targets_exercised(); }

TEST_CASE("make_kernel_table: codec id and head dim give the codec's kernels") {
  struct expect {
    codec_id id;
    std::size_t dim, values, bytes;
    const char* name;
  };
  for (const auto& e : {expect{codec_id::f32, 8, 1, 4, "f32"},
                        expect{codec_id::f16, 64, 1, 2, "f16"},
                        expect{codec_id::bf16, 80, 1, 2, "bf16"},
                        expect{codec_id::q8_0, 128, 32, 34, "q8_0"},
                        expect{codec_id::q4_0, 96, 32, 18, "q4_0"},
                        expect{codec_id::turbo2, 128, 128, 34, "turbo2"},
                        expect{codec_id::turbo3, 256, 128, 50, "turbo3"},
                        expect{codec_id::turbo4, 64, 64, 34, "turbo4"},
                        expect{codec_id::turbo4, 96, 32, 18, "turbo4"},
                        expect{codec_id::turbo3, 80, 16, 8, "turbo3"},
                        expect{codec_id::vq2, 128, 128, 34, "vq2"},
                        expect{codec_id::vq2, 64, 64, 18, "vq2"},
                        expect{codec_id::vq2, 80, 16, 6, "vq2"},
                        expect{codec_id::q8_0r, 64, 32, 34, "q8_0r"},
                        expect{codec_id::q4_0r, 96, 32, 18, "q4_0r"},
                        expect{codec_id::turbo5, 64, 64, 42, "turbo5"},
                        expect{codec_id::turbo5, 256, 128, 82, "turbo5"},
                        expect{codec_id::turbo4g32, 64, 32, 18, "turbo4g32"},
                        expect{codec_id::turbo3g256, 256, 256, 98, "turbo3g256"},
                        expect{codec_id::turbo5g64, 192, 64, 42, "turbo5g64"},
                        expect{codec_id::turbo6, 64, 64, 50, "turbo6"},
                        expect{codec_id::turbo6, 256, 128, 98, "turbo6"},
                        expect{codec_id::turbo6, 80, 16, 14, "turbo6"}}) {
    const codec_kernels t = make_kernel_table(e.id, std::uint32_t(e.dim));
    CHECK(t.layout.block_values == e.values);
    CHECK(t.layout.block_bytes == e.bytes);
    CHECK(codec_name(t.layout.id) == e.name);
    CHECK(t.layout.id == e.id);
    CHECK(t.layout.rotated == (e.id >= codec_id::turbo2));
    // The table's kernels are the codec's: encode -> decode -> dot through the table.
    const auto x = make_rows(3, e.dim, 9);
    const std::size_t row = t.layout.row_bytes;
    CHECK(row == e.dim / e.values * e.bytes);
    std::vector<unsigned char> enc(3 * row);
    t.encode(x.data(), 3 * e.dim, enc.data());
    std::vector<float> dec(3 * e.dim), s(3), s2(3);
    t.decode(enc.data(), 3 * e.dim, dec.data());
    t.dot(x.data() + 2 * e.dim, 1, e.dim, enc.data(), row, 3, s.data(), 3);
    std::vector<float> out(e.dim, 0.0f);
    const float w[3] = {0.0f, 0.0f, 1.0f};
    t.axpy(w, 1, 3, enc.data(), row, 3, e.dim, out.data());
    double d1 = 0, n1 = 0, dmax = 0;
    const bool int8 = strata_test::int8_v_here(e.id, e.dim);
    for (std::size_t c = 0; c < e.dim; ++c)
      dmax = std::max(dmax, double(std::fabs(dec[2 * e.dim + c])));
    for (std::size_t c = 0; c < e.dim; ++c) {
      d1 += double(x[2 * e.dim + c]) * dec[2 * e.dim + c];
      n1 += double(x[2 * e.dim + c]) * x[2 * e.dim + c];
      // The integer V product (turbo2/3/4 on x86 AVX2/AVX3, by group: int8_v_on) reads the
      // 7-bit codebook image: within 1/126 of the largest centroid times the scale (3 % of the
      // row's largest value here).
      if (int8)
        CHECK(std::fabs(double(out[c]) - dec[2 * e.dim + c]) <= 0.03 * dmax);
      else
        CHECK(out[c] == doctest::Approx(dec[2 * e.dim + c]).epsilon(1e-6));
    }
    CHECK(s[2] == doctest::Approx(d1).epsilon(0.02).scale(n1));
  }
}

TEST_CASE("make_kernel_table: a head dim that is not whole blocks is refused naming both") {
  for (auto [id, dim] :
       {std::pair{codec_id::q8_0, std::size_t(8)}, std::pair{codec_id::q4_0, std::size_t(80)},
        std::pair{codec_id::turbo4, std::size_t(8)}, std::pair{codec_id::turbo2, std::size_t(0)},
        std::pair{codec_id::vq2, std::size_t(8)}, std::pair{codec_id::q4_0r, std::size_t(80)},
        std::pair{codec_id::turbo4g256, std::size_t(64)},
        std::pair{codec_id::turbo4g64, std::size_t(96)},
        std::pair{codec_id::turbo5g32, std::size_t(16)},
        std::pair{codec_id::turbo6, std::size_t(8)}}) {
    try {
      (void)make_kernel_table(id, std::uint32_t(dim));
      FAIL("no exception for ", codec_name(id), " head dim ", dim);
    } catch (const std::invalid_argument& e) {
      const std::string msg = e.what();
      CHECK(msg.find(std::string(codec_name(id))) != std::string::npos);
      CHECK(msg.find("head dim " + std::to_string(dim)) != std::string::npos);
    }
  }
  CHECK_THROWS_WITH_AS(make_kernel_table(codec_id(200), 128), doctest::Contains("codec id 200"),
                       std::invalid_argument);
  CHECK_THROWS_AS(strata::dot<q8_0>(nullptr, 1, 40, nullptr, 0, 0, nullptr, 0),
                  std::invalid_argument);
}

namespace {
// Relative RMS errors of scores over Gaussian keys/queries (d = 128): the codec's own error
// (exact product with the decoded keys vs the f32 keys) and the extra error of the kernel's
// integer arithmetic (kernel vs exact product with the decoded keys).
template <class Codec> std::pair<double, double> dot_errors() {
  constexpr std::size_t dim = 128, n_keys = 2000, n_q = 4;
  const auto kf = make_rows(n_keys, dim, 21);
  std::vector<float> keys_f(kf);
  std::mt19937 rng(8);
  std::normal_distribution<float> nd;
  for (auto& v : keys_f) v = nd(rng);  // no outliers: rotated keys are close to Gaussian
  const std::size_t row = dim / Codec::block_values * Codec::block_bytes;
  std::vector<unsigned char> keys(n_keys * row);
  strata::encode<Codec>(keys_f.data(), keys_f.size(), keys.data());
  std::vector<float> q(n_q * dim);
  for (auto& v : q) v = nd(rng);
  std::vector<float> fast(n_q * n_keys), exact(n_q * n_keys), truth(n_q * n_keys);
  strata::dot<Codec>(q.data(), n_q, dim, keys.data(), row, n_keys, fast.data(), n_keys);
  reference::dot<Codec>(q.data(), n_q, dim, keys.data(), row, n_keys, exact.data(), n_keys);
  reference::dot<f32>(q.data(), n_q, dim, keys_f.data(), dim * 4, n_keys, truth.data(), n_keys);
  double e_codec = 0, e_kernel = 0, t2 = 0;
  for (std::size_t i = 0; i < fast.size(); ++i) {
    e_codec += (double(exact[i]) - truth[i]) * (double(exact[i]) - truth[i]);
    e_kernel += (double(fast[i]) - exact[i]) * (double(fast[i]) - exact[i]);
    t2 += double(truth[i]) * truth[i];
  }
  return {std::sqrt(e_codec / t2), std::sqrt(e_kernel / t2)};
}

// The integer dot's key image alone: the MSE of dk * cb_i8[index] (int8_block, the 7-bit
// codebook image) against the decoded keys, over the codec's own MSE against the f32 keys, on
// Gaussian rows (d = 128).
template <class Codec> double image_mse_ratio() {
  constexpr std::size_t dim = 128, n_keys = 2000;
  std::mt19937 rng(9);
  std::normal_distribution<float> nd;
  std::vector<float> x(n_keys * dim);
  for (auto& v : x) v = nd(rng);
  std::vector<typename Codec::block> blocks(x.size() / Codec::block_values);
  reference::encode<Codec>(x.data(), x.size(), blocks.data());
  std::vector<float> y(x.size());
  reference::decode<Codec>(blocks.data(), x.size(), y.data());
  double e_codec = 0, e_image = 0;
  std::int8_t k[Codec::block_values];
  for (std::size_t b = 0; b < blocks.size(); ++b) {
    const float dk = kernels::int8_block<Codec>::unpack(blocks[b], k);
    for (std::size_t i = 0; i < Codec::block_values; ++i) {
      const std::size_t e = b * Codec::block_values + i;
      e_codec += (double(y[e]) - x[e]) * (double(y[e]) - x[e]);
      e_image += (double(dk) * k[i] - y[e]) * (double(dk) * k[i] - y[e]);
    }
  }
  return e_image / e_codec;
}

template <class Codec> void report_dot_error(double max_ratio) {
  const auto [codec, kernel] = dot_errors<Codec>();
  MESSAGE(std::string(Codec::name), ": relative RMS score error, codec ", codec,
          ", int8 kernel extra ", kernel, " (ratio ", kernel / codec, ")");
  CHECK(kernel <= max_ratio * codec);
}
}  // namespace

// The key-tile dot (fast scan, 8-bit tables of products) against the row layout's integer dot
// (int8 queries, 7-bit codebook image): each one's extra relative RMS score error over the
// codec's own, turbo4 at head dims 64 and 128 (Gaussian keys and queries).
template <class Codec> void report_tile_dot_error(std::size_t dim) {
  constexpr std::size_t n_keys = 2048, n_q = 4;
  std::mt19937 rng(8);
  std::normal_distribution<float> nd;
  std::vector<float> keys_f(n_keys * dim), q(n_q * dim);
  for (auto& v : keys_f) v = nd(rng);
  for (auto& v : q) v = nd(rng);
  const std::size_t nb = dim / Codec::block_values, row = nb * Codec::block_bytes;
  std::vector<unsigned char> keys(n_keys * row), tiles(n_keys * row);
  strata::encode<Codec>(keys_f.data(), keys_f.size(), keys.data());
  rows_to_tiles<Codec>(keys.data(), n_keys, nb, tiles.data());
  std::vector<float> rows(n_q * n_keys), tiled(n_q * n_keys), exact(n_q * n_keys),
      truth(n_q * n_keys);
  strata::dot<Codec>(q.data(), n_q, dim, keys.data(), row, n_keys, rows.data(), n_keys);
  tile_dot<Codec>(q.data(), n_q, dim, tiles.data(), 0, n_keys, tiled.data(), n_keys);
  reference::dot<Codec>(q.data(), n_q, dim, keys.data(), row, n_keys, exact.data(), n_keys);
  reference::dot<f32>(q.data(), n_q, dim, keys_f.data(), dim * 4, n_keys, truth.data(), n_keys);
  double e_codec = 0, e_rows = 0, e_tiles = 0, t2 = 0;
  for (std::size_t i = 0; i < exact.size(); ++i) {
    e_codec += (double(exact[i]) - truth[i]) * (double(exact[i]) - truth[i]);
    e_rows += (double(rows[i]) - exact[i]) * (double(rows[i]) - exact[i]);
    e_tiles += (double(tiled[i]) - exact[i]) * (double(tiled[i]) - exact[i]);
    t2 += double(truth[i]) * truth[i];
  }
  e_codec = std::sqrt(e_codec / t2), e_rows = std::sqrt(e_rows / t2),
  e_tiles = std::sqrt(e_tiles / t2);
  MESSAGE(std::string(Codec::name), " dim ", dim, ": relative RMS score error, codec ", e_codec,
          ", row int8 dot extra ", e_rows, ", key-tile dot extra ", e_tiles);
  CHECK(e_tiles <= 0.25 * e_codec);  // the row dot's bar for turbo4
}

TEST_CASE("kernels: the key-tile dot adds little error to the codec's own") {
  report_tile_dot_error<turbo<4, 64>>(64);
  report_tile_dot_error<turbo<4, 128>>(128);
}

TEST_CASE("kernels: the integer dot adds little error to the codec's own") {
  report_dot_error<turbo<4>>(0.25);
  report_dot_error<turbo<3>>(0.15);
  report_dot_error<turbo<2>>(0.1);
  report_dot_error<q4_0>(0.15);
  report_dot_error<q8_0>(1.0);
  report_dot_error<turbo<5>>(0.45);
  report_dot_error<turbo<6>>(0.85);
  // The 7-bit image's own cost (docs/codecs.md, turbo6): with 64 levels its unit, max|c| / 63,
  // is about the codebook's spacing near zero, so its rounding adds about half of turbo6's MSE
  // (about a tenth of turbo5's).
  const double i5 = image_mse_ratio<turbo<5>>(), i6 = image_mse_ratio<turbo<6>>();
  MESSAGE("7-bit codebook image: MSE over the codec's own, turbo5 ", i5, ", turbo6 ", i6);
  CHECK(i5 < 0.15);
  CHECK(i6 > 0.15);
  CHECK(i6 < 1.0);
}
