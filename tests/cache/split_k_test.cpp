// Split-K (strata/cache/split_k.hpp): attention over key ranges, each call writing its rows'
// log-sum-exp, merged by merge_attention, against one call over all keys: every codec family,
// decode and small batches, softcap, sliding window with a ring, recent window, a wrapped
// global ring, empty ranges, 1-4 parts, parts on threads; and the merge and chunk arithmetic.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include <strata/cache/runtime_kv_cache.hpp>
#include <strata/cache/split_k.hpp>
#include <strata/policy/parse.hpp>

#include "../support/int8_v.hpp"
#include "attention_reference.hpp"

using namespace strata;
using namespace strata_test;

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

struct result {
  std::vector<float> out, lse;
};

// One call over every key, with its log-sum-exp.
result attend_all(const runtime_kv_cache& c, std::size_t layer, const std::vector<float>& q,
                  std::size_t n_q, std::int64_t first_pos, attention_params p = {}) {
  const layer_info& li = c.map()[layer];
  result r{std::vector<float>(n_q * li.n_heads * li.head_dim, -7.0f),
           std::vector<float>(n_q * li.n_heads, -7.0f)};
  p.lse = r.lse.data();
  c.attend(layer, q.data(), n_q, first_pos, r.out.data(), p);
  return r;
}

// The visible keys cut into `parts` chunks (plus, when `extra`, an empty range before the
// cached keys and one after the queries), one call per chunk into its own rows, merged.
result attend_split(const runtime_kv_cache& c, std::size_t layer, const std::vector<float>& q,
                    std::size_t n_q, std::int64_t first_pos, std::size_t parts,
                    attention_params p = {}, bool extra = false) {
  const layer_info& li = c.map()[layer];
  const std::size_t rows = n_q * li.n_heads, d = li.head_dim;
  const key_range keys = c.visible_keys(layer, first_pos, n_q);
  std::vector<key_range> ranges;
  for (std::size_t i = 0; i < parts; ++i) ranges.push_back(keys.chunk(parts, i));
  if (extra) {
    ranges.push_back({c.pos_begin(layer) - 50, c.pos_begin(layer)});
    ranges.push_back({first_pos + std::int64_t(n_q), first_pos + std::int64_t(n_q) + 9});
  }
  std::vector<result> part(ranges.size());
  std::vector<attention_part> views;
  for (std::size_t i = 0; i < ranges.size(); ++i) {
    part[i] = {std::vector<float>(rows * d, -7.0f), std::vector<float>(rows, -7.0f)};
    attention_params pi = p;
    pi.key_begin = ranges[i].begin;
    pi.key_end = ranges[i].end;
    pi.lse = part[i].lse.data();
    c.attend(layer, q.data(), n_q, first_pos, part[i].out.data(), pi);
    views.push_back({part[i].out.data(), part[i].lse.data()});
  }
  result r{std::vector<float>(rows * d), std::vector<float>(rows)};
  merge_attention(views, rows, d, r.out.data(), r.lse.data());
  return r;
}

double rel_l2(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    num += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    den += double(b[i]) * b[i];
  }
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

bool all_finite(const std::vector<float>& x) {
  for (float v : x)
    if (!std::isfinite(v)) return false;
  return true;
}

double max_lse_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double m = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::isinf(a[i]) || std::isinf(b[i])) {
      if (a[i] != b[i]) return 1e30;
      continue;
    }
    m = std::max(m, std::abs(double(a[i]) - b[i]));
  }
  return m;
}

// The exact attention (f64) over the layer's cached rows as the cache decodes them (token i at
// position pos_begin + i; every cached key visible to the queries, no window).
std::vector<float> exact_over_cache(const runtime_kv_cache& c, std::size_t layer,
                                    const std::vector<float>& q, std::size_t n_q,
                                    std::int64_t first_pos, const attention_params& p) {
  const layer_info& li = c.map()[layer];
  const std::size_t n = c.size(layer), d = li.head_dim, nkv = li.n_kv_heads;
  std::vector<float> k(n * nkv * d), v(n * nkv * d);
  for (std::size_t t = 0; t < n; ++t)
    for (std::size_t h = 0; h < nkv; ++h) {
      c.read_k(layer, t, h, k.data() + (t * nkv + h) * d);
      c.read_v(layer, t, h, v.data() + (t * nkv + h) * d);
    }
  const double scale = p.scale > 0 ? p.scale : 1.0 / std::sqrt(double(d));
  const auto r = reference_attention(q, n_q, first_pos, k, v, n, c.pos_begin(layer), li.n_heads,
                                     nkv, d, scale, 0, p.softcap);
  return {r.begin(), r.end()};
}

}  // namespace

TEST_CASE("split-K equals one call: every codec family, decode and a batch, 1-4 parts") {
  const std::size_t d = 64, nkv = 2, nh = 8, n = 700;
  const layer_map m = layer_map::dense(1, nkv, d, nh);
  const auto k = outlier_keys(n * nkv, d, 301), v = gaussian(n * nkv * d, 302),
             q = gaussian(6 * nh * d, 303);
  double worst = 0;
  for (const char* pol :
       {"f32", "f16", "bf16", "q8_0", "q4_0", "q8_0r", "q4_0r", "turbo2", "turbo3", "turbo4",
        "turbo5", "turbo4g32", "vq2", "-ctk q8_0 -ctv turbo3", "-ctk turbo4 -ctv f16"}) {
    for (std::size_t tile : {7, 0}) {
      // tile 0: the default tiling (2048-key tiles for a decode step); 7: tiles that cut the
      // chunks anywhere.
      const cache_options o{
          .n_ctx = 1024,
          .tiling = {.key_tile = tile ? tile : 256, .score_floats = tile ? 0 : std::size_t(8192)}};
      runtime_kv_cache c(m, parse_policy(pol), o);
      c.append(0, 0, k.data(), v.data(), n);
      const bool int8 = strata_test::int8_v_here(pol, m);  // turbo4 here on AVX2
      for (std::size_t n_q : {1, 6}) {
        const std::int64_t first = std::int64_t(n - n_q);
        const result one = attend_all(c, 0, q, n_q, first);
        for (std::size_t parts = 1; parts <= 4; ++parts) {
          CAPTURE(pol);
          CAPTURE(tile);
          CAPTURE(n_q);
          CAPTURE(parts);
          const result split = attend_split(c, 0, q, n_q, first, parts);
          CHECK(max_lse_diff(split.lse, one.lse) < 3e-6);
          if (int8) {
            // A split moves the integer V product's weight groups (int8_axpy.hpp): the merged
            // result must be as accurate as one call's against the exact attention.
            const auto exact = exact_over_cache(c, 0, q, n_q, first, {});
            CHECK(rel_l2(split.out, exact) <= 2 * rel_l2(one.out, exact) + 3e-6);
            continue;
          }
          const double e = rel_l2(split.out, one.out);
          worst = std::max(worst, e);
          CHECK(e < 3e-6);
          CHECK(all_finite(split.out));
        }
      }
    }
  }
  MESSAGE("worst relative L2 error of the merged output: " << worst);
}

TEST_CASE("split-K: softcap and scale, empty ranges add nothing") {
  const std::size_t d = 128, nkv = 1, nh = 4, n = 333;
  const layer_map m = layer_map::dense(1, nkv, d, nh);
  const auto k = gaussian(n * d, 311), v = gaussian(n * d, 312), q = gaussian(3 * nh * d, 313);
  // int8: turbo V whose V product runs in 8-bit integers here (x86 AVX2/AVX3 by group:
  // strata/kernels/int8_axpy.hpp, int8_v_on; the weights are quantized per group of 32 keys,
  // and a split changes the groups). There the merged result must be as accurate as one call's
  // against the exact attention over the decoded cache; elsewhere it equals one call's to f32
  // rounding.
  for (const char* pol : {"f16", "turbo3", "-ctk q8_0 -ctv turbo2"}) {
    CAPTURE(pol);
    const bool int8 = strata_test::int8_v_here(pol, m);
    runtime_kv_cache c(m, parse_policy(pol), {.n_ctx = 512});
    c.append(0, 0, k.data(), v.data(), n);
    attention_params p;
    p.scale = 0.3f;
    p.softcap = 3.0f;
    const result one = attend_all(c, 0, q, 3, n - 3, p);
    const std::vector<float> exact = exact_over_cache(c, 0, q, 3, n - 3, p);
    const double e_one = rel_l2(one.out, exact);
    for (std::size_t parts : {1, 3}) {
      CAPTURE(parts);
      const result split = attend_split(c, 0, q, 3, n - 3, parts, p, true);
      const double e = rel_l2(split.out, one.out), e_split = rel_l2(split.out, exact);
      MESSAGE(std::string(pol) << ", " << parts << " parts: against one call " << e
                               << "; against exact: one " << e_one << ", split " << e_split);
      CHECK((e < 3e-6 || int8));
      CHECK(e_split <= 2 * e_one + 3e-6);
      CHECK(max_lse_diff(split.lse, one.lse) < 3e-6);
      CHECK(all_finite(split.out));
    }
    // One part plus empty ones: the part's own bits.
    const result alone = attend_split(c, 0, q, 3, n - 3, 1, p, true);
    CHECK(max_abs_diff(alone.out, one.out) == 0.0);
    // A range that holds no key (before the cache, after the queries, or reversed): zeros and
    // -inf, no NaN.
    for (key_range r : {key_range{-100, 0}, key_range{std::int64_t(n), std::int64_t(n) + 10},
                        key_range{200, 100}}) {
      std::vector<float> out(3 * nh * d, 5.0f), lse(3 * nh, 5.0f);
      attention_params pe = p;
      pe.key_begin = r.begin;
      pe.key_end = r.end;
      pe.lse = lse.data();
      c.attend(0, q.data(), 3, n - 3, out.data(), pe);
      for (float x : out) CHECK(x == 0.0f);
      for (float x : lse) CHECK(x == kNegInf);
    }
  }
}

TEST_CASE("split-K: sliding window over a ring, recent window, batches whose rows see less") {
  const std::size_t d = 64, nkv = 1, nh = 3, n = 150, W = 40;
  const layer_map sm(std::vector<layer_info>{{true, -1, attention_kind::sliding, W, nh, nkv, d}});
  const auto k = outlier_keys(n, d, 321), v = gaussian(n * d, 322), q = gaussian(n * nh * d, 323);
  for (const char* pol : {"f32", "turbo3 recent=20", "-ctk q8_0 -ctv turbo2 recent=12", "q4_0"}) {
    CAPTURE(pol);
    runtime_kv_cache c(sm, parse_policy(pol), {.n_ctx = 128, .max_batch = 8});
    std::size_t checked = 0;
    for (std::size_t t = 0; t < n; t += 8) {
      const std::size_t nb = std::min<std::size_t>(8, n - t);
      c.append(0, std::int64_t(t), k.data() + t * d, v.data() + t * d, nb);
      const std::vector<float> qb(q.begin() + long(t * nh * d),
                                  q.begin() + long((t + nb) * nh * d));
      const result one = attend_all(c, 0, qb, nb, std::int64_t(t));
      for (std::size_t parts = 1; parts <= 4; ++parts) {
        const result split = attend_split(c, 0, qb, nb, std::int64_t(t), parts, {}, true);
        CHECK(rel_l2(split.out, one.out) < 3e-6);
        CHECK(max_lse_diff(split.lse, one.lse) < 3e-6);
        ++checked;
      }
      // Decode of the batch's last token alone.
      const std::vector<float> ql(qb.end() - long(nh * d), qb.end());
      const result one1 = attend_all(c, 0, ql, 1, std::int64_t(t + nb - 1));
      const result split1 = attend_split(c, 0, ql, 1, std::int64_t(t + nb - 1), 3);
      CHECK(rel_l2(split1.out, one1.out) < 3e-6);
    }
    CHECK(checked > 0);
    const key_range vis = c.visible_keys(0, std::int64_t(n - 1), 1);
    CHECK(vis.begin == std::int64_t(n - W));
    CHECK(vis.end == std::int64_t(n));
  }
}

TEST_CASE("split-K: a global ring that wraps (drop_front, then append)") {
  const std::size_t d = 64, nkv = 3, nh = 9, cap = 256;
  const layer_map m = layer_map::dense(1, nkv, d, nh);
  const auto k = gaussian(400 * nkv * d, 331), v = gaussian(400 * nkv * d, 332),
             q = gaussian(nh * d, 333);
  for (const char* pol : {"f16", "turbo4", "-ctk q8_0 -ctv turbo3 recent=32"}) {
    CAPTURE(pol);
    runtime_kv_cache c(m, parse_policy(pol), {.n_ctx = cap});
    c.append(0, 0, k.data(), v.data(), cap);
    c.drop_front(100);
    c.append(0, std::int64_t(cap), k.data() + cap * nkv * d, v.data() + cap * nkv * d, 90);
    const std::int64_t last = c.pos_end(0) - 1;
    const key_range vis = c.visible_keys(0, last, 1);
    CHECK(vis.begin == 100);
    CHECK(vis.end == last + 1);
    const result one = attend_all(c, 0, q, 1, last);
    // (the integer V product: as accurate as one call against the exact attention, see above)
    const bool int8 = strata_test::int8_v_here(pol, m);
    const auto exact = exact_over_cache(c, 0, q, 1, last, {});
    for (std::size_t parts = 1; parts <= 4; ++parts) {
      const result split = attend_split(c, 0, q, 1, last, parts);
      if (int8)
        CHECK(rel_l2(split.out, exact) <= 2 * rel_l2(one.out, exact) + 3e-6);
      else
        CHECK(rel_l2(split.out, one.out) < 3e-6);
      CHECK(max_lse_diff(split.lse, one.lse) < 3e-6);
    }
  }
}

TEST_CASE("split-K: jobs (KV head, key chunk) on threads give the sequential merge's bits") {
  const std::size_t d = 64, nkv = 3, nh = 9, n = 3000;
  const layer_map m = layer_map::dense(1, nkv, d, nh);
  runtime_kv_cache c(m, parse_policy("-ctk q8_0 -ctv turbo4"), {.n_ctx = 4096});
  const auto k = gaussian(n * nkv * d, 341), v = gaussian(n * nkv * d, 342),
             q = gaussian(nh * d, 343);
  c.append(0, 0, k.data(), v.data(), n);
  const std::size_t chunks = key_chunks(nkv, 2, n, 1024);
  CHECK(chunks == 2);
  const key_range keys = c.visible_keys(0, std::int64_t(n - 1), 1);
  std::vector<std::vector<float>> out(chunks, std::vector<float>(nh * d)),
      lse(chunks, std::vector<float>(nh));
  std::vector<std::thread> pool;
  for (std::size_t job = 0; job < nkv * chunks; ++job)
    pool.emplace_back([&, job] {
      const std::size_t h = job % nkv, i = job / nkv;
      attention_params p;
      p.kv_head_begin = h;
      p.kv_head_end = h + 1;
      p.key_begin = keys.chunk(chunks, i).begin;
      p.key_end = keys.chunk(chunks, i).end;
      p.lse = lse[i].data();
      c.attend(0, q.data(), 1, std::int64_t(n - 1), out[i].data(), p);
    });
  for (auto& t : pool) t.join();
  std::vector<attention_part> parts;
  for (std::size_t i = 0; i < chunks; ++i) parts.push_back({out[i].data(), lse[i].data()});
  merge_attention(parts, nh, d, out[0].data());  // in place
  const result seq = attend_split(c, 0, q, 1, std::int64_t(n - 1), chunks);
  CHECK(max_abs_diff(out[0], seq.out) == 0.0);
  const auto one = attend_all(c, 0, q, 1, std::int64_t(n - 1)).out;
  if (strata_test::int8_v_here("-ctk q8_0 -ctv turbo4", m)) {
    const auto exact = exact_over_cache(c, 0, q, 1, std::int64_t(n - 1), {});
    CHECK(rel_l2(out[0], exact) <= 2 * rel_l2(one, exact) + 3e-6);
  } else {
    CHECK(rel_l2(out[0], one) < 3e-6);
  }
}

TEST_CASE("merge_attention: weights, in place on any part, rows no part saw") {
  const std::size_t rows = 3, dim = 2;
  // Row 0: parts with lse ln 1 and ln 3: weights 1/4 and 3/4. Row 1: only part 1 saw keys.
  // Row 2: no part saw a key.
  std::vector<float> a{1, 2, 5, 6, 0, 0}, b{3, 4, 7, 8, 0, 0};
  std::vector<float> la{0.0f, kNegInf, kNegInf}, lb{std::log(3.0f), 1.5f, kNegInf};
  const std::vector<attention_part> parts{{a.data(), la.data()}, {b.data(), lb.data()}};
  std::vector<float> out(rows * dim, 9.0f), lse(rows);
  merge_attention(parts, rows, dim, out.data(), lse.data());
  CHECK(out[0] == doctest::Approx(0.25 * 1 + 0.75 * 3));
  CHECK(out[1] == doctest::Approx(0.25 * 2 + 0.75 * 4));
  CHECK(out[2] == 7.0f);
  CHECK(out[3] == 8.0f);
  CHECK(out[4] == 0.0f);
  CHECK(out[5] == 0.0f);
  CHECK(lse[0] == doctest::Approx(std::log(4.0)));
  CHECK(lse[1] == 1.5f);
  CHECK(lse[2] == kNegInf);
  // In place on the second part: the same numbers.
  std::vector<float> b2 = b;
  const std::vector<attention_part> parts2{{a.data(), la.data()}, {b2.data(), lb.data()}};
  merge_attention(parts2, rows, dim, b2.data());
  CHECK(max_abs_diff(b2, out) < 1e-6);
  // Large lse values do not overflow.
  std::vector<float> lc{1000.0f, 1000.0f, 1000.0f}, ld{1000.0f, kNegInf, 999.0f};
  const std::vector<attention_part> parts3{{a.data(), lc.data()}, {b.data(), ld.data()}};
  merge_attention(parts3, rows, dim, out.data(), lse.data());
  CHECK(out[0] == doctest::Approx(2.0));
  CHECK(out[2] == 5.0f);
  CHECK(lse[0] == doctest::Approx(1000.0 + std::log(2.0)));
}

TEST_CASE("key_chunks and key_range::chunk") {
  CHECK(key_chunks(3, 2, 4096, 1024) == 2);  // SmolLM2 on 2 threads: 6 jobs
  CHECK(key_chunks(1, 2, 4096, 1024) == 2);  // Gemma 3
  CHECK(key_chunks(8, 2, 1 << 15, 1024) == 1);
  CHECK(key_chunks(3, 2, 1500, 1024) == 1);  // too few keys per chunk
  CHECK(key_chunks(1, 4, 3000, 1024) == 2);
  CHECK(key_chunks(2, 4, 1 << 14, 1024) == 2);
  CHECK(key_chunks(3, 1, 1 << 14, 1024) == 1);
  CHECK(key_chunks(0, 2, 1 << 14, 1024) == 1);
  for (const key_range r : {key_range{5, 1005}, key_range{-7, 3}, key_range{4, 4}})
    for (std::size_t n = 1; n <= 5; ++n) {
      std::int64_t at = r.begin;
      std::size_t total = 0;
      for (std::size_t i = 0; i < n; ++i) {
        const key_range c = r.chunk(n, i);
        CHECK(c.begin == at);
        CHECK(c.end >= c.begin);
        CHECK(c.size() + 1 >= r.size() / n);
        at = c.end;
        total += c.size();
      }
      CHECK(at == r.end);
      CHECK(total == r.size());
    }
}
