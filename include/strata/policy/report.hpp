#pragma once
// What a policy does to a model: the codec of every KV layer's K and V, the exact KV bytes for
// a context length (what strata::kv_cache allocates, to the byte), and the effective bits per
// value.
//
//   auto r = strata::report(strata::parse_policy("la7"), strata::layer_map::dense(40, 8, 128));
//   r.bytes(4096);     // K + V bytes of every KV layer for 4096 tokens
//   r.bits_v();        // V bits/value with strata's own block sizes
//   r.bits_v(rates);   // ... with other bit rates, e.g. the TurboQuant fork's (q8_0 = 8.5,
//                      //     turbo2 = 2.5): any callable double(codec_id, uint32_t head_dim)
//   r.table();         // a markdown table, one row per run of layers with the same codecs

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <strata/codec/layout.hpp>
#include <strata/layer_map.hpp>
#include <strata/policy/spec.hpp>

namespace strata {

// strata's own bit rate of a codec for a head dim (block bytes * 8 / block values).
inline double strata_bits(codec_id id, std::uint32_t head_dim) {
  return layout_of(id, head_dim).bits_per_value();
}

// The bit rate of codecs through a layout resolver (the report's own codecs).
struct layout_bits {
  layout_resolver layout;
  double operator()(codec_id id, std::uint32_t head_dim) const {
    return layout(id, head_dim).bits_per_value();
  }
};

struct policy_report {
  layer_map map;
  std::vector<kv_layer_codecs> layers;                   // one per KV layer, by ordinal
  std::size_t recent = 0;                                // policy_spec::recent
  bool k_balance = false;                                // policy_spec::k_balance
  layout_resolver layout = &layout_of<standard_codecs>;  // layout_of<Set> of the codecs' set

  // Tokens of the recent window (f16 rows) the ordinal-th KV layer keeps for K (V): 0 when the
  // side's codec is an element codec (f32, f16, bf16) or the policy has no recent window.
  std::size_t recent_tokens(std::size_t ordinal, std::size_t n_ctx, std::size_t max_batch,
                            bool k) const {
    const codec_id c = k ? layers.at(ordinal).k : layers.at(ordinal).v;
    if (recent == 0 || layout(c, map[layers.at(ordinal).layer].head_dim).block_values == 1)
      return 0;
    return std::min(recent, layer_tokens(ordinal, n_ctx, max_batch));
  }
  // Bytes of one token's f16 row on the ordinal-th KV layer, all KV heads.
  std::size_t recent_token_bytes(std::size_t ordinal) const {
    const layer_info& li = map[layers.at(ordinal).layer];
    return li.n_kv_heads * layout_of(codec_id::f16, li.head_dim).row_bytes;  // always f16
  }

  // Bytes of one token's K (V) on the ordinal-th KV layer, all KV heads.
  std::size_t k_token_bytes(std::size_t ordinal) const { return token_bytes(ordinal, true); }
  std::size_t v_token_bytes(std::size_t ordinal) const { return token_bytes(ordinal, false); }

  // Tokens the ordinal-th KV layer holds for a context of n_ctx: n_ctx, except that a
  // sliding-window layer holds min(n_ctx, window + max_batch - 1) when max_batch > 0 (a ring
  // big enough for appending max_batch tokens at once). The cache allocates exactly this.
  std::size_t layer_tokens(std::size_t ordinal, std::size_t n_ctx,
                           std::size_t max_batch = 0) const {
    const layer_info& li = map[layers.at(ordinal).layer];
    if (li.kind == attention_kind::sliding && max_batch > 0)
      return std::min<std::size_t>(n_ctx, li.window + max_batch - 1);
    return n_ctx;
  }

  // Exact K + V bytes of every KV layer for n_ctx tokens (what the cache allocates; pass the
  // cache's max_batch when sliding layers are shortened), the recent window's f16 rows included.
  // Codecs with the key-tile layout (turbo4 with groups of 64 and 128) allocate their rows in
  // tiles of 32 per KV head: up to 31 rows more per layer and side than n_ctx.
  std::size_t bytes(std::size_t n_ctx, std::size_t max_batch = 0) const {
    return side_bytes(n_ctx, max_batch, true) + side_bytes(n_ctx, max_batch, false);
  }
  std::size_t k_bytes(std::size_t n_ctx, std::size_t max_batch = 0) const {
    return side_bytes(n_ctx, max_batch, true);
  }
  std::size_t v_bytes(std::size_t n_ctx, std::size_t max_batch = 0) const {
    return side_bytes(n_ctx, max_batch, false);
  }

  // Effective bits per value of the compressed rows, weighted by the values each layer stores
  // (a recent window's f16 rows depend on the context: see bytes()).
  template <class Bits> double bits_k(Bits&& bits) const { return side_bits(bits, true); }
  template <class Bits> double bits_v(Bits&& bits) const { return side_bits(bits, false); }
  template <class Bits> double bits(Bits&& bits) const {
    return (side_bits(bits, true) + side_bits(bits, false)) / 2;
  }
  double bits_k() const { return bits_k(layout_bits{layout}); }
  double bits_v() const { return bits_v(layout_bits{layout}); }
  double bits() const { return bits(layout_bits{layout}); }

  // Markdown table: one row per run of consecutive KV layers (by ordinal) with the same
  // attention kind and K/V codecs, naming their raw layer indices; then a line counting the
  // layers without a cache of their own.
  std::string table() const {
    std::string s = "| KV ordinals | layers | attention | K | V |\n|---|---|---|---|---|\n";
    auto cells = [&](std::size_t o) {
      const layer_info& li = map[layers[o].layer];
      std::string c = li.kind == attention_kind::sliding ? "sliding " : "global";
      if (li.kind == attention_kind::sliding) c += std::to_string(li.window);
      c += " | ";
      c += codec_label(layers[o].k);
      c += " | ";
      c += codec_label(layers[o].v);
      return c;
    };
    for (std::size_t i = 0, j; i < layers.size(); i = j) {
      const std::string c = cells(i);
      for (j = i + 1; j < layers.size() && cells(j) == c;) ++j;
      std::string ords = std::to_string(i);
      if (j - 1 > i) {
        ords += '-';
        ords += std::to_string(j - 1);
      }
      std::string raw;
      if (j - i <= 4) {
        for (std::size_t o = i; o < j; ++o) {
          if (!raw.empty()) raw += ", ";
          raw += std::to_string(layers[o].layer);
        }
      } else {
        raw = std::to_string(layers[i].layer);
        raw += ", ";
        raw += std::to_string(layers[i + 1].layer);
        raw += ", ..., ";
        raw += std::to_string(layers[j - 1].layer);
      }
      s += "| ";
      s += ords;
      s += " | ";
      s += raw;
      s += " | ";
      s += c;
      s += " |\n";
    }
    const std::size_t others = map.n_layers() - layers.size();
    if (others > 0) {
      s += '\n';
      s += std::to_string(others);
      s += " of ";
      s += std::to_string(map.n_layers());
      s += " layers have no KV cache of their own.\n";
    }
    if (recent > 0) {
      s += "\nThe newest ";
      s += std::to_string(recent);
      s += " tokens of every layer are also kept as f16 rows (K and V sides with a block codec).\n";
    }
    if (k_balance) s += "\nK channels are balanced against the queries (k-balance).\n";
    return s;
  }

 private:
  std::size_t token_bytes(std::size_t o, bool k) const {
    const layer_info& li = map[layers.at(o).layer];
    return li.n_kv_heads * layout(k ? layers[o].k : layers[o].v, li.head_dim).row_bytes;
  }
  // A side's rows: its tokens rounded up to the codec's slot multiple (key tiles).
  std::size_t side_bytes(std::size_t n_ctx, std::size_t max_batch, bool k) const {
    std::size_t t = 0;
    for (std::size_t o = 0; o < layers.size(); ++o) {
      const layer_info& li = map[layers[o].layer];
      const codec_layout l = layout(k ? layers[o].k : layers[o].v, li.head_dim);
      t += li.n_kv_heads * l.row_bytes * l.slots_for(layer_tokens(o, n_ctx, max_batch)) +
           recent_token_bytes(o) * recent_tokens(o, n_ctx, max_batch, k);
    }
    return t;
  }
  template <class Bits> double side_bits(Bits& bits, bool k) const {
    double num = 0, den = 0;
    for (const auto& l : layers) {
      const layer_info& li = map[l.layer];
      const double values = double(li.n_kv_heads) * li.head_dim;
      num += values * bits(k ? l.k : l.v, li.head_dim);
      den += values;
    }
    return den > 0 ? num / den : 0.0;
  }
};

// The report of runtime policy `spec` on `map` (codecs of the set whose layout_of is `layouts`);
// throws when a head dim does not fit a codec or a codec is not in the set.
inline policy_report report(const policy_spec& spec, const layer_map& map,
                            layout_resolver layouts = &layout_of<standard_codecs>) {
  policy_report r{map, spec.resolve(map), spec.recent, spec.k_balance, layouts};
  for (std::size_t o = 0; o < r.layers.size(); ++o) {
    (void)r.k_token_bytes(o);  // validates the head dim against both codecs
    (void)r.v_token_bytes(o);
  }
  return r;
}

}  // namespace strata
