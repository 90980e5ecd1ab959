// Fuzz target: the KV cache state-file loader (runtime_kv_cache::load,
// strata/cache/state_file.hpp). Input: byte 0 picks one of four caches (bits 0-1; they cover every
// codec, mean subtraction, K balance, sliding windows, shared-KV layers and a recent window) and
// whether the harness rewrites the trailing checksum to match (bit 7, so that mutations reach the
// code after the checksum); the rest is the file. Properties: a bad file throws std::runtime_error
// "error: ... (load <path>)" and leaves the cache empty; a loaded file reads back (every K and V
// row, attention over every layer) with no sanitizer report, positions stay in range, and saving it
// again gives the same bytes.
#include <unistd.h>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <random>
#include <string>

#include <strata/cache/runtime_kv_cache.hpp>
#include <strata/policy/parse.hpp>

#include "../../support/test_layer.hpp"
#include "targets.hpp"

namespace strata_fuzz {

namespace {

using strata_test::test_layer;

struct config {
  strata::layer_map map;
  const char* policy;
  strata::cache_options opt;
};

std::vector<config> configs() {
  std::vector<config> c(4);
  c[0].map = strata::layer_map::dense(2, 2, 64, 4);
  c[0].policy = "k=q8_0;v=turbo3";
  c[0].opt.subtract_k_mean = true;
  c[1].map =
      strata::layer_map({test_layer(1, 128, true), test_layer(2, 128), test_layer(1, 128, true)});
  c[1].policy = "kv:sliding=q4_0;k=turbo4;v=turbo2;recent=2";
  c[1].opt.max_batch = 2;
  c[2].map = strata::layer_map({test_layer(1, 64), test_layer(1, 64, false, 0), test_layer(2, 32)});
  c[2].policy = "kv:0=f32;k=bf16;v=f16";
  c[3].map = strata::layer_map::dense(2, 1, 128, 2);
  c[3].policy = "kv:first1=vq2;k=turbo2;v=q8_0;k-balance";
  c[3].opt.subtract_k_mean = true;
  for (auto& x : c) x.opt.n_ctx = 12;
  return c;
}

std::string temp_path(const char* what) {
  return (std::filesystem::temp_directory_path() /
          ("strata-fuzz-" + std::to_string(::getpid()) + "-" + what))
      .string();
}

bytes read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return bytes(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

void write_all(const std::string& path, const std::uint8_t* p, std::size_t n) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(p), std::streamsize(n));
  check(bool(f), "cannot write the fuzz input's temporary file");
}

// A cache of config i with a few tokens in every layer (and K scales where the policy balances).
std::unique_ptr<strata::runtime_kv_cache> filled(const config& c, std::size_t tokens) {
  auto cache =
      std::make_unique<strata::runtime_kv_cache>(c.map, strata::parse_policy(c.policy), c.opt);
  std::mt19937 rng(7);
  std::normal_distribution<float> nd;
  for (std::size_t l = 0; l < c.map.n_layers(); ++l) {
    const strata::layer_info& li = c.map[l];
    if (!li.has_kv) continue;
    const std::size_t n = tokens * li.n_kv_heads * li.head_dim;
    if (cache->policy().k_balance) {
      std::vector<float> s(li.n_kv_heads * li.head_dim);
      for (auto& x : s) x = 0.5f + std::abs(nd(rng));
      cache->set_k_scales(l, s.data());
    }
    std::vector<float> k(n), v(n);
    for (auto& x : k) x = nd(rng);
    for (auto& x : v) x = nd(rng);
    cache->append(l, 3, k.data(), v.data(), tokens);
  }
  return cache;
}

void walk(const strata::runtime_kv_cache& cache) {
  const strata::layer_map& m = cache.map();
  std::vector<float> row, q, out;
  for (std::size_t l = 0; l < m.n_layers(); ++l) {
    const strata::layer_info& li = m[l];
    if (!li.has_kv && li.kv_source < 0) continue;
    row.assign(li.head_dim, 0.0f);
    const std::size_t n = cache.size(l);
    check(n <= cache.capacity(l), "a loaded layer holds more tokens than its capacity");
    check(cache.pos_end(l) - cache.pos_begin(l) == std::int64_t(n),
          "positions do not span the tokens");
    for (std::size_t t = 0; t < n; ++t)
      for (std::size_t h = 0; h < li.n_kv_heads; ++h) {
        cache.read_k(l, t, h, row.data());
        cache.read_v(l, t, h, row.data());
      }
    if (n == 0) continue;
    q.assign(std::size_t(li.n_heads) * li.head_dim, 0.25f);
    out.assign(q.size(), 0.0f);
    cache.attend(l, q.data(), 1, cache.pos_end(l) - 1, out.data());
  }
}

}  // namespace

void state_file(input in) {
  static const std::vector<config> cfg = configs();
  static const std::string path = temp_path("state.bin"), again = temp_path("again.bin");
  if (in.empty()) return;
  const config& c = cfg[in[0] & 3];
  bytes file(in.begin() + 1, in.end());
  if ((in[0] & 0x80) && file.size() >= 8) {
    const std::uint64_t h =
        strata::detail::fnv1a(strata::detail::fnv1a_init, file.data(), file.size() - 8);
    for (int i = 0; i < 8; ++i) file[file.size() - 8 + i] = std::uint8_t(h >> (8 * i));
  }
  write_all(path, file.data(), file.size());
  static std::unique_ptr<strata::runtime_kv_cache> caches[4];
  auto& cache = caches[in[0] & 3];
  if (!cache)
    cache =
        std::make_unique<strata::runtime_kv_cache>(c.map, strata::parse_policy(c.policy), c.opt);
  try {
    cache->load(path);
  } catch (const std::runtime_error& e) {
    check(well_formed(e.what()), "load error message is not 'error: ... (...)'", e.what());
    check(std::string_view(e.what()).find("(load " + path + ")") != std::string_view::npos,
          "load error does not name the file");
    for (std::size_t l = 0; l < c.map.n_layers(); ++l)
      if (c.map[l].has_kv) check(cache->size(l) == 0, "a failed load leaves tokens in the cache");
    return;
  }
  walk(*cache);
  std::uint32_t version = 0;
  std::memcpy(&version, file.data() + 8, 4);
  if (version == strata::state_file_version) {
    cache->save(again);
    check(read_all(again) == file, "saving a loaded file does not give the same bytes");
  }
}

std::vector<bytes> state_file_seeds() {
  const std::vector<config> cfg = configs();
  const std::string path = temp_path("seed.bin");
  std::vector<bytes> s;
  for (std::size_t i = 0; i < cfg.size(); ++i) {
    for (std::size_t tokens : {0, 1, 5}) {
      filled(cfg[i], tokens)->save(path);
      bytes b = read_all(path);
      b.insert(b.begin(), std::uint8_t(i));
      s.push_back(std::move(b));
    }
  }
  std::filesystem::remove(path);
  return s;
}

}  // namespace strata_fuzz
