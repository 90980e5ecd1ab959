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
//   lse written by attend():  [n_q][n_heads]                     (when attention_params::lse)
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
// append transforms each K row (k_transform.hpp: K mean, K balance), rotates K (V) rows when
// the layer's K (V) codec is a rotated one, and encodes them (row_store.hpp). attend runs the
// loop of attend.hpp: queries rotated and scaled once, scores with the K codec's dot kernel
// straight from the compressed blocks, an f32 online softmax over key tiles, V summed with the
// V codec's axpy kernel, the output rotated back once. save/load: state_io.hpp.
//
// ---- Also: Highway ---------------------------------------------------------------------------
// Header-only, this header includes strata/kernels/kernels.hpp (hwy/foreach_target.h): a .cpp
// that includes it cannot run its own Highway dynamic dispatch (Highway 1.0.3, one per unit).
// Linked with strata::kernels it sees the kernels' declarations only.
//
// ---- Threads ------------------------------------------------------------------------------
// - const members (attend, attend on any KV-head subset, sizes, save) may run concurrently
//   with each other, from any number of threads.
// - append(layer, ...) on different layers may run concurrently with each other and with
//   attend on other layers. append and attend on the same layer must not overlap.
// - truncate, drop_front, shift, erase, clear and load change every layer: nothing else may run.
//   save is const (it may run with attend, not with append).
// - To split one layer's attention over threads, give each thread a range of KV heads
//   (attention_params::kv_head_begin/end) and/or a range of query tokens (a sub-array of q and
//   out with its own first_pos): each call writes only its own output rows. Scratch memory is
//   per thread (scratch.hpp), no locks. With few KV heads (or one), split the keys too
//   (split-K, strata/cache/split_k.hpp): calls over disjoint key ranges
//   (attention_params::key_begin/end), each into its own output and log-sum-exp rows
//   (attention_params::lse), then merge_attention.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <strata/cache/attend.hpp>
#include <strata/cache/erase.hpp>
#include <strata/cache/k_balance.hpp>
#include <strata/cache/layer_state.hpp>
#include <strata/cache/options.hpp>
#include <strata/cache/scratch.hpp>
#include <strata/cache/split_k.hpp>
#include <strata/cache/state_io.hpp>
#include <strata/layer_map.hpp>
#include <strata/policy/report.hpp>
#include <strata/policy/spec.hpp>

namespace strata {

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
    for (const auto& lc : report_.layers) total = lay_out(lc, total);
    bytes_ = total;
    data_.reset(new std::byte[bytes_ ? bytes_ : 1]);
    for (auto& L : layers_)
      if (L.owns)
        for (detail::row_store* s : {&L.k, &L.v, &L.rk, &L.rv}) s->data = data_.get() + s->offset;
  }

  const layer_map& map() const noexcept { return report_.map; }
  const policy_report& policy() const noexcept { return report_; }
  const cache_options& options() const noexcept { return opt_; }

  // Bytes of compressed K/V storage (and the recent window's f16 rows), allocated once in the
  // constructor: exactly policy().bytes(n_ctx, max_batch).
  std::size_t bytes() const noexcept { return bytes_; }
  // Bytes of the layers' K means and balance scales (allocated when first set; strata::plan's
  // `side` once they are).
  std::size_t side_bytes() const noexcept {
    std::size_t n = 0;
    for (const auto& L : layers_) n += L.kt.mean.size() + L.kt.scale.size() + L.kt.inv.size();
    return n * sizeof(float);
  }
  // Tokens the layer can hold (its cache's layer when it shares one).
  std::size_t capacity(std::size_t layer) const { return owner(layer).cap; }
  // Tokens cached on the layer, and their positions [pos_begin, pos_end).
  std::size_t size(std::size_t layer) const { return owner(layer).count; }
  std::int64_t pos_begin(std::size_t layer) const { return owner(layer).pos0; }
  std::int64_t pos_end(std::size_t layer) const { return owner(layer).pos_end(); }
  codec_id k_codec(std::size_t layer) const { return owner(layer).k.kern.layout.id; }
  codec_id v_codec(std::size_t layer) const { return owner(layer).v.kern.layout.id; }
  // Positions [recent_begin, pos_end) of the layer are read from its recent window's f16 rows
  // (policy_spec::recent); recent_begin == pos_end when it has none.
  std::int64_t recent_begin(std::size_t layer) const {
    const detail::layer_state& L = owner(layer);
    return L.r_cap == 0 ? L.pos_end() : L.recent_lo();
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
    detail::layer_state& L = owned(layer, "set_k_scales");
    if (L.count != 0) fail("layer " + std::to_string(layer) + " is not empty", "set_k_scales");
    const std::size_t n = L.n_kv_heads * L.head_dim;
    if (s)
      for (std::size_t i = 0; i < n; ++i)
        if (!(s[i] > 0.0f) || !std::isfinite(s[i]))
          fail("K scale " + std::to_string(i) + " of layer " + std::to_string(layer) +
                   " is not a finite positive number",
               "set_k_scales");
    L.kt.set_scales(s, n);
  }
  // `pairs`: the rotary pairs of keys and queries that carry RoPE (k_balance.hpp), so that
  // both channels of a pair share a scale.
  void balance_k(std::size_t layer, const float* q, std::size_t n_q, const float* k,
                 std::size_t n_k, rotary_pairs pairs = {}) {
    if (!report_.k_balance) return;
    detail::layer_state& L = owned(layer, "balance_k");
    if (L.count != 0 || n_k < k_balance_min_keys) return;
    const std::size_t d = L.head_dim, nk = L.n_kv_heads;
    std::vector<float> mean;  // the mean append will take from the same batch
    if (opt_.subtract_k_mean) mean = detail::k_transform::batch_mean(k, n_k, nk * d);
    const auto s = k_balance_scales(q, n_q, L.n_heads, k, n_k, nk, d,
                                    mean.empty() ? nullptr : mean.data(), pairs);
    L.kt.set_scales(s.empty() ? nullptr : s.data(), nk * d);
  }
  // The layer's K scales ([n_kv_heads][head_dim]; empty: none).
  const std::vector<float>& k_scales(std::size_t layer) const { return owner(layer).kt.scale; }

  // Stores K and V of n_tokens tokens at positions pos, pos+1, ... on `layer` (which must own
  // its KV cache). Layout [n_tokens][n_kv_heads][head_dim]. Throws std::invalid_argument when
  // pos does not continue the layer's range, std::length_error when a global layer is full.
  // On a sliding-window layer the oldest tokens are dropped to make room.
  void append(std::size_t layer, std::int64_t pos, const float* k, const float* v,
              std::size_t n_tokens) {
    detail::layer_state& L = owned(layer, "append");
    if (n_tokens == 0) return;
    if (L.count == 0)
      L.empty_at(pos);
    else if (pos != L.pos_end())
      fail("position " + std::to_string(pos) + " does not continue layer " + std::to_string(layer) +
               " (expected " + std::to_string(L.pos_end()) + ")",
           "append");
    make_room(L, layer, n_tokens);
    if (opt_.subtract_k_mean && L.count == 0)
      L.kt.mean = detail::k_transform::batch_mean(k, n_tokens, L.n_kv_heads * L.head_dim);
    encode_tokens(L, pos, k, v, n_tokens);
    L.count += n_tokens;
    if (L.r_cap > 0)
      L.r_lo = std::max(L.r_lo, pos + std::int64_t(n_tokens) - std::int64_t(L.r_cap));
  }

  // Attention of n_q queries on `layer` (its own cache or the one it shares). Query t is at
  // position first_pos + t. q and out: [n_q][n_heads][head_dim]. A query that sees no key
  // gets a zero output. p may restrict the call to some KV heads and to a range of key
  // positions (split-K: several calls over disjoint ranges, merged by merge_attention).
  void attend(std::size_t layer, const float* q, std::size_t n_q, std::int64_t first_pos,
              float* out, const attention_params& p = {}) const {
    const detail::layer_state& L = owner(layer, "attend");
    detail::attend_call c{.q = q, .n_q = n_q, .first_pos = first_pos, .out = out};
    c.n_heads = report_.map[layer].n_heads;
    c.scale = p.scale != 0.0f ? p.scale : 1.0f / std::sqrt(float(L.head_dim));
    c.softcap = p.softcap;
    c.sparse_v = p.sparse_v;
    c.tiling = opt_.tiling;
    c.rotation = opt_.rotation;
    // The key range in logical slots, clamped to the layer's tokens in positions first (no
    // overflow whatever the positions).
    c.slot_begin = std::clamp(p.key_begin, L.pos0, L.pos_end()) - L.pos0;
    c.slot_end = std::clamp(p.key_end, L.pos0, L.pos_end()) - L.pos0;
    c.lse = p.lse;
    const std::size_t h1 = std::min<std::size_t>(p.kv_head_end, L.n_kv_heads);
    for (std::size_t h = p.kv_head_begin; h < h1; ++h) detail::head_attention(L, h, c).run();
  }

  // The positions the queries at first_pos .. first_pos + n_q - 1 see on `layer` together
  // (causal, the sliding window): the range a split-K caller cuts into key chunks
  // (split_k.hpp). Empty when they see nothing.
  key_range visible_keys(std::size_t layer, std::int64_t first_pos, std::size_t n_q) const {
    const detail::layer_state& L = owner(layer, "visible_keys");
    std::int64_t begin = L.pos0;
    if (L.sliding) begin = std::max(begin, first_pos - std::int64_t(L.window) + 1);
    const std::int64_t end = std::min(L.pos_end(), first_pos + std::int64_t(n_q));
    return {begin, std::max(begin, end)};
  }

  // Drops every token at a position >= pos, on every layer.
  void truncate(std::int64_t pos) {
    for (auto& L : layers_) {
      if (!L.owns || L.count == 0) continue;
      if (pos <= L.pos0)
        L.count = 0;
      else if (pos < L.pos_end())
        L.count = static_cast<std::size_t>(pos - L.pos0);
      // Recent rows of [r_lo, pos) stay valid; tokens appended from pos on get theirs.
      L.r_lo = std::min(L.r_lo, pos);
    }
  }

  // Drops the n oldest tokens of every layer; the others keep their positions.
  void drop_front(std::size_t n) {
    for (auto& L : layers_)
      if (L.owns) L.drop_oldest(n);
  }

  // Adds delta to the position of every cached token. Keys keep their stored values; when K
  // carries RoPE, pass `rerope` to move them: it is called once per token and KV head with the
  // decoded, unrotated K row (head_dim floats) and may change it in place, after which the row
  // is encoded again (one more quantization round trip for compressed codecs).
  template <class Fn> void shift(std::int64_t delta, Fn&& rerope) {
    for (std::size_t li = 0; li < layers_.size(); ++li) {
      detail::layer_state& L = layers_[li];
      if (!L.owns) continue;
      detail::rerope_ring(L, li, 0, L.count, delta, opt_.rotation, rerope);
      L.pos0 += delta;
      L.r_lo = L.pos_end();  // the recent rows sit at the old positions' slots
    }
  }
  void shift(std::int64_t delta) {
    for (auto& L : layers_) {
      L.pos0 += delta;
      L.r_lo = L.pos_end();
    }
  }

  // Removes the tokens at positions [begin, end) from every layer, as llama-server's context
  // shift does (keep the first n_keep tokens, discard n_discard after them): tokens before
  // `begin` keep their positions and bytes, tokens at `end` and after move down by
  // end - begin. Only the moved tokens' keys are re-encoded, through `rerope` as in shift (with
  // no rerope the keys keep their stored values). The recent window's rows move with their
  // tokens. A sliding-window layer that holds only the newest tokens keeps fewer than its
  // window after an erase: the caller decides whether that still serves its next query.
  template <class Fn> void erase(std::int64_t begin, std::int64_t end, Fn&& rerope) {
    erase_range(begin, end, true, rerope);
  }
  void erase(std::int64_t begin, std::int64_t end) {
    detail::no_rerope none;
    erase_range(begin, end, false, none);
  }

  // Empties every layer.
  void clear() {
    for (auto& L : layers_) L.empty_at(0);
  }

  // Writes every layer's cached tokens to `path` (format: strata/cache/state_file.hpp), through
  // a mkstemp temporary renamed into place (strata::atomic_file). Throws std::runtime_error on
  // I/O errors.
  void save(const std::string& path) const {
    detail::write_state(path, report_, layers_, settings());
  }

  // Replaces the cached tokens with those saved in `path`. The file must come from a cache with
  // the same layer map, per-layer codecs and rotation, and fit this cache's capacity; anything
  // else (another file, a wrong version, a truncated or corrupted file) throws
  // std::runtime_error("error: <what> (load <path>)") and leaves the cache empty.
  void load(const std::string& path) {
    clear();
    try {
      detail::read_state(path, report_, layers_, settings());
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

 private:
  [[noreturn]] static void fail(const std::string& what, const char* where) {
    throw std::invalid_argument("error: " + what + " (" + where + ")");
  }

  // The state of the layer whose cache `layer` reads (itself, or the layer it shares).
  const detail::layer_state& owner(std::size_t layer,
                                   const char* where = "runtime_kv_cache") const {
    if (layer >= layers_.size()) fail("no layer " + std::to_string(layer), where);
    const int src = report_.map.cache_layer(layer);
    if (src < 0) fail("layer " + std::to_string(layer) + " has no KV cache", where);
    return layers_[std::size_t(src)];
  }
  // The state of `layer`, which must own its cache.
  detail::layer_state& owned(std::size_t layer, const char* where) {
    if (layer >= layers_.size() || !layers_[layer].owns)
      fail("layer " + std::to_string(layer) + " does not own a KV cache", where);
    return layers_[layer];
  }

  detail::state_settings settings() const { return {opt_.subtract_k_mean, opt_.rotation.id}; }

  // The kernels of codec `id` for `layer`, checked against the codec set's layout.
  codec_kernels checked_kernels(codec_id id, std::uint32_t head_dim, std::size_t layer) const {
    const codec_kernels k = opt_.kernels(id, head_dim);
    if (k.layout.row_bytes != opt_.layouts(id, head_dim).row_bytes)
      fail("the kernels of " + codec_label(id) + " disagree with its layout (layer " +
               std::to_string(layer) +
               "): cache_options::kernels and ::layouts must come from one codec set",
           "runtime_kv_cache");
    return k;
  }

  // Sets up the state of KV layer lc with its rows at byte `at` of the allocation (K, V, then
  // the recent window's K and V rows); returns the byte after them.
  std::size_t lay_out(const kv_layer_codecs& lc, std::size_t at) {
    const layer_info& li = report_.map[lc.layer];
    detail::layer_state& L = layers_[lc.layer];
    L.owns = true;
    L.n_kv_heads = li.n_kv_heads;
    L.n_heads = li.n_heads;
    L.head_dim = li.head_dim;
    L.sliding = li.kind == attention_kind::sliding;
    L.window = li.window;
    const std::size_t o = std::size_t(lc.ordinal);
    L.cap = report_.layer_tokens(o, opt_.n_ctx, opt_.max_batch);
    const std::size_t rk = report_.recent_tokens(o, opt_.n_ctx, opt_.max_batch, true);
    const std::size_t rv = report_.recent_tokens(o, opt_.n_ctx, opt_.max_batch, false);
    L.r_cap = std::max(rk, rv);
    const codec_kernels f16 = L.r_cap ? opt_.kernels(codec_id::f16, li.head_dim) : codec_kernels{};
    const struct {
      detail::row_store& s;
      codec_kernels kern;
      std::size_t slots;
    } sides[] = {{L.k, checked_kernels(lc.k, li.head_dim, lc.layer), L.cap},
                 {L.v, checked_kernels(lc.v, li.head_dim, lc.layer), L.cap},
                 {L.rk, f16, rk ? L.r_cap : 0},
                 {L.rv, f16, rv ? L.r_cap : 0}};
    const bool tiles = opt_.key_tiles == key_tile_use::always ||
                       (opt_.key_tiles == key_tile_use::native && tile_kernels_native());
    for (const auto& side : sides) {
      side.s.set_up(side.kern, side.slots, L.n_kv_heads, tiles && side.kern.has_tiles());
      side.s.offset = at;
      at += side.s.bytes();
    }
    return at;
  }

  // Before appending n tokens: on a sliding layer, drops the oldest tokens beyond its capacity
  // (safe while the batch's first query keeps its window); on a global one, refuses to overflow.
  static void make_room(detail::layer_state& L, std::size_t layer, std::size_t n) {
    if (L.count + n <= L.cap) return;
    if (!L.sliding)
      throw std::length_error("error: KV cache full: " + std::to_string(L.count) + " + " +
                              std::to_string(n) + " tokens > n_ctx " + std::to_string(L.cap) +
                              " (append, layer " + std::to_string(layer) + ")");
    if (n + L.window - 1 > L.cap)
      throw std::length_error("error: " + std::to_string(n) +
                              " tokens at once exceed the sliding layer's capacity of " +
                              std::to_string(L.cap) + " tokens for a window of " +
                              std::to_string(L.window) + " (append, layer " +
                              std::to_string(layer) + ")");
    L.drop_oldest(L.count + n - L.cap, true);
  }

  // Encodes the K and V rows of n tokens at positions pos.. into the ring after the layer's
  // tokens (and into the recent window's rows of the sides that have one).
  void encode_tokens(detail::layer_state& L, std::int64_t pos, const float* k, const float* v,
                     std::size_t n) const {
    const std::size_t d = L.head_dim;
    float* tmp = detail::scratch(d, 0);
    float* stored = detail::scratch(d, 4);
    const auto rotate = opt_.rotation.forward;
    for (std::size_t t = 0; t < n; ++t) {
      const std::size_t slot = L.slot(L.count + t);
      for (std::size_t h = 0; h < L.n_kv_heads; ++h) {
        const std::size_t src = (t * L.n_kv_heads + h) * d;
        const float* kr = L.kt.forward(h, k + src, d, stored);
        L.k.encode(kr, tmp, d, rotate, h, slot);
        // encode leaves the row as the codec saw it (rotated or not) in tmp.
        if (L.rk.on())
          L.rk.encode_at(L.k.kern.layout.rotated ? tmp : kr, d, h, L.recent_slot(pos, t));
        L.v.encode(v + src, tmp, d, rotate, h, slot);
        if (L.rv.on())
          L.rv.encode_at(L.v.kern.layout.rotated ? tmp : v + src, d, h, L.recent_slot(pos, t));
      }
    }
  }

  template <class Fn>
  void erase_range(std::int64_t begin, std::int64_t end, bool rerope_k, Fn& rerope) {
    if (begin < 0 || end < begin)
      fail("bad range [" + std::to_string(begin) + ", " + std::to_string(end) + ")", "erase");
    for (std::size_t li = 0; li < layers_.size(); ++li)
      if (layers_[li].owns)
        detail::erase_positions(layers_[li], li, begin, end, opt_.rotation, rerope_k, rerope);
  }

  void read_row(std::size_t layer, std::size_t token, std::size_t head, float* x, bool is_k) const {
    const detail::layer_state& L = owner(layer);
    if (token >= L.count || head >= L.n_kv_heads)
      fail("token " + std::to_string(token) + " head " + std::to_string(head) + " out of range",
           "read");
    (is_k ? L.k : L.v).decode(head, L.slot(token), L.head_dim, opt_.rotation.inverse, x);
    if (is_k) L.kt.inverse(head, x, L.head_dim);
  }

  policy_report report_;
  cache_options opt_;
  std::vector<detail::layer_state> layers_;
  std::size_t bytes_ = 0;
  std::unique_ptr<std::byte[]> data_;
};

}  // namespace strata
