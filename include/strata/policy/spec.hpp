#pragma once
// strata::policy_spec: the runtime form of a layer policy.
//
// A fallback K codec and V codec, plus an ordered list of rules. Each rule has selectors
// (it matches a KV layer when any selector does) and a K codec and/or a V codec. For K, the
// first matching rule that sets K wins, else the fallback; V likewise. Compile-time policies
// (strata/policy/policy.hpp) convert to this form, and so does the policy-string parser
// (strata/policy/parse.hpp), so both resolve layers through the same code.

#include <cstddef>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <strata/codec/standard_codecs.hpp>
#include <strata/layer_map.hpp>
#include <strata/policy/selectors.hpp>

namespace strata {

struct policy_rule {
  std::vector<layer_selector> selectors;  // any of them
  std::optional<codec_id> k;              // nullopt: the rule leaves K alone
  std::optional<codec_id> v;

  bool matches(std::size_t ordinal, std::size_t n_kv, attention_kind attn) const {
    for (const auto& s : selectors)
      if (s.matches(ordinal, n_kv, attn)) return true;
    return false;
  }
  friend bool operator==(const policy_rule&, const policy_rule&) = default;
};

// The codecs of one KV layer.
struct kv_layer_codecs {
  int layer = 0;    // raw layer index
  int ordinal = 0;  // KV-layer ordinal
  codec_id k{};
  codec_id v{};
  friend bool operator==(const kv_layer_codecs&, const kv_layer_codecs&) = default;
};

struct policy_spec {
  codec_id k = codec_id::f16;  // fallback
  codec_id v = codec_id::f16;
  std::vector<policy_rule> rules;
  // KIVI-style recent window: the newest `recent` tokens of every KV layer are also kept as f16
  // rows, for each side (K, V) whose codec is a block codec, and attention reads them from
  // there; older tokens come from the compressed rows (every token is encoded when appended,
  // so nothing is re-encoded when it ages). 0: off.
  std::size_t recent = 0;
  // Per-channel K balancing (include/strata/cache/k_balance.hpp): the cache divides each K
  // channel by a scale estimated from the first batch's queries and keys and multiplies the
  // queries by it (exact for attention: q.k = (q*s).(k/s)), so that the compressed K's error
  // is spread where the queries are small. Needs the queries: runtime_kv_cache::balance_k.
  bool k_balance = false;

  // The K and V codec of KV ordinal `ordinal` of `n_kv`.
  kv_layer_codecs resolve(std::size_t ordinal, std::size_t n_kv,
                          attention_kind attn = attention_kind::global) const {
    kv_layer_codecs out;
    out.ordinal = static_cast<int>(ordinal);
    out.layer = static_cast<int>(ordinal);
    out.k = k;
    out.v = v;
    bool k_done = false, v_done = false;
    for (const auto& r : rules) {
      if (k_done && v_done) break;
      if (!r.matches(ordinal, n_kv, attn)) continue;
      if (!k_done && r.k) out.k = *r.k, k_done = true;
      if (!v_done && r.v) out.v = *r.v, v_done = true;
    }
    return out;
  }

  // One entry per KV layer of `map`, in ordinal order.
  std::vector<kv_layer_codecs> resolve(const layer_map& map) const {
    std::vector<kv_layer_codecs> out;
    const std::size_t n_kv = map.n_kv_layers();
    out.reserve(n_kv);
    for (std::size_t o = 0; o < n_kv; ++o) {
      const int layer = map.kv_layer(o);
      kv_layer_codecs c = resolve(o, n_kv, map[layer].kind);
      c.layer = layer;
      out.push_back(c);
    }
    return out;
  }

  // Throws std::invalid_argument naming the first rule that matches no KV layer of `map`
  // ("v:99=q8_0" on a 30-layer model, "v:sliding=q8_0" on a model without sliding layers):
  // such a rule would silently do nothing.
  void check_every_rule_matches(const layer_map& map) const {
    const std::size_t n_kv = map.n_kv_layers();
    std::size_t n_sliding = 0;
    for (std::size_t o = 0; o < n_kv; ++o)
      n_sliding += map[map.kv_layer(o)].kind == attention_kind::sliding;
    for (const auto& r : rules) {
      bool any = false;
      for (std::size_t o = 0; o < n_kv && !any; ++o)
        any = r.matches(o, n_kv, map[map.kv_layer(o)].kind);
      if (any) continue;
      std::string msg = "error: the rule for layers \"";
      for (std::size_t i = 0; i < r.selectors.size(); ++i) {
        if (i) msg += ',';
        msg += r.selectors[i].to_string();
      }
      msg += "\" matches no KV layer of this model (";
      msg += std::to_string(n_kv);
      msg += " KV layers, ordinals 0-";
      msg += std::to_string(n_kv ? n_kv - 1 : 0);
      msg += ", ";
      msg += std::to_string(n_sliding);
      msg += " sliding-window) (policy \"";
      msg += to_string();
      msg += "\")";
      throw std::invalid_argument(msg);
    }
  }

  // Every codec this policy can name (fallbacks and rules), without duplicates.
  std::vector<codec_id> codecs() const {
    std::vector<codec_id> out;
    auto add = [&](codec_id c) {
      for (codec_id o : out)
        if (o == c) return;
      out.push_back(c);
    };
    add(k);
    add(v);
    for (const auto& r : rules) {
      if (r.k) add(*r.k);
      if (r.v) add(*r.v);
    }
    return out;
  }

  // The canonical policy string (parse_policy(to_string()) == *this):
  // rules first, in order, then the fallbacks, then recent= and k-balance when set, e.g.
  // "v:first2,last2=q8_0;k=q8_0;v=turbo2;recent=64".
  template <class Set = standard_codecs> std::string to_string() const {
    auto name = [](codec_id c) {
      const std::string_view n = Set::name(c);
      return n.empty() ? codec_label(c) : std::string(n);
    };
    std::string s;
    for (const auto& r : rules) {
      std::string sel;
      for (const auto& x : r.selectors) {
        if (!sel.empty()) sel += ',';
        sel += x.to_string();
      }
      if (r.k && r.v && *r.k == *r.v) {
        s += "kv:" + sel + "=" + name(*r.k) + ";";
      } else {
        if (r.k) s += "k:" + sel + "=" + name(*r.k) + ";";
        if (r.v) s += "v:" + sel + "=" + name(*r.v) + ";";
      }
    }
    s += "k=" + name(k) + ";v=" + name(v);
    if (recent) s += ";recent=" + std::to_string(recent);
    if (k_balance) s += ";k-balance";
    return s;
  }

  friend bool operator==(const policy_spec&, const policy_spec&) = default;
};

}  // namespace strata
