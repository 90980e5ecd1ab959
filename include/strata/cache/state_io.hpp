#pragma once
// Saving and loading the cache's layers in the state-file format (state_file.hpp has the
// layout and the checked writer and reader): write_state and read_state, used by
// runtime_kv_cache::save and ::load.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include <strata/cache/layer_state.hpp>
#include <strata/cache/state_file.hpp>
#include <strata/codec/standard_codecs.hpp>
#include <strata/layer_map.hpp>
#include <strata/policy/report.hpp>

namespace strata::detail {

// What a state file records beside the layers: whether K means follow each layer's entry, and
// the rotation's id.
struct state_settings {
  bool k_means = false;
  std::uint64_t rotation = 0;
};

inline void write_f32s(state_writer& w, const float* x, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) {
    std::uint32_t u;
    std::memcpy(&u, &x[i], 4);
    w.le(u);
  }
}

inline void write_layer_map(state_writer& w, const layer_map& m) {
  w.le(std::uint32_t(m.n_layers()));
  for (const layer_info& li : m.layers()) {
    w.le(std::uint8_t(li.has_kv));
    w.le(std::int32_t(li.kv_source));
    w.le(std::uint8_t(li.kind));
    w.le(li.window);
    w.le(li.n_heads);
    w.le(li.n_kv_heads);
    w.le(li.head_dim);
  }
}

inline void write_layer_entry(state_writer& w, const layer_state& L, bool k_means) {
  w.le(std::uint8_t(L.k.kern.layout.id));
  w.le(std::uint8_t(L.v.kern.layout.id));
  w.le(std::uint64_t(L.count));
  w.le(std::int64_t(L.pos0));
  if (k_means) {
    const std::size_t n = L.n_kv_heads * L.head_dim;
    std::vector<float> m(n, 0.0f);  // zeros for a layer that never had a batch
    std::copy_n(L.kt.mean.begin(), std::min(n, L.kt.mean.size()), m.begin());
    write_f32s(w, m.data(), n);
  }
  w.le(std::uint8_t(L.kt.scale.empty() ? 0 : 1));
  write_f32s(w, L.kt.scale.data(), L.kt.scale.size());
}

// Every layer's tokens (format: state_file.hpp), through a temporary renamed into place.
inline void write_state(const std::string& path, const policy_report& rep,
                        const std::vector<layer_state>& layers, state_settings s) {
  state_writer w(path);
  w.bytes(state_file_magic, sizeof state_file_magic);
  w.le(state_file_version);
  w.le(std::uint32_t(s.k_means ? 1 : 0));  // flags: bit 0 = K means follow
  w.le(s.rotation);
  write_layer_map(w, rep.map);
  for (const auto& lc : rep.layers) write_layer_entry(w, layers[lc.layer], s.k_means);
  std::vector<std::byte> rows;  // plain rows, whatever the store's layout
  for (const auto& lc : rep.layers) {
    const layer_state& L = layers[lc.layer];
    for (const row_store* side : {&L.k, &L.v})
      for (std::size_t h = 0; h < L.n_kv_heads; ++h)
        L.for_each_run([&](std::size_t slot, std::size_t n) {
          rows.resize(n * side->row_bytes());
          side->get(h, slot, n, rows.data());
          w.bytes(rows.data(), rows.size());
        });
  }
  w.finish();
}

// ---- reading ----------------------------------------------------------------------------

inline std::vector<float> read_f32s(state_reader& r, std::size_t n) {
  std::vector<float> x(n);
  for (auto& v : x) {
    const auto u = r.le<std::uint32_t>();
    std::memcpy(&v, &u, 4);
  }
  return x;
}

// The header; returns the file's version.
inline std::uint32_t read_header(state_reader& r, state_settings s) {
  char magic[sizeof state_file_magic];
  if (r.size() < sizeof magic + 8) r.fail("not a strata KV state file (too short)");
  r.bytes(magic, sizeof magic);
  if (std::memcmp(magic, state_file_magic, sizeof magic) != 0)
    r.fail("not a strata KV state file (bad magic)");
  const auto version = r.le<std::uint32_t>();
  if (version != state_file_version && version != 1)
    r.fail("unsupported state file version " + std::to_string(version) + " (this build reads " +
           std::to_string(state_file_version) + ")");
  const auto flags = r.le<std::uint32_t>();
  if ((flags & 1u) != (s.k_means ? 1u : 0u))
    r.fail(flags & 1u ? "the file was saved with K mean subtraction, the cache has none"
                      : "the file was saved without K mean subtraction, the cache has it");
  if (r.le<std::uint64_t>() != s.rotation) r.fail("the file was saved with another rotation");
  return version;
}

inline void read_layer_map(state_reader& r, const layer_map& m) {
  const auto n_layers = r.le<std::uint32_t>();
  if (n_layers != m.n_layers())
    r.fail("the file has " + std::to_string(n_layers) + " layers, the cache " +
           std::to_string(m.n_layers()));
  for (std::size_t i = 0; i < n_layers; ++i) {
    layer_info li;
    li.has_kv = r.le<std::uint8_t>() != 0;
    li.kv_source = r.le<std::int32_t>();
    li.kind = static_cast<attention_kind>(r.le<std::uint8_t>());
    li.window = r.le<std::uint32_t>();
    li.n_heads = r.le<std::uint32_t>();
    li.n_kv_heads = r.le<std::uint32_t>();
    li.head_dim = r.le<std::uint32_t>();
    if (!(li == m[i])) r.fail("layer " + std::to_string(i) + " differs from the cache's layer map");
  }
}

// One KV layer's entry: checks it against the cache's layer, sets pos0 and the K transform,
// returns the token count.
inline std::size_t read_layer_entry(state_reader& r, std::uint32_t version, std::size_t layer,
                                    layer_state& L, bool k_means) {
  const auto k = r.le<std::uint8_t>(), v = r.le<std::uint8_t>();
  if (k != std::uint8_t(L.k.kern.layout.id) || v != std::uint8_t(L.v.kern.layout.id))
    r.fail("layer " + std::to_string(layer) + " was saved with K " + codec_label(codec_id(k)) +
           " / V " + codec_label(codec_id(v)) + ", the cache has " + L.k.kern.layout.name + " / " +
           L.v.kern.layout.name);
  const auto count = r.le<std::uint64_t>();
  const auto pos0 = r.le<std::int64_t>();
  if (count > L.cap)
    r.fail("layer " + std::to_string(layer) + " holds " + std::to_string(count) +
           " tokens, more than the cache's capacity of " + std::to_string(L.cap));
  const std::uint64_t need = count * L.n_kv_heads * (L.k.row_bytes() + L.v.row_bytes());
  if (need > r.remaining()) r.fail("truncated file (" + std::to_string(r.size()) + " bytes)");
  L.pos0 = pos0;
  const std::size_t n = L.n_kv_heads * L.head_dim;
  L.kt.mean = k_means ? read_f32s(r, n) : std::vector<float>{};
  L.kt.set_scales(nullptr, 0);
  if (version >= 2) {
    const auto has = r.le<std::uint8_t>();
    if (has > 1) r.fail("bad K balance flag in layer " + std::to_string(layer));
    if (has == 1) {
      const std::vector<float> sc = read_f32s(r, n);
      for (const float x : sc)
        if (!(x > 0.0f) || !std::isfinite(x))
          r.fail("bad K balance scale in layer " + std::to_string(layer));
      L.kt.set_scales(sc.data(), n);
    }
  }
  return std::size_t(count);
}

// Replaces the layers' tokens with the file's; throws std::runtime_error("error: <what> (load
// <path>)") on any mismatch or damage, leaving the layers in an unspecified state (the caller
// empties them).
inline void read_state(const std::string& path, const policy_report& rep,
                       std::vector<layer_state>& layers, state_settings s) {
  state_reader r(path);
  const std::uint32_t version = read_header(r, s);
  read_layer_map(r, rep.map);
  std::vector<std::size_t> counts;
  for (const auto& lc : rep.layers)
    counts.push_back(read_layer_entry(r, version, lc.layer, layers[lc.layer], s.k_means));
  std::size_t o = 0;
  std::vector<std::byte> rows;  // plain rows, whatever the store's layout
  for (const auto& lc : rep.layers) {
    layer_state& L = layers[lc.layer];
    const std::size_t count = counts[o++];
    for (const row_store* side : {&L.k, &L.v})
      for (std::size_t h = 0; h < L.n_kv_heads; ++h) {
        rows.resize(count * side->row_bytes());
        r.bytes(rows.data(), rows.size());
        side->put(h, 0, count, rows.data());
      }
  }
  r.finish();
  o = 0;
  for (const auto& lc : rep.layers) {
    layer_state& L = layers[lc.layer];
    L.start = 0;
    L.count = counts[o++];
    L.r_lo = L.pos_end();  // the file has no recent rows
  }
}

}  // namespace strata::detail
