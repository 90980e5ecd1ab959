// kv_cache<Policy, Rotation, Codecs>: the compile-time policy gives the same cache as the
// runtime policy string; custom codec types reach the kernels.
// This unit links strata::kernels for the standard codecs and compiles the kernels of its own
// codec types itself (strata/kernels/kernels.hpp: STRATA_KERNELS_DEFINE).
#define STRATA_KERNELS_DEFINE 1
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include <strata/kv_cache.hpp>
#include <strata/policy/parse.hpp>
#include <strata/policy/presets.hpp>

#include "attention_reference.hpp"

using namespace strata;
using namespace strata_test;

TEST_CASE("kv_cache<boundary_v<>> equals runtime_kv_cache(parse_policy(\"la7\"))") {
  const std::size_t d = 128, nkv = 2, nh = 4, n = 100, L = 6;
  const layer_map m = layer_map::dense(L, nkv, d, nh);
  kv_cache<boundary_v<>> typed(m, {.n_ctx = 128});
  runtime_kv_cache rt(m, parse_policy("la7"), {.n_ctx = 128});
  CHECK(typed.bytes() == rt.bytes());
  CHECK(typed.bytes() == typed.policy().bytes(128));
  const auto k = gaussian(n * nkv * d, 1), v = gaussian(n * nkv * d, 2), q = gaussian(nh * d, 3);
  for (std::size_t l = 0; l < L; ++l) {
    CHECK(typed.v_codec(l) == (l < 2 || l >= L - 2 ? codec_id::q8_0 : codec_id::turbo2));
    CHECK(typed.k_codec(l) == codec_id::q8_0);
    typed.append(l, 0, k.data(), v.data(), n);
    rt.append(l, 0, k.data(), v.data(), n);
    std::vector<float> a(nh * d), b(nh * d);
    typed.attend(l, q.data(), 1, n - 1, a.data());
    rt.attend(l, q.data(), 1, n - 1, b.data());
    CHECK(max_abs_diff(a, b) == 0.0);
  }
}

TEST_CASE("a custom codec type's kernels are used per layer") {
  // The TurboQuant fork's 3-bit table: not the standard turbo3, though it has turbo3's id.
  using custom = turbo<3, 128, fork_codebook<3>>;
  using P = uniform<f16, custom>;
  const std::size_t d = 64;  // the cache uses turbo<3, 64, fork_codebook<3>>
  const layer_map m = layer_map::dense(1, 1, d, 1);
  kv_cache<P, default_rotation, codec_set<f16, custom>> c(m, {.n_ctx = 8});
  const auto v = gaussian(d, 4);
  c.append(0, 0, v.data(), v.data(), 1);
  std::vector<float> got(d), want(d), rot(v);
  c.read_v(0, 0, 0, got.data());
  // Hand computation: rotate, encode with the custom type, decode, rotate back.
  default_rotation::forward(rot.data(), d);
  turbo<3, 64, fork_codebook<3>>::block b;
  reference::encode<turbo<3, 64, fork_codebook<3>>>(rot.data(), d, &b);
  reference::decode<turbo<3, 64, fork_codebook<3>>>(&b, d, want.data());
  default_rotation::inverse(want.data(), d);
  CHECK(max_abs_diff(got, want) < 1e-6);
  CHECK(cosine(got, v) > 0.9);
}
