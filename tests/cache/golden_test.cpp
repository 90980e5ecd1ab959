// Golden fixtures: state files and attention outputs written by the code as it was before the
// redesign of the codec registry (tests/golden/, made with STRATA_GOLDEN_WRITE=<dir> on a
// machine that runs every x86 target), which every later version must reproduce bit for bit on
// every Highway target this machine runs:
//   - a cache filled from fixed inputs saves exactly the committed state file;
//   - the committed state file loads, and attention over it gives exactly the committed outputs;
//   - loading and saving again gives the same bytes.
// Cases: every codec on K and V (the codecs of issue 21, ids 9-28, were added later with their
// own files; the earlier files stayed byte for byte), and each policy kind (rules by KV ordinal, a
// preset, sliding layers with a ring that wraps and a recent window, K balance with K mean
// subtraction, a layer that shares another's cache).
// Rewritten since: the AVX2 lines of the cases with turbo4 (groups of 64 and 128) when the cache
// began to store them as key tiles on AVX2 (session 29: the tile kernels' own arithmetic; the
// state files and every other target's lines stayed, on the machine that rewrote them).
#include <doctest/doctest.h>

#include <unistd.h>
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include <hwy/targets.h>
#include <strata/cache/runtime_kv_cache.hpp>
#include <strata/policy/parse.hpp>

#include "../support/test_layer.hpp"

namespace {

using strata_test::test_layer;

namespace fs = std::filesystem;
using strata::layer_info;
using strata::layer_map;

// Portable pseudo-random values (no <random> distribution, whose output the standard leaves
// to the library): splitmix64, then the sum of four uniforms, centred.
struct values {
  std::uint64_t s;
  float next() {
    float sum = 0.0f;
    for (int i = 0; i < 4; ++i) {
      std::uint64_t z = (s += 0x9e3779b97f4a7c15ull);
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
      z ^= z >> 31;
      sum += float(z >> 40) * (1.0f / 16777216.0f);
    }
    return (sum - 2.0f) * 1.7f;
  }
};

struct golden_case {
  std::string name;
  layer_map map;
  std::string policy;
  bool k_mean = false;
};

std::vector<golden_case> cases() {
  std::vector<golden_case> c;
  for (strata::codec_id id : strata::all_codec_ids) {
    const std::string n(strata::codec_name(id));
    // Head dim 128, or 256 for a fixed group of 256 (turbo<B>g256).
    const std::uint32_t d = strata::layout_of(id, 256).block_values > 128 ? 256 : 128;
    c.push_back({"codec-" + n, layer_map::dense(2, 2, d, 4), "k=" + n + ";v=" + n});
  }
  c.push_back({"rules-by-ordinal", layer_map::dense(6, 1, 64, 2),
               "v:first1,last1=q8_0;k:every2+1=turbo4;kv:2-3=bf16;k=turbo3;v=turbo2"});
  c.push_back({"preset-la7", layer_map::dense(8, 1, 128, 2), "la7"});
  c.push_back({"sliding-recent",
               layer_map({test_layer(1, 128, true), test_layer(2, 128), test_layer(1, 128, true)}),
               "kv:sliding=q4_0;k=turbo4;v=turbo2;recent=3"});
  c.push_back(
      {"k-balance-mean", layer_map::dense(2, 2, 128, 4), "k=turbo3;v=q8_0;k-balance", true});
  c.push_back({"shared-kv",
               layer_map({test_layer(1, 64), test_layer(1, 64, false, 0), test_layer(2, 64)}),
               "kv:0=vq2;k=q8_0;v=f16"});
  return c;
}

constexpr std::size_t n_ctx = 16, max_batch = 4;
constexpr std::size_t batches[] = {4, 4, 3};  // 11 tokens: sliding rings (5 slots) wrap

strata::cache_options options(const golden_case& g) {
  strata::cache_options o;
  o.n_ctx = n_ctx;
  o.max_batch = max_batch;
  o.subtract_k_mean = g.k_mean;
  return o;
}

// Fills the cache as a model would: per batch, K balance from the batch's queries, then append.
void fill(strata::runtime_kv_cache& cache, const layer_map& m) {
  values r{42};
  std::int64_t pos = 0;
  for (std::size_t n : batches) {
    for (std::size_t l = 0; l < m.n_layers(); ++l) {
      const layer_info& li = m[l];
      if (!li.has_kv) continue;
      const std::size_t d = li.head_dim;
      std::vector<float> k(n * li.n_kv_heads * d), v(k.size()), q(n * li.n_heads * d);
      for (std::size_t i = 0; i < k.size(); ++i) k[i] = r.next() + (i % d < 8 ? 3.0f : 0.0f);
      for (auto& x : v) x = r.next();
      for (auto& x : q) x = r.next();
      cache.balance_k(l, q.data(), n, k.data(), n);
      cache.append(l, pos, k.data(), v.data(), n);
    }
    pos += std::int64_t(n);
  }
}

// Attention of two query tokens (the last two positions) on every layer, concatenated.
std::vector<float> attention(const strata::runtime_kv_cache& cache) {
  const layer_map& m = cache.map();
  values r{7};
  std::vector<float> all;
  for (std::size_t l = 0; l < m.n_layers(); ++l) {
    const layer_info& li = m[l];
    const std::size_t n = 2 * std::size_t(li.n_heads) * li.head_dim;
    std::vector<float> q(n), out(n);
    for (auto& x : q) x = r.next();
    cache.attend(l, q.data(), 2, cache.pos_end(l) - 2, out.data());
    all.insert(all.end(), out.begin(), out.end());
  }
  return all;
}

std::vector<char> read_file(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  REQUIRE_MESSAGE(bool(f), "missing golden file " << p.string());
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

std::vector<char> as_bytes(const std::vector<float>& v) {
  std::vector<char> b(v.size() * 4);
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}

// First differing byte, for the message.
std::string first_difference(const std::vector<char>& a, const std::vector<char>& b) {
  if (a.size() != b.size())
    return "sizes " + std::to_string(a.size()) + " and " + std::to_string(b.size());
  for (std::size_t i = 0; i < a.size(); ++i)
    if (a[i] != b[i]) return "first difference at byte " + std::to_string(i);
  return "equal";
}

const fs::path golden_dir = fs::path(STRATA_SOURCE_DIR) / "tests" / "golden";

std::uint64_t fnv1a(const std::vector<char>& b) {
  return strata::detail::fnv1a(strata::detail::fnv1a_init, b.data(), b.size());
}

// tests/golden/attention.txt: "<case> <target> <FNV-1a 64 of the f32 outputs, hex>" per line.
std::map<std::string, std::uint64_t> read_attention_hashes() {
  std::map<std::string, std::uint64_t> m;
  std::ifstream f(golden_dir / "attention.txt");
  std::string c, t, h;
  while (f >> c >> t >> h) m[c + " " + t] = std::stoull(h, nullptr, 16);
  return m;
}

}  // namespace

// The state files are the same on every target; attention sums floats in a target's own
// order, so its outputs are pinned per target (tests/golden/attention.txt).
TEST_CASE("golden fixtures: state files and attention outputs, bit for bit, on every target") {
  const fs::path tmp =
      fs::temp_directory_path() / ("strata_golden_test_" + std::to_string(::getpid()));
  fs::create_directories(tmp);
  const char* write_dir = std::getenv("STRATA_GOLDEN_WRITE");
  const auto hashes = read_attention_hashes();
  std::string hash_lines;
  std::vector<std::int64_t> targets = hwy::SupportedAndGeneratedTargets();
  std::stable_partition(targets.begin(), targets.end(),
                        [](std::int64_t t) { return t == HWY_STATIC_TARGET; });
  for (const std::int64_t target : targets) {  // the baseline first: it writes the state files
    hwy::SetSupportedTargetsForTest(target);
    const std::string tname = hwy::TargetName(target);
    INFO("target ", tname);
    for (const golden_case& g : cases()) {
      INFO("case ", g.name, " (policy \"", g.policy, "\")");
      const strata::policy_spec spec = strata::parse_policy(g.policy);
      strata::runtime_kv_cache made(g.map, spec, options(g));
      fill(made, g.map);
      const fs::path saved = tmp / (g.name + ".state");
      made.save(saved.string());
      const fs::path golden_state =
          write_dir ? fs::path(write_dir) / (g.name + ".state") : golden_dir / (g.name + ".state");
      if (write_dir && target == HWY_STATIC_TARGET) {
        fs::create_directories(write_dir);
        fs::copy_file(saved, golden_state, fs::copy_options::overwrite_existing);
        fs::permissions(golden_state, fs::perms(0644));
      }
      const auto want_state = read_file(golden_state);
      const auto got_state = read_file(saved);
      CHECK_MESSAGE(got_state == want_state,
                    "encoding fixed inputs: " << first_difference(got_state, want_state));
      strata::runtime_kv_cache loaded(g.map, spec, options(g));
      loaded.load(golden_state.string());
      const std::uint64_t got_attn = fnv1a(as_bytes(attention(loaded)));
      if (write_dir) {
        char hex[17];
        std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(got_attn));
        hash_lines += g.name + " " + tname + " " + hex + "\n";
      } else {
        const auto it = hashes.find(g.name + " " + tname);
        REQUIRE_MESSAGE(it != hashes.end(),
                        "tests/golden/attention.txt has no line for this case and "
                        "target: write the goldens on a machine that runs it");
        CHECK_MESSAGE(got_attn == it->second, "attention over the golden state differs");
      }
      loaded.save(saved.string());
      CHECK(read_file(saved) == want_state);
    }
  }
  hwy::SetSupportedTargetsForTest(0);
  if (write_dir) std::ofstream(fs::path(write_dir) / "attention.txt") << hash_lines;
  fs::remove_all(tmp);
}
