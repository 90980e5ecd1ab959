// A codec defined here, in a test's own translation unit, and nowhere else: with its id in the
// user range and its own (scalar) kernels, it gets a name the policy parser knows, a layout,
// kernels, a runtime cache and a state-file round trip, with no edit of strata's headers. The
// standard set still refuses it by id.
// This unit links strata::kernels for the standard codecs and compiles the kernels of its own
// codec types itself (strata/kernels/kernels.hpp: STRATA_KERNELS_DEFINE).
#define STRATA_KERNELS_DEFINE 1
#include <doctest/doctest.h>

#include <unistd.h>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include <strata/cache/layer_kernels.hpp>
#include <strata/cache/runtime_kv_cache.hpp>
#include <strata/codec/codec_set.hpp>
#include <strata/policy/parse.hpp>
#include <strata/policy/report.hpp>

#include "attention_reference.hpp"

namespace {

using namespace strata;
using strata_test::gaussian;

// Symmetric int8 with an f32 scale per block of 32 values (9 bits per value): no rotation.
struct i8t {
  struct block {
    float d;
    std::int8_t q[32];
  };
  static_assert(sizeof(block) == 36);
  static constexpr std::size_t block_values = 32;
  static constexpr std::size_t block_bytes = sizeof(block);
  static constexpr double bits_per_value = 8.0 * block_bytes / block_values;
  static constexpr bool rotated = false;
  static constexpr const char* name = "i8t";
  static constexpr codec_id id = codec_id(first_user_codec_id + 72);

  static void encode(const float* x, std::size_t n, void* out) {
    auto* b = static_cast<block*>(out);
    for (std::size_t i = 0; i < n / 32; ++i, x += 32) {
      float m = 0.0f;
      for (int j = 0; j < 32; ++j) m = std::max(m, std::fabs(x[j]));
      b[i].d = m / 127.0f;
      const float inv = m > 0.0f ? 127.0f / m : 0.0f;
      for (int j = 0; j < 32; ++j) b[i].q[j] = std::int8_t(std::lround(x[j] * inv));
    }
  }
  static void decode(const void* in, std::size_t n, float* x) {
    const auto* b = static_cast<const block*>(in);
    for (std::size_t i = 0; i < n; ++i) x[i] = b[i / 32].d * float(b[i / 32].q[i % 32]);
  }
  static void dot(const float* q, std::size_t n_q, std::size_t dim, const void* keys,
                  std::size_t key_stride, std::size_t n_keys, float* scores,
                  std::size_t score_stride) {
    std::vector<float> k(dim);
    for (std::size_t j = 0; j < n_keys; ++j) {
      decode(static_cast<const unsigned char*>(keys) + j * key_stride, dim, k.data());
      for (std::size_t i = 0; i < n_q; ++i) {
        float s = 0.0f;
        for (std::size_t c = 0; c < dim; ++c) s += q[i * dim + c] * k[c];
        scores[i * score_stride + j] = s;
      }
    }
  }
  static void axpy(const float* w, std::size_t n_q, std::size_t w_stride, const void* values,
                   std::size_t value_stride, std::size_t n_values, std::size_t dim, float* out) {
    std::vector<float> v(dim);
    for (std::size_t j = 0; j < n_values; ++j) {
      decode(static_cast<const unsigned char*>(values) + j * value_stride, dim, v.data());
      for (std::size_t i = 0; i < n_q; ++i)
        for (std::size_t c = 0; c < dim; ++c) out[i * dim + c] += w[i * w_stride + j] * v[c];
    }
  }
};

using my_codecs = codec_set_append<standard_codecs, i8t>;

cache_options options() {
  cache_options o;
  o.n_ctx = 64;
  o.kernels = &kernels_from<my_codecs>;
  o.layouts = &layout_of<my_codecs>;
  return o;
}

}  // namespace

TEST_CASE("a codec defined in a test gets parse, layout, kernels, the cache and state files") {
  // Names and parsing.
  CHECK(my_codecs::parse("i8t") == i8t::id);
  CHECK(my_codecs::names() == standard_codecs::names() + " i8t");
  const policy_spec p = parse_policy<my_codecs>("k=i8t;v:last1=i8t;v=q8_0");
  CHECK(p.k == i8t::id);
  CHECK(p.to_string<my_codecs>() == "v:last1=i8t;k=i8t;v=q8_0");
  CHECK_THROWS_WITH_AS(parse_policy("k=i8t"), doctest::Contains("unknown KV cache type 'i8t'"),
                       std::invalid_argument);

  // Layout and kernels.
  const codec_layout l = layout_of<my_codecs>(i8t::id, 64);
  CHECK(l.row_bytes == 72);
  CHECK(l.bits_per_value() == 9.0);
  CHECK_THROWS_WITH_AS(layout_of(i8t::id, 64), doctest::Contains("codec id 200"),
                       std::invalid_argument);
  const codec_kernels k = kernels_from<my_codecs>(i8t::id, 64);
  const auto x = gaussian(64, 1);
  std::vector<unsigned char> enc(72);
  std::vector<float> y(64);
  k.encode(x.data(), 64, enc.data());
  k.decode(enc.data(), 64, y.data());
  for (std::size_t i = 0; i < 64; ++i) CHECK(std::fabs(y[i] - x[i]) < 0.03f);

  // A runtime cache with K i8t everywhere and V i8t on the last layer, against an f32 cache.
  const layer_map m = layer_map::dense(3, 2, 64, 4);
  const policy_report r = report(p, m, &layout_of<my_codecs>);
  CHECK(r.bytes(64) == 64 * 2 * (3 * 72 + 2 * 68 + 72));
  runtime_kv_cache c(m, p, options());
  CHECK(c.bytes() == r.bytes(64));
  runtime_kv_cache exact(m, parse_policy("f32"), {.n_ctx = 64});
  const std::size_t n = 20;
  const auto keys = gaussian(n * 2 * 64, 2), values = gaussian(n * 2 * 64, 3),
             q = gaussian(4 * 64, 4);
  for (std::size_t layer = 0; layer < 3; ++layer) {
    c.append(layer, 0, keys.data(), values.data(), n);
    exact.append(layer, 0, keys.data(), values.data(), n);
  }
  std::vector<float> got(4 * 64), want(4 * 64), again(4 * 64);
  for (std::size_t layer = 0; layer < 3; ++layer) {
    c.attend(layer, q.data(), 1, std::int64_t(n - 1), got.data());
    exact.attend(layer, q.data(), 1, std::int64_t(n - 1), want.data());
    for (std::size_t i = 0; i < got.size(); ++i)
      CHECK(got[i] == doctest::Approx(want[i]).epsilon(0.05).scale(1.0));
  }

  // State file round trip; the standard set cannot read the user codec's layers.
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("strata_user_codec_test_" + std::to_string(::getpid()) + ".state"))
                               .string();
  c.save(path);
  runtime_kv_cache d(m, p, options());
  d.load(path);
  for (std::size_t layer = 0; layer < 3; ++layer) {
    c.attend(layer, q.data(), 1, std::int64_t(n - 1), got.data());
    d.attend(layer, q.data(), 1, std::int64_t(n - 1), again.data());
    CHECK(std::memcmp(got.data(), again.data(), got.size() * 4) == 0);
  }
  CHECK_THROWS_WITH_AS(runtime_kv_cache(m, p, {.n_ctx = 64}), doctest::Contains("codec id 200"),
                       std::invalid_argument);
  std::filesystem::remove(path);
}
