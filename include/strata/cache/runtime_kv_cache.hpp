#pragma once
// strata::runtime_kv_cache: a compressed KV cache whose per-layer codecs are chosen at run time
// (a policy_spec, e.g. from parse_policy("la7")) for a layer_map. strata::kv_cache<Policy>
// (strata/kv_cache.hpp) is the same cache with the policy fixed at compile time.
//
// ---- Layouts (all f32, row-major, contiguous) --------------------------------------------
//   K, V given to append():   [n_tokens][n_kv_heads][head_dim]   (one row per token: the K/V
//                             projection output, heads concatenated)
//   Q given to attend():      [n_q][n_heads][head_dim]
//   out written by attend():  [n_q][n_heads][head_dim]           (ready for the output proj.)
// n_heads, n_kv_heads and head_dim are those of the layer (layer_map). Query head i uses KV
// head i / (n_heads / n_kv_heads) (GQA, as llama.cpp). RoPE is the caller's business: append
// K after RoPE, attend with Q after RoPE.
//
// ---- Positions ----------------------------------------------------------------------------
// Each layer holds the tokens of a contiguous range of positions [pos_begin, pos_end).
// append(layer, pos, ...) must continue that range (pos == pos_end(layer)), except on an
// empty layer where it starts it. attend(layer, q, n_q, first_pos, ...): query t sits at
// position first_pos + t and sees every cached key at a position <= its own (causal), and on a
// sliding-window layer only the last `window` positions (pos_q - window < pos_k <= pos_q).
// So a batch is: append the batch's K/V, then attend with the batch's queries.
//
// ---- What the cache does ------------------------------------------------------------------
// append rotates each K (V) row when the layer's K (V) codec is a rotated one, and encodes it.
// attend rotates (and scales) each query once when K is rotated, computes scores with the K
// codec's dot kernel straight from the compressed blocks, runs an f32 online softmax (running
// max) over key tiles, accumulates V with the V codec's axpy kernel, and rotates the output
// back once when V is rotated. A batch of queries (prefill) is processed in groups of
// `query_rows` rows (query tokens x the query heads of one KV head): each K/V tile is read
// once per group for all of its rows (no per-query decode; a decode step is one group).
//
// ---- Also: Highway ---------------------------------------------------------------------------
// This header includes strata/kernels/kernels.hpp (hwy/foreach_target.h): a .cpp that includes
// it cannot run its own Highway dynamic dispatch (Highway 1.0.3, one per translation unit).
//
// ---- Threads ------------------------------------------------------------------------------
// - const members (attend, attend on any KV-head subset, sizes, save) may run concurrently
//   with each other, from any number of threads.
// - append(layer, ...) on different layers may run concurrently with each other and with
//   attend on other layers. append and attend on the same layer must not overlap.
// - truncate, drop_front, shift, clear and load change every layer: nothing else may run.
//   save is const (it may run with attend, not with append).
// - To split one layer's attention over threads, give each thread a range of KV heads
//   (attention_params::kv_head_begin/end) and/or a range of query tokens (a sub-array of q and
//   out with its own first_pos): each call writes only its own output rows. Scratch memory is
//   per thread (thread_local), no locks.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include <strata/cache/k_balance.hpp>
#include <strata/cache/layer_kernels.hpp>
#include <strata/cache/softmax.hpp>
#include <strata/cache/state_file.hpp>
#include <strata/layer_map.hpp>
#include <strata/policy/report.hpp>
#include <strata/policy/spec.hpp>
#include <strata/rotation/hadamard.hpp>

namespace strata {

// How rows are rotated before a rotated codec encodes them (and queries before dot).
struct rotation_ops {
  void (*forward)(float* x, std::size_t n) = nullptr;
  void (*inverse)(float* x, std::size_t n) = nullptr;
  std::uint64_t id = 0;  // identifies the rotation in state files

  // id: R::seed when R has one (hadamard<Seed>), else 0 (identity).
  template <class R> static rotation_ops of() {
    std::uint64_t id = 0;
    if constexpr (requires { R::seed; }) id = static_cast<std::uint64_t>(R::seed) + 1;
    return {&R::forward, &R::inverse, id};
  }
};

using default_rotation = hadamard<>;

struct attention_params {
  float scale = 0.0f;    // score scale; 0 means 1/sqrt(head_dim)
  float softcap = 0.0f;  // > 0: scores become softcap * tanh(score / softcap)
  // "Sparse V": skip the V of a key tile when every weight in it, relative to its row's
  // running max, is below this (each skipped value's final softmax weight is below it too).
  // 0 = off. docs/policies.md has the measured effect.
  float sparse_v = 0.0f;
  // Only KV heads [kv_head_begin, kv_head_end) and their query heads are computed (the rest of
  // `out` is left untouched): give disjoint ranges to threads to parallelize one layer.
  std::size_t kv_head_begin = 0;
  std::size_t kv_head_end = std::numeric_limits<std::size_t>::max();
};

// Gives the kernels of codec `id` for rows of `head_dim` values (throws when they do not fit).
using kernel_resolver = codec_kernels (*)(codec_id id, std::uint32_t head_dim);

struct cache_options {
  std::size_t n_ctx = 4096;  // tokens every global-attention layer can hold
  // Sliding-window layers hold min(n_ctx, window + max_batch - 1) tokens (a ring: the oldest
  // are overwritten), enough for appending up to max_batch tokens at a time. 0: n_ctx (full).
  std::size_t max_batch = 0;
  rotation_ops rotation = rotation_ops::of<default_rotation>();
  // Where each layer's kernels come from: the fastest kernels of the standard codecs by
  // default; kv_cache<Policy> passes the kernels of its policy's codec types.
  kernel_resolver kernels = &layer_kernels;
  // The layouts of the same codec set (layout_of<Set>), for the policy report and the byte
  // counts; the cache checks that every layer's kernels agree with it.
  layout_resolver layouts = &layout_of<standard_codecs>;
  // Subtract a per-channel K mean (per layer and KV head, fixed from the first batch appended
  // to an empty layer) from every key before it is encoded. Exact for attention (softmax is
  // invariant to adding q.m to every score of a query) and lowers the error of compressed K
  // when channels have a bias; docs/policies.md has the measurement. read_k and shift's rerope
  // see the keys with the mean added back. The means (n_kv_heads x head_dim floats per layer)
  // are outside bytes().
  bool subtract_k_mean = false;
};

class runtime_kv_cache {
 public:
  // Throws std::invalid_argument ("error: ... (runtime_kv_cache)") when a layer's head dim does
  // not fit its codec, or when a rule of the policy matches no KV layer of `map`.
  runtime_kv_cache(const layer_map& map, const policy_spec& policy, const cache_options& opt)
      : report_((policy.check_every_rule_matches(map), report(policy, map, opt.layouts))),
        opt_(opt) {
    if (opt_.n_ctx == 0) fail("n_ctx must be > 0", "runtime_kv_cache");
    layers_.resize(map.n_layers());
    std::size_t total = 0;
    for (const auto& lc : report_.layers) {
      const layer_info& li = map[lc.layer];
      layer_state& L = layers_[lc.layer];
      L.owns = true;
      L.k = opt_.kernels(lc.k, li.head_dim);
      L.v = opt_.kernels(lc.v, li.head_dim);
      for (const codec_kernels* s : {&L.k, &L.v})
        if (s->layout.row_bytes != opt_.layouts(s->layout.id, li.head_dim).row_bytes)
          fail("the kernels of " + codec_label(s->layout.id) + " disagree with its layout (layer " +
                   std::to_string(lc.layer) +
                   "): cache_options::kernels and ::layouts must come "
                   "from one codec set",
               "runtime_kv_cache");
      L.cap = report_.layer_tokens(std::size_t(lc.ordinal), opt_.n_ctx, opt_.max_batch);
      L.n_kv_heads = li.n_kv_heads;
      L.n_heads = li.n_heads;
      L.head_dim = li.head_dim;
      L.sliding = li.kind == attention_kind::sliding;
      L.window = li.window;
      L.k_offset = total;
      total += L.cap * L.n_kv_heads * L.k.layout.row_bytes;
      L.v_offset = total;
      total += L.cap * L.n_kv_heads * L.v.layout.row_bytes;
      // The recent window (policy_spec::recent): f16 rows in a ring of r_cap slots, slot =
      // position % r_cap, for each side with a block codec.
      const std::size_t o = std::size_t(lc.ordinal);
      const std::size_t rk = report_.recent_tokens(o, opt_.n_ctx, opt_.max_batch, true);
      const std::size_t rv = report_.recent_tokens(o, opt_.n_ctx, opt_.max_batch, false);
      L.r_cap = std::max(rk, rv);
      if (L.r_cap > 0) {
        L.rk_on = rk > 0;
        L.rv_on = rv > 0;
        L.r = opt_.kernels(codec_id::f16, li.head_dim);
        L.rk_offset = total;
        if (L.rk_on) total += L.r_cap * L.n_kv_heads * L.r.layout.row_bytes;
        L.rv_offset = total;
        if (L.rv_on) total += L.r_cap * L.n_kv_heads * L.r.layout.row_bytes;
      }
    }
    bytes_ = total;
    data_.reset(new std::byte[bytes_ ? bytes_ : 1]);
    for (auto& L : layers_) {
      if (!L.owns) continue;
      L.k_data = data_.get() + L.k_offset;
      L.v_data = data_.get() + L.v_offset;
      L.rk_data = data_.get() + L.rk_offset;
      L.rv_data = data_.get() + L.rv_offset;
    }
  }

  const layer_map& map() const noexcept { return report_.map; }
  const policy_report& policy() const noexcept { return report_; }
  const cache_options& options() const noexcept { return opt_; }

  // Bytes of compressed K/V storage (and the recent window's f16 rows), allocated once in the
  // constructor: exactly policy().bytes(n_ctx, max_batch).
  std::size_t bytes() const noexcept { return bytes_; }
  // Tokens the layer can hold (its cache's layer when it shares one).
  std::size_t capacity(std::size_t layer) const { return owner(layer).cap; }
  // Tokens cached on the layer, and their positions [pos_begin, pos_end).
  std::size_t size(std::size_t layer) const { return owner(layer).count; }
  std::int64_t pos_begin(std::size_t layer) const { return owner(layer).pos0; }
  std::int64_t pos_end(std::size_t layer) const {
    const layer_state& L = owner(layer);
    return L.pos0 + static_cast<std::int64_t>(L.count);
  }
  codec_id k_codec(std::size_t layer) const { return owner(layer).k.layout.id; }
  codec_id v_codec(std::size_t layer) const { return owner(layer).v.layout.id; }
  // Positions [recent_begin, pos_end) of the layer are read from its recent window's f16 rows
  // (policy_spec::recent); recent_begin == pos_end when it has none.
  std::int64_t recent_begin(std::size_t layer) const {
    const layer_state& L = owner(layer);
    return L.r_cap == 0 ? L.pos0 + std::int64_t(L.count) : recent_lo(L);
  }

  // Per-channel K balancing (strata/cache/k_balance.hpp). set_k_scales gives `layer` (which must
  // own its cache and be empty) the scales s, [n_kv_heads][head_dim] finite positive floats, or
  // none (nullptr): keys are stored as k / s and queries score with q * s. balance_k does it
  // from a sample when the policy has k-balance: on an empty layer it estimates the scales from
  // the batch's queries (q: [n_q][n_heads][head_dim]) and keys (as append takes them) and sets
  // them; on a layer that holds tokens, without k-balance, or with fewer than
  // k_balance_min_keys keys it does nothing. Call it before the batch's append. Scales stay
  // until the next balance of the emptied layer (after truncate(0) or clear()) or a load.
  void set_k_scales(std::size_t layer, const float* s) {
    if (layer >= layers_.size() || !layers_[layer].owns)
      fail("layer " + std::to_string(layer) + " does not own a KV cache", "set_k_scales");
    layer_state& L = layers_[layer];
    if (L.count != 0) fail("layer " + std::to_string(layer) + " is not empty", "set_k_scales");
    if (s)
      for (std::size_t i = 0; i < L.n_kv_heads * L.head_dim; ++i)
        if (!(s[i] > 0.0f) || !std::isfinite(s[i]))
          fail("K scale " + std::to_string(i) + " of layer " + std::to_string(layer) +
                   " is not a finite positive number",
               "set_k_scales");
    set_scales(L, s);
  }
  // `pairs`: the rotary pairs of keys and queries that carry RoPE (k_balance.hpp), so that
  // both channels of a pair share a scale.
  void balance_k(std::size_t layer, const float* q, std::size_t n_q, const float* k,
                 std::size_t n_k, rotary_pairs pairs = {}) {
    if (!report_.k_balance) return;
    if (layer >= layers_.size() || !layers_[layer].owns)
      fail("layer " + std::to_string(layer) + " does not own a KV cache", "balance_k");
    layer_state& L = layers_[layer];
    if (L.count != 0 || n_k < k_balance_min_keys) return;
    const std::size_t d = L.head_dim, nk = L.n_kv_heads;
    std::vector<float> mean;  // the mean append will take from the same batch
    if (opt_.subtract_k_mean) mean = batch_mean(k, n_k, nk * d);
    const auto s = k_balance_scales(q, n_q, L.n_heads, k, n_k, nk, d,
                                    mean.empty() ? nullptr : mean.data(), pairs);
    set_scales(L, s.empty() ? nullptr : s.data());
  }
  // The layer's K scales ([n_kv_heads][head_dim]; empty: none).
  const std::vector<float>& k_scales(std::size_t layer) const { return owner(layer).k_scale; }

  // Stores K and V of n_tokens tokens at positions pos, pos+1, ... on `layer` (which must own
  // its KV cache). Layout [n_tokens][n_kv_heads][head_dim]. Throws std::invalid_argument when
  // pos does not continue the layer's range, std::length_error when a global layer is full.
  // On a sliding-window layer the oldest tokens are dropped to make room.
  void append(std::size_t layer, std::int64_t pos, const float* k, const float* v,
              std::size_t n_tokens) {
    if (layer >= layers_.size() || !layers_[layer].owns)
      fail("layer " + std::to_string(layer) + " does not own a KV cache", "append");
    layer_state& L = layers_[layer];
    if (n_tokens == 0) return;
    if (L.count == 0) {
      L.pos0 = pos;
      L.start = 0;
      L.r_lo = pos;
    } else if (pos != L.pos0 + static_cast<std::int64_t>(L.count)) {
      fail("position " + std::to_string(pos) + " does not continue layer " + std::to_string(layer) +
               " (expected " + std::to_string(L.pos0 + static_cast<std::int64_t>(L.count)) + ")",
           "append");
    }
    if (L.sliding && L.count + n_tokens > L.cap) {
      // Dropping the oldest tokens is safe while the batch's first query keeps its window.
      if (n_tokens + L.window - 1 > L.cap)
        throw std::length_error("error: " + std::to_string(n_tokens) +
                                " tokens at once exceed the sliding layer's capacity of " +
                                std::to_string(L.cap) + " tokens for a window of " +
                                std::to_string(L.window) + " (append, layer " +
                                std::to_string(layer) + ")");
      const std::size_t drop = L.count + n_tokens - L.cap;
      L.start = (L.start + drop) % L.cap;
      L.count -= drop;
      L.pos0 += static_cast<std::int64_t>(drop);
    } else if (L.count + n_tokens > L.cap) {
      throw std::length_error("error: KV cache full: " + std::to_string(L.count) + " + " +
                              std::to_string(n_tokens) + " tokens > n_ctx " +
                              std::to_string(L.cap) + " (append, layer " + std::to_string(layer) +
                              ")");
    }
    const std::size_t d = L.head_dim;
    float* tmp = scratch(d, 0);
    float* centered = scratch(d, 4);
    const bool scaled = !L.k_inv.empty();
    if (opt_.subtract_k_mean && L.count == 0) L.k_mean = batch_mean(k, n_tokens, L.n_kv_heads * d);
    for (std::size_t t = 0; t < n_tokens; ++t) {
      const std::size_t slot = (L.start + L.count + t) % L.cap;
      for (std::size_t h = 0; h < L.n_kv_heads; ++h) {
        const std::size_t src = (t * L.n_kv_heads + h) * d;
        const float* kr = k + src;
        if (opt_.subtract_k_mean || scaled) {
          for (std::size_t c = 0; c < d; ++c) {
            float x = kr[c];
            if (opt_.subtract_k_mean) x -= L.k_mean[h * d + c];
            if (scaled) x *= L.k_inv[h * d + c];
            centered[c] = x;
          }
          kr = centered;
        }
        encode_row(L.k, kr, tmp, d, L.k_row(h, slot));
        // encode_row leaves the row as the codec saw it (rotated or not) in tmp.
        if (L.rk_on) L.r.encode(L.k.layout.rotated ? tmp : kr, d, L.rk_row(h, rslot(L, pos, t)));
        encode_row(L.v, v + src, tmp, d, L.v_row(h, slot));
        if (L.rv_on)
          L.r.encode(L.v.layout.rotated ? tmp : v + src, d, L.rv_row(h, rslot(L, pos, t)));
      }
    }
    L.count += n_tokens;
    if (L.r_cap > 0)
      L.r_lo = std::max(L.r_lo, pos + std::int64_t(n_tokens) - std::int64_t(L.r_cap));
  }

  // Attention of n_q queries on `layer` (its own cache or the one it shares). Query t is at
  // position first_pos + t. q and out: [n_q][n_heads][head_dim]. A query that sees no key
  // gets a zero output.
  void attend(std::size_t layer, const float* q, std::size_t n_q, std::int64_t first_pos,
              float* out, const attention_params& p = {}) const {
    if (layer >= layers_.size()) fail("no layer " + std::to_string(layer), "attend");
    const int src = report_.map.cache_layer(layer);
    if (src < 0) fail("layer " + std::to_string(layer) + " has no KV cache", "attend");
    const layer_state& L = layers_[src];
    const std::size_t n_heads = report_.map[layer].n_heads;
    const std::size_t h1 = std::min<std::size_t>(p.kv_head_end, L.n_kv_heads);
    const float scale = p.scale != 0.0f ? p.scale : 1.0f / std::sqrt(float(L.head_dim));
    for (std::size_t h = p.kv_head_begin; h < h1; ++h)
      attend_head(L, n_heads, h, q, n_q, first_pos, out, scale, p.softcap, p.sparse_v);
  }

  // Drops every token at a position >= pos, on every layer.
  void truncate(std::int64_t pos) {
    for (auto& L : layers_) {
      if (!L.owns || L.count == 0) continue;
      if (pos <= L.pos0) {
        L.count = 0;
      } else if (pos < L.pos0 + static_cast<std::int64_t>(L.count)) {
        L.count = static_cast<std::size_t>(pos - L.pos0);
      }
      // Recent rows of [r_lo, pos) stay valid; tokens appended from pos on get theirs.
      L.r_lo = std::min(L.r_lo, pos);
    }
  }

  // Drops the n oldest tokens of every layer; the others keep their positions.
  void drop_front(std::size_t n) {
    for (auto& L : layers_) {
      if (!L.owns) continue;
      const std::size_t d = std::min(n, L.count);
      L.start = L.count == d ? 0 : (L.start + d) % L.cap;
      L.count -= d;
      L.pos0 += static_cast<std::int64_t>(d);
    }
  }

  // Adds delta to the position of every cached token. Keys keep their stored values; when K
  // carries RoPE, pass `rerope` to move them: it is called once per token and KV head with the
  // decoded, unrotated K row (head_dim floats) and may change it in place, after which the row
  // is encoded again (one more quantization round trip for compressed codecs).
  template <class Fn> void shift(std::int64_t delta, Fn&& rerope) {
    for (std::size_t li = 0; li < layers_.size(); ++li) {
      layer_state& L = layers_[li];
      if (!L.owns) continue;
      const std::size_t d = L.head_dim;
      float* row = scratch(d, 0);
      float* tmp = scratch(d, 1);
      for (std::size_t t = 0; t < L.count; ++t) {
        const std::size_t slot = (L.start + t) % L.cap;
        const std::int64_t pos = L.pos0 + static_cast<std::int64_t>(t);
        for (std::size_t h = 0; h < L.n_kv_heads; ++h) {
          std::byte* r = L.k_row(h, slot);
          L.k.decode(r, d, row);
          if (L.k.layout.rotated) opt_.rotation.inverse(row, d);
          restore_k(L, h, row);
          rerope(li, h, pos, pos + delta, row, d);
          if (opt_.subtract_k_mean)
            for (std::size_t c = 0; c < d; ++c) row[c] -= L.k_mean[h * d + c];
          if (!L.k_inv.empty())
            for (std::size_t c = 0; c < d; ++c) row[c] *= L.k_inv[h * d + c];
          encode_row(L.k, row, tmp, d, r);
        }
      }
      L.pos0 += delta;
      L.r_lo = L.pos0 + std::int64_t(L.count);  // the recent rows sit at the old positions' slots
    }
  }
  void shift(std::int64_t delta) {
    for (auto& L : layers_) {
      L.pos0 += delta;
      L.r_lo = L.pos0 + std::int64_t(L.count);
    }
  }

  // Empties every layer.
  void clear() {
    for (auto& L : layers_) L.count = 0, L.start = 0, L.pos0 = 0, L.r_lo = 0;
  }

  // Writes every layer's cached tokens to `path` (format: strata/cache/state_file.hpp), through
  // a mkstemp temporary renamed into place (strata::atomic_file). Throws std::runtime_error on
  // I/O errors.
  void save(const std::string& path) const {
    detail::state_writer w(path);
    w.bytes(state_file_magic, sizeof state_file_magic);
    w.le(state_file_version);
    w.le(std::uint32_t(opt_.subtract_k_mean ? 1 : 0));  // flags: bit 0 = K means follow
    w.le(opt_.rotation.id);
    const layer_map& m = report_.map;
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
    for (const auto& lc : report_.layers) {
      const layer_state& L = layers_[lc.layer];
      w.le(std::uint8_t(L.k.layout.id));
      w.le(std::uint8_t(L.v.layout.id));
      w.le(std::uint64_t(L.count));
      w.le(std::int64_t(L.pos0));
      if (opt_.subtract_k_mean) {
        for (std::size_t i = 0; i < L.n_kv_heads * L.head_dim; ++i) {
          const float x = i < L.k_mean.size() ? L.k_mean[i] : 0.0f;
          std::uint32_t u;
          std::memcpy(&u, &x, 4);
          w.le(u);
        }
      }
      w.le(std::uint8_t(L.k_scale.empty() ? 0 : 1));
      for (const float x : L.k_scale) {
        std::uint32_t u;
        std::memcpy(&u, &x, 4);
        w.le(u);
      }
    }
    for (const auto& lc : report_.layers) {
      const layer_state& L = layers_[lc.layer];
      for (int side = 0; side < 2; ++side)
        for (std::size_t h = 0; h < L.n_kv_heads; ++h)
          for_each_run(L, [&](std::size_t slot, std::size_t n) {
            w.bytes(side == 0 ? L.k_row(h, slot) : L.v_row(h, slot),
                    n * (side == 0 ? L.k : L.v).layout.row_bytes);
          });
    }
    w.finish();
  }

  // Replaces the cached tokens with those saved in `path`. The file must come from a cache with
  // the same layer map, per-layer codecs and rotation, and fit this cache's capacity; anything
  // else (another file, a wrong version, a truncated or corrupted file) throws
  // std::runtime_error("error: <what> (load <path>)") and leaves the cache empty.
  void load(const std::string& path) {
    clear();
    try {
      load_impl(path);
    } catch (...) {
      clear();
      throw;
    }
  }

  // Decodes the K (V) row of one cached token (index 0 = oldest) and KV head into x, unrotated.
  void read_k(std::size_t layer, std::size_t token, std::size_t head, float* x) const {
    read_row(layer, token, head, x, true);
  }
  void read_v(std::size_t layer, std::size_t token, std::size_t head, float* x) const {
    read_row(layer, token, head, x, false);
  }

  // Tuning knobs (bench/attention_bench.cpp, docs/policies.md): keys per dot/axpy call, and
  // query rows (query tokens x query heads of one KV head) whose accumulators are processed
  // together; each K/V tile is decoded once per group of query_rows rows (so for a decode
  // step, once), and smaller groups keep their accumulators in L1. A tile holds at least
  // key_tile keys and, when the group has few rows, up to score_floats / rows (rounded down to
  // 64 keys): a decode step (4 rows of the Llama-8B shape) calls dot/axpy on 2048 keys at a
  // time, which measured 5-16 % faster than 256 for the turbo codecs and the q8_0-K pairs
  // (fewer calls and cold tile starts), while a prefill group of 32 rows keeps 256. Sparse V
  // skips per key_tile keys whatever the tile.
  std::size_t key_tile = 256;
  std::size_t query_rows = 32;
  std::size_t score_floats = 8192;

 protected:
  struct layer_state {
    bool owns = false;
    codec_kernels k, v;
    std::size_t cap = 0, start = 0, count = 0;
    std::int64_t pos0 = 0;
    std::size_t n_kv_heads = 0, n_heads = 0, head_dim = 0;
    bool sliding = false;
    std::size_t window = 0;
    std::size_t k_offset = 0, v_offset = 0;
    std::vector<float> k_mean;  // [kv_head][head_dim] when subtract_k_mean
    // Per-channel K balance (k_balance.hpp), [kv_head][head_dim], and its reciprocal; empty: none.
    std::vector<float> k_scale, k_inv;
    std::byte* k_data = nullptr;
    std::byte* v_data = nullptr;
    // Recent window: f16 rows of positions [r_lo, pos0 + count) at slot position % r_cap.
    std::size_t r_cap = 0;
    bool rk_on = false, rv_on = false;
    codec_kernels r;  // f16
    std::int64_t r_lo = 0;
    std::size_t rk_offset = 0, rv_offset = 0;
    std::byte* rk_data = nullptr;
    std::byte* rv_data = nullptr;
    std::byte* rk_row(std::size_t h, std::size_t s) const {
      return rk_data + (h * r_cap + s) * r.layout.row_bytes;
    }
    std::byte* rv_row(std::size_t h, std::size_t s) const {
      return rv_data + (h * r_cap + s) * r.layout.row_bytes;
    }
    // K rows of KV head h, physical slot s: [head][slot][row_bytes]
    std::byte* k_row(std::size_t h, std::size_t s) const {
      return k_data + (h * cap + s) * k.layout.row_bytes;
    }
    std::byte* v_row(std::size_t h, std::size_t s) const {
      return v_data + (h * cap + s) * v.layout.row_bytes;
    }
  };

  static std::size_t rslot(const layer_state& L, std::int64_t pos, std::size_t t) {
    const std::int64_t r = std::int64_t(L.r_cap), p = (pos + std::int64_t(t)) % r;
    return std::size_t(p < 0 ? p + r : p);
  }
  // First position read from the recent rows (clamped to the cached range).
  static std::int64_t recent_lo(const layer_state& L) {
    const std::int64_t end = L.pos0 + std::int64_t(L.count);
    return std::clamp(std::max(L.r_lo, end - std::int64_t(L.r_cap)), L.pos0, end);
  }

  // Per-value mean of n rows of `row` floats.
  static std::vector<float> batch_mean(const float* x, std::size_t n, std::size_t row) {
    std::vector<double> m(row, 0.0);
    for (std::size_t t = 0; t < n; ++t)
      for (std::size_t i = 0; i < row; ++i) m[i] += x[t * row + i];
    std::vector<float> out(row);
    for (std::size_t i = 0; i < row; ++i) out[i] = float(m[i] / double(n));
    return out;
  }

  static void set_scales(layer_state& L, const float* s) {
    L.k_scale.clear();
    L.k_inv.clear();
    if (!s) return;
    L.k_scale.assign(s, s + L.n_kv_heads * L.head_dim);
    for (const float x : L.k_scale) L.k_inv.push_back(1.0f / x);
  }

  [[noreturn]] static void fail(const std::string& what, const char* where) {
    throw std::invalid_argument("error: " + what + " (" + where + ")");
  }

  const layer_state& owner(std::size_t l) const {
    if (l >= layers_.size()) fail("no layer " + std::to_string(l), "runtime_kv_cache");
    const int src = report_.map.cache_layer(l);
    if (src < 0) fail("layer " + std::to_string(l) + " has no KV cache", "runtime_kv_cache");
    return layers_[src];
  }

  // Per-thread scratch: slot i of a few independent buffers.
  static float* scratch(std::size_t n, int slot) {
    thread_local std::vector<float> buf[6];
    if (buf[slot].size() < n) buf[slot].resize(n);
    return buf[slot].data();
  }

  void encode_row(const codec_kernels& c, const float* x, float* tmp, std::size_t d,
                  std::byte* out) const {
    if (c.layout.rotated) {
      std::memcpy(tmp, x, d * sizeof(float));
      opt_.rotation.forward(tmp, d);
      c.encode(tmp, d, out);
    } else {
      c.encode(x, d, out);
    }
  }

  void read_row(std::size_t layer_index, std::size_t token, std::size_t head, float* x,
                bool is_k) const {
    const layer_state& L = owner(layer_index);
    if (token >= L.count || head >= L.n_kv_heads)
      fail("token " + std::to_string(token) + " head " + std::to_string(head) + " out of range",
           "read");
    const std::size_t slot = (L.start + token) % L.cap;
    const codec_kernels& c = is_k ? L.k : L.v;
    c.decode(is_k ? L.k_row(head, slot) : L.v_row(head, slot), L.head_dim, x);
    if (c.layout.rotated) opt_.rotation.inverse(x, L.head_dim);
    if (is_k) restore_k(L, head, x);
  }

  // A decoded, unrotated K row as the caller appended it: balance scales and the mean put back.
  void restore_k(const layer_state& L, std::size_t head, float* x) const {
    const std::size_t d = L.head_dim;
    if (!L.k_scale.empty())
      for (std::size_t i = 0; i < d; ++i) x[i] *= L.k_scale[head * d + i];
    if (opt_.subtract_k_mean)
      for (std::size_t i = 0; i < d; ++i) x[i] += L.k_mean[head * d + i];
  }

  // Calls fn(first physical slot, n) for the runs of the layer's tokens in logical order (the
  // ring wraps at most once).
  template <class Fn> static void for_each_run(const layer_state& L, Fn&& fn) {
    if (L.count == 0) return;
    const std::size_t first = std::min(L.count, L.cap - L.start);
    fn(L.start, first);
    if (first < L.count) fn(0, L.count - first);
  }

  void load_impl(const std::string& path) {
    detail::state_reader r(path);
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
    if ((flags & 1u) != (opt_.subtract_k_mean ? 1u : 0u))
      r.fail(flags & 1u ? "the file was saved with K mean subtraction, the cache has none"
                        : "the file was saved without K mean subtraction, the cache has it");
    if (r.le<std::uint64_t>() != opt_.rotation.id)
      r.fail("the file was saved with another rotation");
    const layer_map& m = report_.map;
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
      if (!(li == m[i]))
        r.fail("layer " + std::to_string(i) + " differs from the cache's layer map");
    }
    std::vector<std::size_t> counts;
    for (const auto& lc : report_.layers) {
      layer_state& L = layers_[lc.layer];
      const auto k = r.le<std::uint8_t>(), v = r.le<std::uint8_t>();
      if (k != std::uint8_t(L.k.layout.id) || v != std::uint8_t(L.v.layout.id))
        r.fail("layer " + std::to_string(lc.layer) + " was saved with K " +
               codec_label(codec_id(k)) + " / V " + codec_label(codec_id(v)) + ", the cache has " +
               std::string(codec_name(L.k.layout.id)) + " / " +
               std::string(codec_name(L.v.layout.id)));
      const auto count = r.le<std::uint64_t>();
      const auto pos0 = r.le<std::int64_t>();
      if (count > L.cap)
        r.fail("layer " + std::to_string(lc.layer) + " holds " + std::to_string(count) +
               " tokens, more than the cache's capacity of " + std::to_string(L.cap));
      const std::uint64_t need =
          count * L.n_kv_heads * (L.k.layout.row_bytes + L.v.layout.row_bytes);
      if (need > r.remaining()) r.fail("truncated file (" + std::to_string(r.size()) + " bytes)");
      counts.push_back(std::size_t(count));
      L.pos0 = pos0;
      if (opt_.subtract_k_mean) {
        L.k_mean.resize(L.n_kv_heads * L.head_dim);
        for (auto& x : L.k_mean) {
          const auto u = r.le<std::uint32_t>();
          std::memcpy(&x, &u, 4);
        }
      }
      L.k_scale.clear();
      L.k_inv.clear();
      if (version >= 2) {
        const auto has = r.le<std::uint8_t>();
        if (has > 1) r.fail("bad K balance flag in layer " + std::to_string(lc.layer));
        if (has == 1) {
          std::vector<float> sc(L.n_kv_heads * L.head_dim);
          for (auto& x : sc) {
            const auto u = r.le<std::uint32_t>();
            std::memcpy(&x, &u, 4);
            if (!(x > 0.0f) || !std::isfinite(x))
              r.fail("bad K balance scale in layer " + std::to_string(lc.layer));
          }
          set_scales(L, sc.data());
        }
      }
    }
    std::size_t o = 0;
    for (const auto& lc : report_.layers) {
      layer_state& L = layers_[lc.layer];
      const std::size_t count = counts[o++];
      for (std::size_t h = 0; h < L.n_kv_heads; ++h)
        r.bytes(L.k_row(h, 0), count * L.k.layout.row_bytes);
      for (std::size_t h = 0; h < L.n_kv_heads; ++h)
        r.bytes(L.v_row(h, 0), count * L.v.layout.row_bytes);
    }
    r.finish();
    o = 0;
    for (const auto& lc : report_.layers) {
      layer_state& L = layers_[lc.layer];
      L.start = 0;
      L.count = counts[o++];
      L.r_lo = L.pos0 + std::int64_t(L.count);  // the file has no recent rows
    }
  }

  // One KV head: its g query heads, all n_q query tokens.
  void attend_head(const layer_state& L, std::size_t n_heads, std::size_t h, const float* q,
                   std::size_t n_q, std::int64_t first_pos, float* out, float scale, float softcap,
                   float sparse_v) const {
    const std::size_t d = L.head_dim;
    const std::size_t g = n_heads / L.n_kv_heads;
    const std::size_t qb = std::max<std::size_t>(1, query_rows / g);
    const std::size_t rows_max = std::min(n_q, qb) * g;
    const std::size_t T = std::max<std::size_t>(key_tile, score_floats / rows_max / 64 * 64);
    float* qr = scratch(rows_max * d, 0);
    float* acc = scratch(rows_max * d, 1);
    float* S = scratch(rows_max * T, 2);
    float* ml = scratch(rows_max * 2, 3);  // running max, running sum
    const std::int64_t count = static_cast<std::int64_t>(L.count);
    for (std::size_t t0 = 0; t0 < n_q; t0 += qb) {
      const std::size_t nt = std::min(qb, n_q - t0);
      const std::size_t rows = nt * g;
      // Visible logical slots of query token t: [lo(t), hi(t)] (both non-decreasing in t).
      auto hi = [&](std::size_t t) {
        return std::min<std::int64_t>(count - 1, first_pos + std::int64_t(t) - L.pos0);
      };
      auto lo = [&](std::size_t t) {
        if (!L.sliding) return std::int64_t(0);
        return std::max<std::int64_t>(
            0, first_pos + std::int64_t(t) - std::int64_t(L.window) + 1 - L.pos0);
      };
      for (std::size_t t = 0; t < nt; ++t) {
        for (std::size_t j = 0; j < g; ++j) {
          float* r = qr + (t * g + j) * d;
          const float* src = q + ((t0 + t) * n_heads + h * g + j) * d;
          if (L.k_scale.empty())
            for (std::size_t c = 0; c < d; ++c) r[c] = src[c] * scale;
          else
            for (std::size_t c = 0; c < d; ++c) r[c] = src[c] * scale * L.k_scale[h * d + c];
          if (L.k.layout.rotated) opt_.rotation.forward(r, d);
        }
      }
      std::fill(acc, acc + rows * d, 0.0f);
      for (std::size_t r = 0; r < rows; ++r) {
        ml[2 * r] = -std::numeric_limits<float>::infinity();
        ml[2 * r + 1] = 0.0f;
      }
      const std::int64_t s_lo = lo(t0), s_hi = hi(t0 + nt - 1);
      // Logical slots >= s_rec come from the recent window's f16 rows (when the side has one).
      const std::int64_t s_rec = L.r_cap > 0 ? recent_lo(L) - L.pos0 : count;
      std::size_t ta = 0, tb = 0;  // active query tokens of the tile (relative to t0)
      for (std::int64_t s0 = s_lo; s0 <= s_hi;) {
        const std::size_t phys = (L.start + std::size_t(s0)) % L.cap;
        const bool recent = s0 >= s_rec;
        const std::size_t rs = recent ? rslot(L, L.pos0, std::size_t(s0)) : 0;
        const std::int64_t s1 = std::min<std::int64_t>(
            {s0 + std::int64_t(T), s_hi + 1, s0 + std::int64_t(L.cap - phys),
             recent ? s0 + std::int64_t(L.r_cap - rs) : std::max(s_rec, s0 + 1)});
        while (ta < nt && hi(t0 + ta) < s0) ++ta;
        while (tb < nt && lo(t0 + tb) < s1) ++tb;
        if (ta < tb) {
          const std::size_t n = std::size_t(s1 - s0);
          const std::size_t r0 = ta * g, nr = (tb - ta) * g;
          if (recent && L.rk_on)
            L.r.dot(qr + r0 * d, nr, d, L.rk_row(h, rs), L.r.layout.row_bytes, n, S, T);
          else
            L.k.dot(qr + r0 * d, nr, d, L.k_row(h, phys), L.k.layout.row_bytes, n, S, T);
          for (std::size_t t = ta; t < tb; ++t) {
            const std::int64_t a = std::max(lo(t0 + t), s0) - s0;
            const std::int64_t b = std::min(hi(t0 + t) + 1, s1) - s0;
            for (std::size_t j = 0; j < g; ++j) {
              const std::size_t r = t * g + j;
              detail::online_softmax_row(S + (r - r0) * T, n,
                                         std::size_t(std::max<std::int64_t>(a, 0)),
                                         std::size_t(std::max<std::int64_t>(b, 0)), softcap,
                                         ml[2 * r], ml[2 * r + 1], acc + r * d, d);
            }
          }
          // V in parts of key_tile keys when sparse V may skip some (the whole tile otherwise).
          const std::size_t part = sparse_v > 0.0f ? std::max<std::size_t>(1, key_tile) : n;
          for (std::size_t c0 = 0; c0 < n; c0 += part) {
            const std::size_t cn = std::min(part, n - c0);
            if (sparse_v > 0.0f) {
              float w = 0.0f;
              for (std::size_t r = 0; r < nr; ++r)
                w = std::max(w, detail::max_of(S + r * T + c0, cn));
              if (w < sparse_v) continue;
            }
            if (recent && L.rv_on)
              L.r.axpy(S + c0, nr, T, L.rv_row(h, rs + c0), L.r.layout.row_bytes, cn, d,
                       acc + r0 * d);
            else
              L.v.axpy(S + c0, nr, T, L.v_row(h, phys + c0), L.v.layout.row_bytes, cn, d,
                       acc + r0 * d);
          }
        }
        s0 = s1;
      }
      for (std::size_t t = 0; t < nt; ++t) {
        for (std::size_t j = 0; j < g; ++j) {
          const std::size_t r = t * g + j;
          float* a = acc + r * d;
          const float l = ml[2 * r + 1];
          const float inv = l > 0.0f ? 1.0f / l : 0.0f;
          for (std::size_t c = 0; c < d; ++c) a[c] *= inv;
          if (L.v.layout.rotated) opt_.rotation.inverse(a, d);
          std::memcpy(out + ((t0 + t) * n_heads + h * g + j) * d, a, d * sizeof(float));
        }
      }
    }
  }

  policy_report report_;
  cache_options opt_;
  std::vector<layer_state> layers_;
  std::size_t bytes_ = 0;
  std::unique_ptr<std::byte[]> data_;
};

}  // namespace strata
