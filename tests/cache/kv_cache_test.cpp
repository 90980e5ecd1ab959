// runtime_kv_cache: attention against an f64 reference (causal, GQA, sliding window, shared
// KV), prefill == token-by-token, positions (truncate, drop_front, shift), exact bytes.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include <strata/cache/runtime_kv_cache.hpp>
#include <strata/policy/parse.hpp>

#include "../support/int8_v.hpp"
#include "../support/targets.hpp"
#include "attention_reference.hpp"

using namespace strata;
using namespace strata_test;

namespace {

// Appends keys [0, n) to every KV layer in batches of `batch`, then attends with queries at
// positions [n - n_q, n) (one call), returning the output of layer `layer`.
std::vector<float> run(runtime_kv_cache& c, std::size_t layer, const std::vector<float>& k,
                       const std::vector<float>& v, std::size_t n, const std::vector<float>& q,
                       std::size_t n_q, std::size_t batch) {
  const layer_info& li = c.map()[layer];
  const std::size_t row = li.n_kv_heads * li.head_dim;
  for (std::size_t t = 0; t < n; t += batch) {
    const std::size_t nb = std::min(batch, n - t);
    c.append(layer, std::int64_t(t), k.data() + t * row, v.data() + t * row, nb);
  }
  std::vector<float> out(n_q * li.n_heads * li.head_dim, -1.0f);
  c.attend(layer, q.data(), n_q, std::int64_t(n - n_q), out.data());
  return out;
}

// Saves `a` to `file`, loads the file into `b` and checks that attention over every layer (two
// query tokens at pos) gives the same outputs; returns the file's bytes.
std::string save_load_same(runtime_kv_cache& a, runtime_kv_cache& b, const std::string& file,
                           const std::vector<float>& q, std::int64_t pos) {
  a.save(file);
  b.load(file);
  for (std::size_t l = 0; l < a.map().n_layers(); ++l) {
    const layer_info& li = a.map()[l];
    std::vector<float> oa(2 * li.n_heads * li.head_dim), ob(oa.size());
    a.attend(l, q.data(), 2, pos, oa.data());
    b.attend(l, q.data(), 2, pos, ob.data());
    CHECK(max_abs_diff(oa, ob) == 0.0);
  }
  std::ifstream in(file, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace

namespace {

template <class B> double rel_l2(const std::vector<float>& a, const std::vector<B>& b) {
  double num = 0, den = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    num += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    den += double(b[i]) * b[i];
  }
  return std::sqrt(num / den);
}

}  // namespace

TEST_CASE("f32 KV: attention equals the f64 reference (causal prefill, GQA)") {
  const std::size_t d = 64, nkv = 2, nh = 8, n = 300, nq = 37;
  const layer_map m = layer_map::dense(1, nkv, d, nh);
  const auto k = gaussian(n * nkv * d, 1), v = gaussian(n * nkv * d, 2),
             q = gaussian(nq * nh * d, 3);
  for (std::size_t tile : {7, 128, 0}) {
    // tile 0: the default tile (384 keys for 20 rows); 20 rows = 5 query tokens of 4 heads
    const attention_tiling tiling{.key_tile = tile == 0 ? 256 : tile,
                                  .query_rows = 20,
                                  .score_floats = tile == 0 ? std::size_t(8192) : 0};
    runtime_kv_cache c(m, parse_policy("f32"), {.n_ctx = 512, .tiling = tiling});
    const auto out = run(c, 0, k, v, n, q, nq, 64);
    const auto ref =
        reference_attention(q, nq, n - nq, k, v, n, 0, nh, nkv, d, 1 / std::sqrt(double(d)));
    CHECK(max_abs_diff(out, ref) < 2e-5);
  }
}

TEST_CASE("prefill equals token-by-token decode") {
  const std::size_t d = 64, nkv = 2, nh = 4, n = 200;
  const layer_map m = layer_map::dense(1, nkv, d, nh);
  const auto k = gaussian(n * nkv * d, 4), v = gaussian(n * nkv * d, 5),
             q = gaussian(n * nh * d, 6);
  for (const char* policy : {"f32", "q8_0", "-ctk q8_0 -ctv turbo3", "turbo4", "la7"}) {
    runtime_kv_cache a(m, parse_policy(policy), {.n_ctx = 256});
    a.append(0, 0, k.data(), v.data(), n);
    std::vector<float> prefill(n * nh * d);
    a.attend(0, q.data(), n, 0, prefill.data());
    runtime_kv_cache b(m, parse_policy(policy), {.n_ctx = 256});
    std::vector<float> step(n * nh * d);
    for (std::size_t t = 0; t < n; ++t) {
      b.append(0, std::int64_t(t), k.data() + t * nkv * d, v.data() + t * nkv * d, 1);
      b.attend(0, q.data() + t * nh * d, 1, std::int64_t(t), step.data() + t * nh * d);
    }
    INFO(policy);
    if (strata_test::int8_v_here(policy, m)) {
      // turbo V through the integer V product (x86, int8_axpy.hpp): each group of 32 keys'
      // weights are rounded to 8 bits against their largest, and prefill and decode reach a
      // row's weights through different running maxima: equal to that rounding (turbo4 at head
      // dim 64 on AVX2: relative L2 0.0101 apart), not to f32's.
      const double e = rel_l2(prefill, step);
      MESSAGE(std::string(policy) << ": integer V product, prefill against decode " << e);
      CHECK(e < 0.02);
    } else {
      CHECK(max_abs_diff(prefill, step) < 1e-5);
    }
  }
}

TEST_CASE("sliding window, ring buffer and shared KV") {
  const std::size_t d = 32, nkv = 1, nh = 2, n = 150, W = 40;
  std::vector<layer_info> li(3);
  li[0] = {true, -1, attention_kind::sliding, W, nh, nkv, d};
  li[1] = {true, -1, attention_kind::global, 0, nh, nkv, d};
  li[2] = {false, 0, attention_kind::sliding, W, nh, 0, 0};
  const layer_map m(li);
  const auto k = gaussian(n * d, 7), v = gaussian(n * d, 8), q = gaussian(n * nh * d, 9);
  const double scale = 1 / std::sqrt(double(d));
  for (std::size_t max_batch : {0, 16}) {
    runtime_kv_cache c(m, parse_policy("f32"), {.n_ctx = 256, .max_batch = max_batch});
    CHECK(c.bytes() == c.policy().bytes(256, max_batch));
    if (max_batch) {
      CHECK(c.bytes() < c.policy().bytes(256));
      CHECK(c.capacity(0) == W + max_batch - 1);
      CHECK(c.capacity(2) == c.capacity(0));
      CHECK(c.capacity(1) == 256);
    }
    std::vector<float> out(n * nh * d), out_shared(n * nh * d);
    for (std::size_t t = 0; t < n; t += 16) {
      const std::size_t nb = std::min<std::size_t>(16, n - t);
      c.append(0, std::int64_t(t), k.data() + t * d, v.data() + t * d, nb);
      c.attend(0, q.data() + t * nh * d, nb, std::int64_t(t), out.data() + t * nh * d);
      c.attend(2, q.data() + t * nh * d, nb, std::int64_t(t), out_shared.data() + t * nh * d);
    }
    const auto ref = reference_attention(q, n, 0, k, v, n, 0, nh, nkv, d, scale, W);
    CHECK(max_abs_diff(out, ref) < 2e-5);
    CHECK(max_abs_diff(out_shared, ref) < 2e-5);
    if (max_batch) {
      CHECK(c.size(0) <= c.capacity(0));
      CHECK(c.pos_end(0) == std::int64_t(n));
      CHECK_THROWS_AS(c.append(0, std::int64_t(n), k.data(), v.data(), 30), std::length_error);
    }
    CHECK_THROWS_AS(c.append(2, std::int64_t(n), k.data(), v.data(), 1), std::invalid_argument);
  }
}

TEST_CASE("softcap") {
  const std::size_t d = 32, n = 50;
  const layer_map m = layer_map::dense(1, 1, d, 2);
  runtime_kv_cache c(m, parse_policy("f32"), {.n_ctx = 64});
  const auto k = gaussian(n * d, 10), v = gaussian(n * d, 11), q = gaussian(2 * d, 12);
  c.append(0, 0, k.data(), v.data(), n);
  std::vector<float> out(2 * d);
  attention_params p;
  p.scale = 0.5f;
  p.softcap = 2.0f;
  c.attend(0, q.data(), 1, n - 1, out.data(), p);
  const auto ref = reference_attention(q, 1, n - 1, k, v, n, 0, 2, 1, d, 0.5, 0, 2.0);
  CHECK(max_abs_diff(out, ref) < 2e-5);
}

TEST_CASE("KV-head subsets write only their query heads") {
  const std::size_t d = 32, nkv = 4, nh = 8, n = 20;
  const layer_map m = layer_map::dense(1, nkv, d, nh);
  runtime_kv_cache c(m, parse_policy("f32"), {.n_ctx = 32});
  const auto k = gaussian(n * nkv * d, 13), v = gaussian(n * nkv * d, 14), q = gaussian(nh * d, 15);
  c.append(0, 0, k.data(), v.data(), n);
  std::vector<float> all(nh * d), parts(nh * d, 123.0f);
  c.attend(0, q.data(), 1, n - 1, all.data());
  attention_params p;
  p.kv_head_begin = 1;
  p.kv_head_end = 3;
  c.attend(0, q.data(), 1, n - 1, parts.data(), p);
  for (std::size_t i = 0; i < nh * d; ++i) {
    const std::size_t h = i / d / 2;
    if (h >= 1 && h < 3)
      CHECK(parts[i] == all[i]);
    else
      CHECK(parts[i] == 123.0f);
  }
}

TEST_CASE("positions: truncate, drop_front, shift") {
  const std::size_t d = 32, n = 60;
  const layer_map m = layer_map::dense(2, 1, d, 1);
  runtime_kv_cache c(m, parse_policy("f32"), {.n_ctx = 64});
  const auto k = gaussian(n * d, 16), v = gaussian(n * d, 17), q = gaussian(d, 18);
  for (std::size_t l = 0; l < 2; ++l) c.append(l, 0, k.data(), v.data(), n);
  CHECK_THROWS_AS(c.append(0, 5, k.data(), v.data(), 1), std::invalid_argument);
  CHECK_THROWS_AS(c.append(0, std::int64_t(n), k.data(), v.data(), 5), std::length_error);
  const double scale = 1 / std::sqrt(double(d));
  std::vector<float> out(d);

  c.truncate(40);  // keep positions 0..39
  CHECK(c.size(1) == 40);
  c.attend(0, q.data(), 1, 100, out.data());
  CHECK(max_abs_diff(out, reference_attention(q, 1, 100, k, v, 40, 0, 1, 1, d, scale)) < 2e-5);

  c.drop_front(10);  // positions 10..39 remain
  CHECK(c.pos_begin(0) == 10);
  CHECK(c.size(0) == 30);
  std::vector<float> k2(k.begin() + 10 * d, k.begin() + 40 * d),
      v2(v.begin() + 10 * d, v.begin() + 40 * d);
  c.attend(0, q.data(), 1, 39, out.data());
  CHECK(max_abs_diff(out, reference_attention(q, 1, 39, k2, v2, 30, 10, 1, 1, d, scale)) < 2e-5);

  // Shift positions down by 10 while "re-roping" K by a sign flip; append continues at 30
  // and the ring wraps around the 64-token buffer.
  c.shift(-10, [](std::size_t, std::size_t, std::int64_t from, std::int64_t to, float* row,
                  std::size_t dim) {
    CHECK(to == from - 10);
    for (std::size_t i = 0; i < dim; ++i) row[i] = -row[i];
  });
  CHECK(c.pos_begin(1) == 0);
  for (auto& x : k2) x = -x;
  for (std::size_t l = 0; l < 2; ++l) c.append(l, 30, k.data(), v.data(), 34);
  k2.insert(k2.end(), k.begin(), k.begin() + 34 * d);
  v2.insert(v2.end(), v.begin(), v.begin() + 34 * d);
  c.attend(1, q.data(), 1, 63, out.data());
  CHECK(max_abs_diff(out, reference_attention(q, 1, 63, k2, v2, 64, 0, 1, 1, d, scale)) < 2e-5);
  std::vector<float> row(d);
  c.read_k(1, 0, 0, row.data());
  CHECK(row[3] == -k[10 * d + 3]);
  c.shift(5);
  CHECK(c.pos_begin(0) == 5);
  CHECK(c.pos_end(0) == 69);
}

TEST_CASE("allocation equals the policy report") {
  const layer_map m = layer_map::hybrid(64, 4, 3, 2, 256, 16);
  for (const char* p : {"la7", "q8_0", "-ctk q8_0 -ctv turbo3", "f16", "la1"}) {
    runtime_kv_cache c(m, parse_policy(p), {.n_ctx = 1000});
    CHECK(c.bytes() == report(parse_policy(p), m).bytes(1000));
    CHECK(c.bytes() == c.policy().bytes(1000));
  }
  CHECK_THROWS_WITH_AS(runtime_kv_cache(layer_map::dense(1, 1, 80), parse_policy("q8_0"), {}),
                       doctest::Contains("head dim 80"), std::invalid_argument);
}

TEST_CASE("save / load round trip; corrupt, truncated and mismatched files are errors") {
  namespace fs = std::filesystem;
  const std::size_t d = 64, nkv = 2, nh = 4, n = 90, W = 24;
  std::vector<layer_info> li(3);
  li[0] = {true, -1, attention_kind::sliding, W, nh, nkv, d};
  li[1] = {false, -1, attention_kind::global, 0, 0, 0, 0};
  li[2] = {true, -1, attention_kind::global, 0, nh, nkv, d};
  const layer_map m(li);
  const cache_options opt{.n_ctx = 128, .max_batch = 8};
  runtime_kv_cache a(m, parse_policy("-ctk q8_0 -ctv turbo3"), opt);
  const auto k = gaussian(n * nkv * d, 40), v = gaussian(n * nkv * d, 41),
             q = gaussian(3 * nh * d, 42);
  for (std::size_t t = 0; t < n; t += 8) {
    const std::size_t nb = std::min<std::size_t>(8, n - t);
    for (std::size_t l : {0, 2})
      a.append(l, std::int64_t(t), k.data() + t * nkv * d, v.data() + t * nkv * d, nb);
  }
  const fs::path dir = fs::temp_directory_path() / "strata_kv_cache_test";
  fs::create_directories(dir);
  const std::string file = (dir / "state.bin").string();
  a.save(file);
  for (const auto& e : fs::directory_iterator(dir))  // no temporary (".state.bin.XXXXXX") left
    CHECK(e.path().filename().string().rfind(".state.bin.", 0) != 0);

  runtime_kv_cache b(m, parse_policy("-ctk q8_0 -ctv turbo3"), opt);
  b.load(file);
  for (std::size_t l : {0, 2}) {
    CHECK(b.size(l) == a.size(l));
    CHECK(b.pos_begin(l) == a.pos_begin(l));
    std::vector<float> oa(3 * nh * d), ob(3 * nh * d);
    a.attend(l, q.data(), 3, std::int64_t(n - 3), oa.data());
    b.attend(l, q.data(), 3, std::int64_t(n - 3), ob.data());
    CHECK(max_abs_diff(oa, ob) == 0.0);
  }
  // b continues where a stopped.
  b.append(0, std::int64_t(n), k.data(), v.data(), 1);
  CHECK(b.pos_end(0) == std::int64_t(n + 1));

  std::string bytes;
  {
    std::ifstream in(file, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  auto write = [&](const std::string& s) {
    std::ofstream out(dir / "bad.bin", std::ios::binary);
    out.write(s.data(), std::streamsize(s.size()));
    return (dir / "bad.bin").string();
  };
  runtime_kv_cache c(m, parse_policy("-ctk q8_0 -ctv turbo3"), opt);
  for (std::size_t cut : {std::size_t(0), std::size_t(5), std::size_t(20), std::size_t(100),
                          bytes.size() / 2, bytes.size() - 1}) {
    CHECK_THROWS_WITH_AS(c.load(write(bytes.substr(0, cut))), doctest::Contains("(load "),
                         std::runtime_error);
    CHECK(c.size(0) == 0);
  }
  std::string flipped = bytes;
  flipped[bytes.size() / 2] ^= 0x10;
  CHECK_THROWS_WITH_AS(c.load(write(flipped)), doctest::Contains("checksum"), std::runtime_error);
  std::string version = bytes;
  version[8] = 9;
  CHECK_THROWS_WITH_AS(c.load(write(version)), doctest::Contains("version 9"), std::runtime_error);
  CHECK_THROWS_WITH_AS(c.load(write("hello, this is not a state file at all")),
                       doctest::Contains("not a strata KV state file"), std::runtime_error);
  CHECK_THROWS_WITH_AS(c.load((dir / "missing.bin").string()), doctest::Contains("cannot open"),
                       std::runtime_error);
  runtime_kv_cache other(m, parse_policy("q8_0"), opt);
  CHECK_THROWS_WITH_AS(other.load(file), doctest::Contains("saved with K q8_0 / V turbo3"),
                       std::runtime_error);
  // A codec id this build does not know is named by its number (byte 94: the first KV layer's
  // K codec, after the 28-byte header and three 22-byte layer entries).
  std::string unknown = bytes;
  REQUIRE(std::uint8_t(unknown[94]) == std::uint8_t(codec_id::q8_0));
  unknown[94] = char(200);
  CHECK_THROWS_WITH_AS(c.load(write(unknown)),
                       doctest::Contains("saved with K codec id 200 / V turbo3"),
                       std::runtime_error);
  runtime_kv_cache small(m, parse_policy("-ctk q8_0 -ctv turbo3"), {.n_ctx = 32, .max_batch = 8});
  CHECK_THROWS_WITH_AS(small.load(file), doctest::Contains("capacity"), std::runtime_error);
  runtime_kv_cache other_map(layer_map::dense(3, nkv, d, nh), parse_policy("-ctk q8_0 -ctv turbo3"),
                             opt);
  CHECK_THROWS_WITH_AS(other_map.load(file), doctest::Contains("layer 0 differs"),
                       std::runtime_error);
  fs::remove_all(dir);
}

TEST_CASE("rotated twins, turbo5 and fixed groups: attention, save / load, ids in the file") {
  namespace fs = std::filesystem;
  const std::size_t d = 64, nkv = 2, nh = 4, n = 40;
  const layer_map m = layer_map::dense(2, nkv, d, nh);
  const cache_options opt{.n_ctx = 64, .max_batch = 8};
  const char* policy = "k:0=q8_0r;k=turbo4g32;v:0=turbo5;v=q4_0r";
  runtime_kv_cache a(m, parse_policy(policy), opt), exact(m, parse_policy("f32"), opt);
  CHECK(a.k_codec(0) == codec_id::q8_0r);
  CHECK(a.k_codec(1) == codec_id::turbo4g32);
  CHECK(a.v_codec(0) == codec_id::turbo5);
  CHECK(a.v_codec(1) == codec_id::q4_0r);
  CHECK(a.bytes() == report(parse_policy(policy), m).bytes(64));
  const auto k = gaussian(n * nkv * d, 50), v = gaussian(n * nkv * d, 51),
             q = gaussian(2 * nh * d, 52);
  for (std::size_t l : {0, 1}) {
    std::vector<float> oa(2 * nh * d), oe(2 * nh * d);
    for (std::size_t t = 0; t < n; t += 8) {
      a.append(l, std::int64_t(t), k.data() + t * nkv * d, v.data() + t * nkv * d, 8);
      exact.append(l, std::int64_t(t), k.data() + t * nkv * d, v.data() + t * nkv * d, 8);
    }
    a.attend(l, q.data(), 2, std::int64_t(n - 2), oa.data());
    exact.attend(l, q.data(), 2, std::int64_t(n - 2), oe.data());
    CHECK(max_abs_diff(oa, oe) < (l == 0 ? 0.1 : 0.2));  // V turbo5 / q4_0r, K q8_0r / turbo4g32
  }
  const fs::path dir = fs::temp_directory_path() / "strata_kv_cache_new_codecs_test";
  fs::create_directories(dir);
  const std::string file = (dir / "state.bin").string();
  runtime_kv_cache b(m, parse_policy(policy), opt);
  // The file names the codecs by id: rotation (q8_0 vs q8_0r) and group (turbo4 takes 64 at
  // this head dim, turbo4g32 keeps 32) are part of it.
  const std::string bytes = save_load_same(a, b, file, q, std::int64_t(n - 2));
  // Bytes 28 + 2 * 22 = 72, 73: the first KV layer's K and V codec ids.
  CHECK(std::uint8_t(bytes[72]) == 9);   // q8_0r
  CHECK(std::uint8_t(bytes[73]) == 11);  // turbo5
  runtime_kv_cache unrotated(m, parse_policy("k:0=q8_0;k=turbo4g32;v:0=turbo5;v=q4_0r"), opt);
  CHECK_THROWS_WITH_AS(unrotated.load(file), doctest::Contains("saved with K q8_0r / V turbo5"),
                       std::runtime_error);
  runtime_kv_cache laddered(m, parse_policy("k:0=q8_0r;k=turbo4;v:0=turbo5;v=q4_0r"), opt);
  CHECK_THROWS_WITH_AS(laddered.load(file), doctest::Contains("saved with K turbo4g32 / V q4_0r"),
                       std::runtime_error);
  fs::remove_all(dir);
  // A fixed group that does not divide the head dim is refused, naming both.
  CHECK_THROWS_WITH_AS(runtime_kv_cache(m, parse_policy("k=turbo4g128"), opt),
                       doctest::Contains("head dim 64 is not a multiple of turbo4g128's block"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(
      runtime_kv_cache(layer_map::dense(1, 1, 96), parse_policy("v=turbo3g64"), {}),
      doctest::Contains("turbo3g64"), std::invalid_argument);
}

TEST_CASE("turbo6: closer to exact attention than turbo5; save / load round trip, id 28") {
  namespace fs = std::filesystem;
  const std::size_t d = 64, nkv = 2, nh = 4, n = 40;
  const layer_map m = layer_map::dense(2, nkv, d, nh);
  const cache_options opt{.n_ctx = 64, .max_batch = 8};
  runtime_kv_cache a(m, parse_policy("-ctk turbo6 -ctv turbo6"), opt);
  runtime_kv_cache t5(m, parse_policy("-ctk turbo5 -ctv turbo5"), opt);
  runtime_kv_cache exact(m, parse_policy("f32"), opt);
  CHECK(a.k_codec(1) == codec_id::turbo6);
  CHECK(a.v_codec(0) == codec_id::turbo6);
  CHECK(a.bytes() == report(parse_policy("-ctk turbo6 -ctv turbo6"), m).bytes(64));
  CHECK(a.bytes() == 2 * 2 * nkv * 64 * 50);  // 50-byte blocks of 64 values per row
  const auto k = gaussian(n * nkv * d, 60), v = gaussian(n * nkv * d, 61),
             q = gaussian(2 * nh * d, 62);
  double e6 = 0, e5 = 0;
  for (std::size_t l : {0, 1}) {
    std::vector<float> o6(2 * nh * d), o5(2 * nh * d), oe(2 * nh * d);
    for (std::size_t t = 0; t < n; t += 8)
      for (runtime_kv_cache* c : {&a, &t5, &exact})
        c->append(l, std::int64_t(t), k.data() + t * nkv * d, v.data() + t * nkv * d, 8);
    a.attend(l, q.data(), 2, std::int64_t(n - 2), o6.data());
    t5.attend(l, q.data(), 2, std::int64_t(n - 2), o5.data());
    exact.attend(l, q.data(), 2, std::int64_t(n - 2), oe.data());
    e6 = std::max(e6, max_abs_diff(o6, oe));
    e5 = std::max(e5, max_abs_diff(o5, oe));
  }
  MESSAGE("max |attention - exact|: turbo6 " << e6 << ", turbo5 " << e5);
  CHECK(e6 < 0.05);
  CHECK(e6 < 0.75 * e5);
  const fs::path dir = fs::temp_directory_path() / "strata_kv_cache_turbo6_test";
  fs::create_directories(dir);
  const std::string file = (dir / "state.bin").string();
  runtime_kv_cache b(m, parse_policy("k=turbo6;v=turbo6"), opt);
  const std::string bytes = save_load_same(a, b, file, q, std::int64_t(n - 2));
  CHECK(std::uint8_t(bytes[72]) == 28);  // the first KV layer's K and V codec ids: turbo6
  CHECK(std::uint8_t(bytes[73]) == 28);
  runtime_kv_cache other(m, parse_policy("-ctk turbo5 -ctv turbo5"), opt);
  CHECK_THROWS_WITH_AS(other.load(file), doctest::Contains("saved with K turbo6 / V turbo6"),
                       std::runtime_error);
  fs::remove_all(dir);
}

TEST_CASE("threads: KV-head ranges of one layer, and different layers, in parallel") {
  const std::size_t d = 64, nkv = 4, nh = 16, n = 500, nq = 3;
  const layer_map m = layer_map::dense(2, nkv, d, nh);
  runtime_kv_cache c(m, parse_policy("-ctk q8_0 -ctv turbo4"), {.n_ctx = 512});
  const auto k = gaussian(n * nkv * d, 50), v = gaussian(n * nkv * d, 51),
             q = gaussian(nq * nh * d, 52);
  {  // append on two layers from two threads
    std::thread t0([&] { c.append(0, 0, k.data(), v.data(), n); });
    std::thread t1([&] { c.append(1, 0, v.data(), k.data(), n); });
    t0.join();
    t1.join();
  }
  std::vector<float> one(nq * nh * d), split(nq * nh * d);
  c.attend(0, q.data(), nq, std::int64_t(n - nq), one.data());
  std::vector<std::thread> pool;
  for (std::size_t t = 0; t < nkv; ++t)
    pool.emplace_back([&, t] {
      attention_params p;
      p.kv_head_begin = t;
      p.kv_head_end = t + 1;
      c.attend(0, q.data(), nq, std::int64_t(n - nq), split.data(), p);
    });
  for (auto& t : pool) t.join();
  CHECK(max_abs_diff(one, split) == 0.0);
}

TEST_CASE("sparse V: skipping negligible V tiles changes the output by less than the threshold") {
  const std::size_t d = 128, nkv = 1, nh = 4, n = 4096;
  const layer_map m = layer_map::dense(1, nkv, d, nh);
  runtime_kv_cache c(m, parse_policy("f32"), {.n_ctx = n});
  // Outlier keys make attention peaked: most tiles carry almost no weight.
  const auto k = outlier_keys(n, d, 60), v = gaussian(n * d, 61), q = gaussian(nh * d, 62);
  std::vector<float> kk(k);
  for (auto& x : kk) x *= 3.0f;
  c.append(0, 0, kk.data(), v.data(), n);
  std::vector<float> dense(nh * d), sparse(nh * d);
  c.attend(0, q.data(), 1, std::int64_t(n - 1), dense.data());
  attention_params p;
  p.sparse_v = 1e-6f;
  c.attend(0, q.data(), 1, std::int64_t(n - 1), sparse.data(), p);
  // Each skipped value has weight < 1e-6, |v| components are < ~5: at most n * 1e-6 * 5.
  CHECK(max_abs_diff(dense, sparse) < double(n) * 1e-6 * 5);
  CHECK(cosine(dense, sparse) > 0.99999);
}

TEST_CASE("K mean subtraction: exact with f32, keys read back, saved and loaded") {
  const std::size_t d = 64, nkv = 2, nh = 4, n = 120;
  const layer_map m = layer_map::dense(1, nkv, d, nh);
  auto k = gaussian(n * nkv * d, 70);
  for (std::size_t i = 0; i < k.size(); ++i) k[i] += float(i % d) * 0.1f;  // channel bias
  const auto v = gaussian(n * nkv * d, 71), q = gaussian(2 * nh * d, 72);
  cache_options with{.n_ctx = 128};
  with.subtract_k_mean = true;
  runtime_kv_cache a(m, parse_policy("f32"), with), b(m, parse_policy("f32"), {.n_ctx = 128});
  a.append(0, 0, k.data(), v.data(), 100);  // the mean comes from this first batch
  a.append(0, 100, k.data() + 100 * nkv * d, v.data() + 100 * nkv * d, n - 100);
  b.append(0, 0, k.data(), v.data(), n);
  std::vector<float> oa(2 * nh * d), ob(2 * nh * d), row(d);
  a.attend(0, q.data(), 2, std::int64_t(n - 2), oa.data());
  b.attend(0, q.data(), 2, std::int64_t(n - 2), ob.data());
  CHECK(max_abs_diff(oa, ob) < 1e-5);
  a.read_k(0, 110, 1, row.data());
  CHECK(max_abs_diff(row, std::vector<float>(k.begin() + (110 * nkv + 1) * d,
                                             k.begin() + (110 * nkv + 2) * d)) < 1e-5);
  const std::string file = (std::filesystem::temp_directory_path() / "strata_kmean.bin").string();
  a.save(file);
  runtime_kv_cache c(m, parse_policy("f32"), with);
  c.load(file);
  std::vector<float> oc(2 * nh * d);
  c.attend(0, q.data(), 2, std::int64_t(n - 2), oc.data());
  CHECK(max_abs_diff(oa, oc) == 0.0);
  CHECK_THROWS_WITH_AS(b.load(file), doctest::Contains("K mean"), std::runtime_error);
  std::filesystem::remove(file);
}

TEST_CASE("K balance: exact with f32, keys read back, a balanced sample, saved and loaded") {
  const std::size_t d = 64, nkv = 2, nh = 4, n = 120, nq = 3;
  const layer_map m = layer_map::dense(1, nkv, d, nh);
  const auto k = outlier_keys(n * nkv, d, 90), v = gaussian(n * nkv * d, 91);
  auto q = gaussian(nq * nh * d, 92);
  for (std::size_t i = 0; i < q.size(); ++i) q[i] *= 1.0f + float(i % d % 5);  // loud channels
  SUBCASE("parse and report") {
    CHECK(parse_policy("-ctk turbo3 -ctv turbo3 k-balance").k_balance);
    CHECK_FALSE(parse_policy("turbo3").k_balance);
    CHECK(report(parse_policy("turbo3;k-balance"), m).table().find("k-balance") !=
          std::string::npos);
    CHECK_THROWS_WITH_AS(parse_policy("turbo3 k-balanced"), doctest::Contains("k-balance"),
                         std::invalid_argument);
  }
  SUBCASE("the estimator") {
    const auto s = k_balance_scales(q.data(), nq, nh, k.data(), n, nkv, d);
    REQUIRE(s.size() == nkv * d);
    for (std::size_t h = 0; h < nkv; ++h) {
      double log_sum = 0;
      for (std::size_t c = 0; c < d; ++c) log_sum += std::log(double(s[h * d + c]));
      CHECK(std::abs(log_sum / double(d)) < 1e-5);  // geometric mean 1 (nothing clamped here)
      // Channel 0 has 6x keys (and +3): it is scaled down against a typical channel such as 1.
      CHECK(s[h * d + 0] > 1.5f * s[h * d + 1]);
    }
    // The product the scales minimize (k_balance.hpp) is lower than unbalanced.
    double q2[d] = {}, k2[d] = {};
    for (std::size_t t = 0; t < nq * nh; ++t)
      for (std::size_t c = 0; c < d; ++c) q2[c] += double(q[t * d + c]) * q[t * d + c];
    for (std::size_t t = 0; t < n * nkv; ++t)
      for (std::size_t c = 0; c < d; ++c) k2[c] += double(k[t * d + c]) * k[t * d + c];
    double qa = 0, ka = 0, qb = 0, kb = 0;  // KV head 0's scales serve both heads' data here
    for (std::size_t c = 0; c < d; ++c) {
      const double sc = s[c];
      qa += q2[c], ka += k2[c], qb += q2[c] * sc * sc, kb += k2[c] / (sc * sc);
    }
    CHECK(qb * kb < 0.9 * qa * ka);
    // Rotary pairs share a scale: adjacent (2i, 2i+1) or halves (i, i + n_rot/2) of n_rot.
    const auto sa = k_balance_scales(q.data(), nq, nh, k.data(), n, nkv, d, nullptr,
                                     {rotary_pairs::adjacent, 0});
    const auto sh = k_balance_scales(q.data(), nq, nh, k.data(), n, nkv, d, nullptr,
                                     {rotary_pairs::halves, 32});
    int adjacent_equal = 0, halves_equal = 0, tail_equal = 0;
    for (std::size_t i = 0; i < d / 2; ++i) adjacent_equal += sa[2 * i] == sa[2 * i + 1];
    for (std::size_t i = 0; i < 16; ++i) halves_equal += sh[i] == sh[i + 16];
    for (std::size_t i = 32; i < d - 1; ++i) tail_equal += sh[i] == sh[i + 1];
    CHECK(adjacent_equal == int(d / 2));
    CHECK(halves_equal == 16);
    CHECK(tail_equal < 4);  // past n_rot the channels keep their own scales
    CHECK(s[0] != s[1]);    // and without pairs, neighbours differ
    CHECK(k_balance_scales(q.data(), nq, nh, k.data(), k_balance_min_keys - 1, nkv, d).empty());
    CHECK(k_balance_scales(q.data(), 0, nh, k.data(), n, nkv, d).empty());
  }
  SUBCASE("exact with f32 K, read back, set only on an empty layer") {
    runtime_kv_cache a(m, parse_policy("f32 k-balance"), {.n_ctx = 128}),
        b(m, parse_policy("f32"), {.n_ctx = 128});
    b.balance_k(0, q.data(), nq, k.data(), n);  // no k-balance in b's policy: nothing
    CHECK(b.k_scales(0).empty());
    a.balance_k(0, q.data(), nq, k.data(), 4);  // too few keys: nothing
    CHECK(a.k_scales(0).empty());
    a.balance_k(0, q.data(), nq, k.data(), n);
    REQUIRE(a.k_scales(0).size() == nkv * d);
    const auto oa = run(a, 0, k, v, n, q, nq, 50), ob = run(b, 0, k, v, n, q, nq, n);
    CHECK(max_abs_diff(oa, ob) < 1e-5);
    std::vector<float> row(d);
    a.read_k(0, 77, 1, row.data());
    CHECK(max_abs_diff(row, std::vector<float>(k.begin() + (77 * nkv + 1) * d,
                                               k.begin() + (77 * nkv + 2) * d)) < 1e-5);
    const auto before = a.k_scales(0);
    a.balance_k(0, q.data() + 1, nq, k.data() + 1, n);  // a layer with tokens keeps its scales
    CHECK(a.k_scales(0) == before);
    CHECK_THROWS_WITH_AS(a.set_k_scales(0, before.data()), doctest::Contains("not empty"),
                         std::invalid_argument);
    a.clear();
    std::vector<float> bad(nkv * d, 1.0f);
    bad[5] = 0.0f;
    CHECK_THROWS_WITH_AS(a.set_k_scales(0, bad.data()), doctest::Contains("not a finite positive"),
                         std::invalid_argument);
    a.set_k_scales(0, nullptr);
    CHECK(a.k_scales(0).empty());
  }
  SUBCASE("with the K mean, through shift's rerope") {
    cache_options opt{.n_ctx = 128};
    opt.subtract_k_mean = true;
    runtime_kv_cache a(m, parse_policy("f32 k-balance"), opt),
        b(m, parse_policy("f32"), {.n_ctx = 128});
    a.balance_k(0, q.data(), nq, k.data(), n);
    run(a, 0, k, v, n, q, nq, n);
    run(b, 0, k, v, n, q, nq, n);
    // A rerope that sees the keys as appended: add 1 to channel 3 of every key.
    auto bump = [](std::size_t, std::size_t, std::int64_t, std::int64_t, float* r, std::size_t) {
      r[3] += 1.0f;
    };
    a.shift(5, bump);
    b.shift(5, bump);
    std::vector<float> ra(d), rb(d), oa(nq * nh * d), ob(nq * nh * d);
    a.read_k(0, 10, 0, ra.data());
    b.read_k(0, 10, 0, rb.data());
    CHECK(max_abs_diff(ra, rb) < 1e-5);
    a.attend(0, q.data(), nq, std::int64_t(n + 5 - nq), oa.data());
    b.attend(0, q.data(), nq, std::int64_t(n + 5 - nq), ob.data());
    CHECK(max_abs_diff(oa, ob) < 1e-5);
  }
  SUBCASE("turbo3 K: closer to the f16 cache; the scales saved and loaded") {
    // Two channels 20x and 40x louder than the rest (as SmolLM2's layer 0 and Gemma 3's keys
    // have): turbo's scale search (docs/codecs.md) absorbs the milder outlier of the keys above
    // by itself (k-balance's cosine there: 0.9308 against 0.9358 plain).
    auto k = strata_test::gaussian(n * nkv * d, 93);
    for (std::size_t t = 0; t < n * nkv; ++t) k[t * d + 0] *= 20.0f, k[t * d + 7] *= 40.0f;
    runtime_kv_cache f16(m, parse_policy("f16"), {.n_ctx = 128}),
        plain(m, parse_policy("turbo3"), {.n_ctx = 128}),
        bal(m, parse_policy("turbo3 k-balance"), {.n_ctx = 128});
    bal.balance_k(0, q.data(), nq, k.data(), n);
    const auto o16 = run(f16, 0, k, v, n, q, nq, n), op = run(plain, 0, k, v, n, q, nq, n),
               ob = run(bal, 0, k, v, n, q, nq, n);
    MESSAGE("turbo3 cosine vs f16: plain " << cosine(op, o16) << ", k-balance " << cosine(ob, o16));
    CHECK(cosine(ob, o16) > cosine(op, o16));
    const std::string file = (std::filesystem::temp_directory_path() / "strata_kbal.bin").string();
    bal.save(file);
    runtime_kv_cache c(m, parse_policy("turbo3 k-balance"), {.n_ctx = 128});
    c.load(file);
    CHECK(c.k_scales(0) == bal.k_scales(0));
    std::vector<float> oc(nq * nh * d);
    c.attend(0, q.data(), nq, std::int64_t(n - nq), oc.data());
    CHECK(max_abs_diff(ob, oc) == 0.0);
    plain.load(file);  // the scales travel with the rows, whatever the policy's clause
    CHECK(plain.k_scales(0) == bal.k_scales(0));
    std::filesystem::remove(file);
  }
}

TEST_CASE("recent window: the newest tokens come from f16 rows, older ones from compressed rows") {
  const std::size_t d = 64, nkv = 2, nh = 4, n = 100, R = 24, nq = 3;
  const layer_map m = layer_map::dense(1, nkv, d, nh);
  const auto k = outlier_keys(n * nkv, d, 80), v = gaussian(n * nkv * d, 81),
             q = gaussian(nq * nh * d, 82);
  const double scale = 1 / std::sqrt(double(d));
  SUBCASE("parse, report and allocation") {
    CHECK(parse_policy("-ctk q8_0 -ctv turbo3 recent=24").recent == 24);
    CHECK(parse_policy("k=turbo3;v=turbo2;recent=0").recent == 0);
    CHECK_THROWS_WITH_AS(parse_policy("turbo3 recent=x"),
                         doctest::Contains("bad recent window 'x'"), std::invalid_argument);
    const auto plain = report(parse_policy("-ctk f16 -ctv turbo3"), m);
    const auto with = report(parse_policy("-ctk f16 -ctv turbo3 recent=24"), m);
    // Only the V side (a block codec) keeps f16 rows: 24 tokens x 2 heads x 64 values x 2 bytes.
    CHECK(with.k_bytes(512) == plain.k_bytes(512));
    CHECK(with.v_bytes(512) == plain.v_bytes(512) + 24 * nkv * d * 2);
    CHECK(with.v_bytes(10) == plain.v_bytes(10) + 10 * nkv * d * 2);  // capped by the context
    runtime_kv_cache c(m, parse_policy("-ctk f16 -ctv turbo3 recent=24"), {.n_ctx = 512});
    CHECK(c.bytes() == with.bytes(512));
    CHECK(with.table().find("newest 24 tokens") != std::string::npos);
  }
  SUBCASE("against an f64 reference on the rows each part holds") {
    for (const char* pol : {"turbo3", "-ctk q8_0 -ctv turbo2", "-ctk turbo4 -ctv f32"}) {
      CAPTURE(pol);
      const std::string spec = std::string(pol) + " recent=" + std::to_string(R);
      for (std::size_t tile : {7, 256}) {
        const cache_options o{.n_ctx = 128, .tiling = {.key_tile = tile, .score_floats = 0}};
        runtime_kv_cache plain(m, parse_policy(pol), o), recent(m, parse_policy(spec), o);
        const auto op = run(plain, 0, k, v, n, q, nq, 32);
        const auto orc = run(recent, 0, k, v, n, q, nq, 32);
        CHECK(recent.recent_begin(0) == std::int64_t(n - R));
        // The expected keys: decoded compressed rows before the window, the inputs in it.
        std::vector<float> kk(n * nkv * d), vv(n * nkv * d);
        for (std::size_t t = 0; t < n; ++t)
          for (std::size_t h = 0; h < nkv; ++h) {
            float* kr = kk.data() + (t * nkv + h) * d;
            float* vr = vv.data() + (t * nkv + h) * d;
            recent.read_k(0, t, h, kr);
            recent.read_v(0, t, h, vr);
            if (t >= n - R) {
              std::copy_n(k.begin() + long((t * nkv + h) * d), d, kr);
              std::copy_n(v.begin() + long((t * nkv + h) * d), d, vr);
            }
          }
        const auto ref = reference_attention(q, nq, n - nq, kk, vv, n, 0, nh, nkv, d, scale);
        const auto exact = reference_attention(q, nq, n - nq, k, v, n, 0, nh, nkv, d, scale);
        // The same reference for the cache without the window: every row decoded.
        std::vector<float> pk(n * nkv * d), pv(n * nkv * d);
        for (std::size_t t = 0; t < n; ++t)
          for (std::size_t h = 0; h < nkv; ++h) {
            plain.read_k(0, t, h, pk.data() + (t * nkv + h) * d);
            plain.read_v(0, t, h, pv.data() + (t * nkv + h) * d);
          }
        const auto ref_plain = reference_attention(q, nq, n - nq, pk, pv, n, 0, nh, nkv, d, scale);
        // Older keys go through the int8 query kernels of the compressed codecs, in both caches
        // alike; the window must add no more than the f16 rounding of its rows to that.
        CHECK(max_abs_diff(orc, ref) <= max_abs_diff(op, ref_plain) + 1e-3);
        auto sq_err = [&](const std::vector<float>& a) {
          double e = 0;
          for (std::size_t i = 0; i < a.size(); ++i)
            e += (double(a[i]) - exact[i]) * (double(a[i]) - exact[i]);
          return e;
        };
        CHECK(sq_err(orc) < 0.9 * sq_err(op));
      }
    }
  }
  SUBCASE("a window that holds every token reads only f16 rows") {
    for (const char* pol : {"turbo2", "-ctk q8_0 -ctv turbo3", "q4_0"}) {
      CAPTURE(std::string(pol));
      runtime_kv_cache f16c(m, parse_policy("f16"), {.n_ctx = 128}),
          recent(m, parse_policy(std::string(pol) + " recent=100"), {.n_ctx = 128});
      const auto of = run(f16c, 0, k, v, n, q, nq, 32);
      const auto orc = run(recent, 0, k, v, n, q, nq, 32);
      CHECK(recent.recent_begin(0) == 0);
      // Only the f16 rounding of rotated instead of plain rows differs (turbo), or nothing.
      CHECK(max_abs_diff(orc, of) < 2e-3);
    }
  }
  SUBCASE("truncate and re-append, save / load, shift") {
    const std::string spec = "-ctk turbo3 -ctv turbo2 recent=16";
    runtime_kv_cache a(m, parse_policy(spec), {.n_ctx = 128}),
        b(m, parse_policy(spec), {.n_ctx = 128});
    const std::size_t row = nkv * d;
    a.append(0, 0, k.data(), v.data(), 40);
    a.truncate(30);
    CHECK(a.recent_begin(0) == 24);
    a.append(0, 30, k.data() + 30 * row, v.data() + 30 * row, 10);
    b.append(0, 0, k.data(), v.data(), 40);
    std::vector<float> oa(nh * d), ob(nh * d);
    a.attend(0, q.data(), 1, 39, oa.data());
    b.attend(0, q.data(), 1, 39, ob.data());
    CHECK(max_abs_diff(oa, ob) == 0.0);
    // A loaded cache has no recent rows: it reads what a cache without the window reads.
    const std::string file =
        (std::filesystem::temp_directory_path() / "strata_recent.bin").string();
    b.save(file);
    runtime_kv_cache c(m, parse_policy(spec), {.n_ctx = 128}),
        none(m, parse_policy("-ctk turbo3 -ctv turbo2"), {.n_ctx = 128});
    c.load(file);
    std::filesystem::remove(file);
    none.append(0, 0, k.data(), v.data(), 40);
    CHECK(c.recent_begin(0) == 40);
    std::vector<float> oc(nh * d), on(nh * d);
    c.attend(0, q.data(), 1, 39, oc.data());
    none.attend(0, q.data(), 1, 39, on.data());
    CHECK(max_abs_diff(oc, on) == 0.0);
    // New tokens after the load get recent rows again.
    c.append(0, 40, k.data() + 40 * row, v.data() + 40 * row, 5);
    CHECK(c.recent_begin(0) == 40);
    b.shift(3);
    CHECK(b.recent_begin(0) == b.pos_end(0));
  }
  SUBCASE("sliding window ring") {
    const layer_map sm(
        std::vector<layer_info>{{true, -1, attention_kind::sliding, 32, nh, nkv, d}});
    runtime_kv_cache c(sm, parse_policy("turbo3 recent=20"), {.n_ctx = 128, .max_batch = 8});
    const std::size_t row = nkv * d;
    for (std::size_t t = 0; t < n; t += 8)
      c.append(0, std::int64_t(t), k.data() + t * row, v.data() + t * row,
               std::min<std::size_t>(8, n - t));
    CHECK(c.recent_begin(0) == std::int64_t(n - 20));
    std::vector<float> out(nh * d), kk(n * row, 0.0f), vv(n * row, 0.0f);
    c.attend(0, q.data(), 1, std::int64_t(n - 1), out.data());
    const std::int64_t first = c.pos_begin(0);
    for (std::int64_t p = first; p < std::int64_t(n); ++p)
      for (std::size_t h = 0; h < nkv; ++h) {
        const std::size_t o = (std::size_t(p) * nkv + h) * d;
        c.read_k(0, std::size_t(p - first), h, kk.data() + o);
        c.read_v(0, std::size_t(p - first), h, vv.data() + o);
        if (p >= std::int64_t(n - 20)) {
          std::copy_n(k.begin() + long(o), d, kk.begin() + long(o));
          std::copy_n(v.begin() + long(o), d, vv.begin() + long(o));
        }
      }
    const auto ref =
        reference_attention(q, 1, std::int64_t(n - 1), kk, vv, n, 0, nh, nkv, d, scale, 32);
    const auto exact =
        reference_attention(q, 1, std::int64_t(n - 1), k, v, n, 0, nh, nkv, d, scale, 32);
    // 20 of the 32 visible keys come from f16 rows: close to the reference on the rows each
    // part holds (the compressed keys' int8 query rounding aside), and closer to the exact
    // attention than the plain cache.
    runtime_kv_cache plain(sm, parse_policy("turbo3"), {.n_ctx = 128, .max_batch = 8});
    for (std::size_t t = 0; t < n; t += 8)
      plain.append(0, std::int64_t(t), k.data() + t * row, v.data() + t * row,
                   std::min<std::size_t>(8, n - t));
    std::vector<float> op(nh * d);
    plain.attend(0, q.data(), 1, std::int64_t(n - 1), op.data());
    CHECK(max_abs_diff(out, ref) < 0.5 * max_abs_diff(op, exact));
    // (0.270 against 0.462 here since turbo's scale search, which moved this draw from under
    // 0.5x: the 12 compressed keys' share of the error now weighs more.)
    CHECK(max_abs_diff(out, exact) < 0.7 * max_abs_diff(op, exact));
  }
}

namespace {

// A toy RoPE for the erase tests: channel pairs (2i, 2i+1) turn by pos * theta_i.
void toy_rope(float* x, std::size_t d, double pos) {
  for (std::size_t i = 0; i + 1 < d; i += 2) {
    const double a = pos * 0.3 / double(i / 2 + 1), c = std::cos(a), s = std::sin(a);
    const double x0 = x[i], x1 = x[i + 1];
    x[i] = float(x0 * c - x1 * s);
    x[i + 1] = float(x0 * s + x1 * c);
  }
}

}  // namespace

TEST_CASE("erase: a middle range goes, later keys are re-roped, nothing else moves") {
  const std::size_t d = 32, nkv = 2, nh = 4, n = 60, row = nkv * d;
  const layer_map m = layer_map::dense(2, nkv, d, nh);
  const auto kraw = gaussian(n * row, 31), v = gaussian(n * row, 32), q = gaussian(nh * d, 33);
  // Keys as the model appends them: RoPE at their position.
  const auto roped = [&](std::size_t t, double pos) {
    std::vector<float> r(kraw.begin() + long(t * row), kraw.begin() + long((t + 1) * row));
    for (std::size_t h = 0; h < nkv; ++h) toy_rope(r.data() + h * d, d, pos);
    return r;
  };
  const auto rerope = [](std::size_t, std::size_t, std::int64_t from, std::int64_t to, float* r,
                         std::size_t dim) { toy_rope(r, dim, double(to - from)); };
  const double scale = 1 / std::sqrt(double(d));
  // [begin, end): a short head moves up (4 < 46 tokens), a short tail moves down (10 > 5).
  const struct { std::int64_t begin, end; } ranges[] = {{4, 14}, {45, 55}, {0, 20}, {50, 60}};
  for (const char* policy : {"f32", "q8_0", "-ctk turbo4 -ctv turbo3 recent=8", "turbo4 k-balance"})
    for (const bool k_mean : {false, true})
      for (const auto r : ranges) {
        const std::string name = policy;
        CAPTURE(name);
        CAPTURE(k_mean);
        CAPTURE(r.begin);
        cache_options opt{.n_ctx = 64};
        opt.subtract_k_mean = k_mean;
        runtime_kv_cache c(m, parse_policy(policy), opt), fresh(m, parse_policy(policy), opt);
        std::vector<float> k_all, k_kept, v_kept;
        for (std::size_t t = 0; t < n; ++t) {
          const auto kr = roped(t, double(t));
          k_all.insert(k_all.end(), kr.begin(), kr.end());
        }
        const std::size_t len = std::size_t(r.end - r.begin);
        for (std::size_t t = 0; t < n; ++t) {
          if (std::int64_t(t) >= r.begin && std::int64_t(t) < r.end) continue;
          const auto kr = roped(t, double(std::int64_t(t) < r.begin ? t : t - len));
          k_kept.insert(k_kept.end(), kr.begin(), kr.end());
          v_kept.insert(v_kept.end(), v.begin() + long(t * row), v.begin() + long((t + 1) * row));
        }
        const std::size_t kept = n - len;
        for (std::size_t l = 0; l < 2; ++l) {
          c.balance_k(l, q.data(), 1, k_all.data(), n);
          c.append(l, 0, k_all.data(), v.data(), n);
          // The same K scales as c's (k-balance), so both caches store keys alike.
          if (!c.k_scales(l).empty()) fresh.set_k_scales(l, c.k_scales(l).data());
          fresh.append(l, 0, k_kept.data(), v_kept.data(), kept);
        }
        // Tokens before the range keep their bytes: the last one decodes as before the erase.
        std::vector<float> before(d), after(d);
        if (r.begin > 0) c.read_k(0, std::size_t(r.begin - 1), 1, before.data());
        c.erase(r.begin, r.end, rerope);
        if (r.begin > 0) c.read_k(0, std::size_t(r.begin - 1), 1, after.data());
        CHECK(before == after);
        CHECK(c.size(1) == kept);
        CHECK(c.pos_begin(1) == 0);
        CHECK(c.pos_end(1) == std::int64_t(kept));
        // Attention of a query after the kept tokens: as the cache that never held the range,
        // within one more quantization round trip of the moved keys.
        const auto ref =
            reference_attention(q, 1, kept, k_kept, v_kept, kept, 0, nh, nkv, d, scale);
        std::vector<float> out(nh * d), out_fresh(nh * d);
        c.attend(1, q.data(), 1, std::int64_t(kept), out.data());
        fresh.attend(1, q.data(), 1, std::int64_t(kept), out_fresh.data());
        const double err = rel_l2(out, ref), err_fresh = rel_l2(out_fresh, ref);
        if (std::string(policy) == "f32")
          CHECK(err < 1e-5);
        else
          CHECK(err <= 2.0 * err_fresh + 1e-4);
        // Appending continues after the kept tokens (and wraps the 64-slot ring).
        for (std::size_t l = 0; l < 2; ++l) {
          c.append(l, std::int64_t(kept), k_all.data(), v.data(), len);
          fresh.append(l, std::int64_t(kept), k_all.data(), v.data(), len);
        }
        c.attend(0, q.data(), 1, std::int64_t(n - 1), out.data());
        fresh.attend(0, q.data(), 1, std::int64_t(n - 1), out_fresh.data());
        if (std::string(policy) == "f32") CHECK(max_abs_diff(out, out_fresh) < 1e-5);
      }
}

TEST_CASE("erase: ranges outside a layer, no rerope, bad ranges") {
  const std::size_t d = 32, n = 40;
  const layer_map m = layer_map::dense(1, 1, d, 1);
  runtime_kv_cache c(m, parse_policy("f32"), {.n_ctx = 64});
  const auto k = gaussian(n * d, 41), v = gaussian(n * d, 42);
  c.append(0, 0, k.data(), v.data(), n);
  c.drop_front(10);  // positions 10..39
  c.erase(2, 6);     // before the layer's tokens: they all move down by 4
  CHECK(c.pos_begin(0) == 6);
  CHECK(c.pos_end(0) == 36);
  c.erase(50, 60);  // after them: nothing
  CHECK(c.size(0) == 30);
  c.erase(4, 16);  // overlaps the front: positions 6..15 go, 16.. become 4..
  CHECK(c.pos_begin(0) == 4);
  CHECK(c.size(0) == 20);
  std::vector<float> a(d);
  c.read_k(0, 0, 0, a.data());  // keys keep their values without a rerope
  CHECK(a[5] == k[20 * d + 5]);
  CHECK_THROWS_WITH_AS(c.erase(5, 3), doctest::Contains("bad range [5, 3)"), std::invalid_argument);
  CHECK_THROWS_AS(c.erase(-1, 3), std::invalid_argument);
}

namespace {

// What one run of key_tile_ops records: every attention output, then every row read back, and
// the saved file.
struct tile_run {
  std::vector<std::vector<float>> outs;
  std::vector<float> rows;
  std::string file;
};

// Batches, decode steps, an erase with rerope, truncate, drop_front, a global ring that wraps, a
// shift with rerope; the same inputs whatever the cache's layout.
tile_run key_tile_ops(runtime_kv_cache& c, const std::string& file) {
  const layer_map& m = c.map();
  tile_run r;
  std::uint64_t seed = 100;
  const auto negate = [](std::size_t, std::size_t, std::int64_t, std::int64_t, float* row,
                         std::size_t d) {
    for (std::size_t i = 0; i < d; ++i) row[i] = -row[i];
  };
  const auto step = [&](std::size_t n) {  // append n tokens to every layer, attend with them
    for (std::size_t l = 0; l < m.n_layers(); ++l) {
      const layer_info& li = m[l];
      const std::int64_t pos = c.pos_end(l);
      const auto k = gaussian(n * li.n_kv_heads * li.head_dim, ++seed);
      const auto v = gaussian(k.size(), ++seed);
      const auto q = gaussian(n * li.n_heads * li.head_dim, ++seed);
      c.append(l, pos, k.data(), v.data(), n);
      r.outs.emplace_back(q.size());
      c.attend(l, q.data(), n, pos, r.outs.back().data());
    }
  };
  for (std::size_t n : {5, 8, 1, 8, 3, 1, 1, 8, 8, 1}) step(n);  // 44: the sliding ring wraps
  c.erase(10, 17, negate);
  step(1);
  c.truncate(c.pos_end(0) - 3);
  step(2);
  c.drop_front(5);
  while (c.size(0) + 8 <= c.capacity(0)) step(8);  // the global ring wraps
  while (c.size(0) < c.capacity(0)) step(1);
  c.shift(100, negate);
  c.drop_front(2);
  step(1);
  for (std::size_t l = 0; l < m.n_layers(); ++l) {
    const layer_info& li = m[l];
    std::vector<float> x(li.head_dim);
    for (std::size_t t = 0; t < c.size(l); ++t)
      for (std::size_t h = 0; h < li.n_kv_heads; ++h) {
        c.read_k(l, t, h, x.data());
        r.rows.insert(r.rows.end(), x.begin(), x.end());
        c.read_v(l, t, h, x.data());
        r.rows.insert(r.rows.end(), x.begin(), x.end());
      }
  }
  c.save(file);
  std::ifstream in(file, std::ios::binary);
  r.file.assign(std::istreambuf_iterator<char>(in), {});
  return r;
}

// The kernels of the cache, with the scalar reference's key-tile kernels.
codec_kernels reference_tile_kernels(codec_id id, std::uint32_t head_dim) {
  codec_kernels k = layer_kernels(id, head_dim);
  const codec_kernels ref = reference_kernels(id, head_dim);
  k.tile_dot = ref.tile_dot;
  k.tile_axpy = ref.tile_axpy;
  return k;
}

}  // namespace

// Key tiles (strata/codec/key_tile.hpp) in the cache: turbo4 rows stored 32 to a tile. The
// same operations on a tiled cache and a plain one keep the same rows and write the same files;
// attention differs only by the tile kernels' arithmetic, and gives their scalar reference's
// bits on every target.
TEST_CASE("key tiles: same rows, positions and files as plain rows; the tile kernels' bits") {
  layer_info g64, s128, g128;
  g64.n_kv_heads = 2, g64.n_heads = 6, g64.head_dim = 64;
  s128.n_kv_heads = 1, s128.n_heads = 3, s128.head_dim = 128;
  s128.kind = attention_kind::sliding, s128.window = 20;
  g128.n_kv_heads = 1, g128.n_heads = 2, g128.head_dim = 128;
  const layer_map m({g64, s128, g128});
  // the last layer: turbo4 K (tiles) with q8_0 V (rows)
  const policy_spec p = parse_policy("kv:0-1=turbo4;k=turbo4;v=q8_0");
  const std::string dir = std::filesystem::temp_directory_path().string();
  cache_options o{.n_ctx = 70, .max_batch = 8};  // 70: the last tile of a head is partial
  strata_test::for_each_target([&] {
    o.key_tiles = key_tile_use::never;
    runtime_kv_cache rows(m, p, o);
    o.key_tiles = key_tile_use::always;
    runtime_kv_cache tiles(m, p, o);
    o.kernels = &reference_tile_kernels;
    runtime_kv_cache ref(m, p, o);
    o.kernels = &layer_kernels;
    o.key_tiles = key_tile_use::native;
    runtime_kv_cache native(m, p, o);
    CHECK(tiles.bytes() == rows.bytes());
    CHECK(tiles.bytes() == report(p, m).bytes(70, 8));
    // turbo4 rows (34 bytes at head dim 64, 66 at 128) in tiles of 32 per KV head: 70 tokens take
    // 96 slots, the sliding layer's 27 (window 20 + batch 8 - 1) take 32; q8_0 takes 70 rows
    CHECK(report(p, m).k_bytes(70, 8) == 2 * 96 * 34 + 32 * 66 + 96 * 66);
    CHECK(report(p, m).v_bytes(70, 8) == 2 * 96 * 34 + 32 * 66 + 70 * 136);

    const tile_run a = key_tile_ops(rows, dir + "/strata_tiles_rows.state");
    const tile_run b = key_tile_ops(tiles, dir + "/strata_tiles_tiles.state");
    const tile_run c = key_tile_ops(ref, dir + "/strata_tiles_ref.state");
    const tile_run n = key_tile_ops(native, dir + "/strata_tiles_native.state");
    REQUIRE(a.outs.size() == b.outs.size());
    CHECK(a.rows == b.rows);
    CHECK(a.file == b.file);
    CHECK(c.file == b.file);
    double worst = 0, any = 0;
    for (std::size_t i = 0; i < a.outs.size(); ++i) {
      CHECK(b.outs[i] == c.outs[i]);
      CHECK(n.outs[i] == (tile_kernels_native() ? b.outs[i] : a.outs[i]));
      worst = std::max(worst, rel_l2(b.outs[i], a.outs[i]));
      any = std::max(any, max_abs_diff(b.outs[i], a.outs[i]));
    }
    MESSAGE("tiles against rows: worst relative L2 of an attention output ", worst);
    CHECK(any > 0.0);  // the tile kernels did run
    CHECK(worst < 0.05);
    // a tiled cache loads the plain one's file (and the other way), and saves it again as is
    runtime_kv_cache tiles2(m, p, {.n_ctx = 70, .max_batch = 8, .key_tiles = key_tile_use::always});
    tiles2.load(dir + "/strata_tiles_rows.state");
    tiles2.save(dir + "/strata_tiles_again.state");
    std::ifstream in(dir + "/strata_tiles_again.state", std::ios::binary);
    CHECK(std::string(std::istreambuf_iterator<char>(in), {}) == a.file);
  });
  for (const char* f : {"rows", "tiles", "ref", "native", "again"})
    std::filesystem::remove(dir + "/strata_tiles_" + f + ".state");
}
