#include "run/policy_choice.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <vector>

#include <strata/codec/standard_codecs.hpp>
#include <strata/plan.hpp>
#include <strata/policy/parse.hpp>
#include <strata/policy/report.hpp>

#include "error.hpp"

namespace engine {

namespace {

strata::policy_report report_of(const strata::layer_map& map, const std::string& policy) {
  try {
    return strata::report(strata::parse_policy(policy), map);
  } catch (const std::exception& e) {
    const std::string w = e.what();
    throw error(w.rfind("error: ", 0) == 0 ? w : "error: " + w + " (policy choice)");
  }
}

struct option {
  int codec = 0;  // index into the codec list (menu, then f16)
  double bytes = 0, kld = 0;
};

// One (KV layer, side) and its options.
struct item {
  int ordinal = 0;
  bool k_side = true;
  std::vector<option> options;
  int pick = 0;
};

struct totals {
  double bytes = 0, kld = 0;
};

totals sum(const std::vector<item>& items) {
  totals t;
  for (const auto& it : items) {
    t.bytes += it.options[size_t(it.pick)].bytes;
    t.kld += it.options[size_t(it.pick)].kld;
  }
  return t;
}

// Each item's option minimizing kld + lambda * bytes (ties: fewer bytes).
void pick(std::vector<item>& items, double lambda) {
  for (auto& it : items) {
    int best = 0;
    for (int o = 1; o < int(it.options.size()); ++o) {
      const option& a = it.options[size_t(o)];
      const option& b = it.options[size_t(best)];
      const double ca = a.kld + lambda * a.bytes, cb = b.kld + lambda * b.bytes;
      if (ca < cb || (ca == cb && a.bytes < b.bytes)) best = o;
    }
    it.pick = best;
  }
}

// "0,2-4,9"
std::string ordinal_list(const std::vector<int>& ords) {
  std::string s;
  for (size_t i = 0; i < ords.size();) {
    size_t j = i;
    while (j + 1 < ords.size() && ords[j + 1] == ords[j] + 1) ++j;
    if (!s.empty()) s += ",";
    s += std::to_string(ords[i]);
    if (j > i) s.append("-").append(std::to_string(ords[j]));
    i = j + 1;
  }
  return s;
}

std::string policy_string(const std::vector<item>& items, const std::vector<std::string>& codecs,
                          bool k_balance) {
  std::string s;
  for (const bool k : {true, false}) {
    std::map<int, std::vector<int>> by_codec;
    for (const auto& it : items)
      if (it.k_side == k) by_codec[it.options[size_t(it.pick)].codec].push_back(it.ordinal);
    int fallback = by_codec.begin()->first;
    for (const auto& [c, ords] : by_codec)
      if (ords.size() > by_codec[fallback].size()) fallback = c;
    const char* side = k ? "k" : "v";
    if (!s.empty()) s += ";";
    s.append(side).append("=").append(codecs[size_t(fallback)]);
    for (auto& [c, ords] : by_codec) {
      if (c == fallback) continue;
      std::sort(ords.begin(), ords.end());
      s.append(";")
          .append(side)
          .append(":")
          .append(ordinal_list(ords))
          .append("=")
          .append(codecs[size_t(c)]);
    }
  }
  if (k_balance) s += ";k-balance";
  return s;
}

// Meets `budget` bytes with the least predicted KLD; false when even the cheapest picks exceed it.
bool fit_bytes(std::vector<item>& items, double budget) {
  pick(items, 1e30);
  if (sum(items).bytes > budget) return false;
  // lambda: hi meets the budget, lo does not (or lo is tiny: nothing costs more).
  double hi = 1;
  pick(items, hi);
  while (sum(items).bytes > budget) {
    hi *= 4;
    pick(items, hi);
  }
  double lo = hi;
  while (lo > 1e-30) {
    lo /= 4;
    pick(items, lo);
    if (sum(items).bytes > budget) break;
    hi = lo;
  }
  for (int i = 0; i < 100 && hi > lo * (1 + 1e-9); ++i) {
    const double mid = std::sqrt(lo * hi);
    pick(items, mid);
    (sum(items).bytes <= budget ? hi : lo) = mid;
  }
  pick(items, hi);
  // Spend what is left: the single upgrade with the best KLD saved per byte, while one fits.
  for (;;) {
    const totals t = sum(items);
    double best_rate = 0;
    item* best_item = nullptr;
    int best_opt = -1;
    for (auto& it : items) {
      const option& cur = it.options[size_t(it.pick)];
      for (int o = 0; o < int(it.options.size()); ++o) {
        const option& a = it.options[size_t(o)];
        const double db = a.bytes - cur.bytes, dk = cur.kld - a.kld;
        if (dk <= 0 || t.bytes + db > budget) continue;
        const double rate = db > 0 ? dk / db : std::numeric_limits<double>::infinity();
        if (rate > best_rate) {
          best_rate = rate;
          best_item = &it;
          best_opt = o;
        }
      }
    }
    if (!best_item) break;
    best_item->pick = best_opt;
  }
  return true;
}

// Meets a KLD target with the fewest bytes (f16 everywhere when nothing cheaper does).
void fit_kld(std::vector<item>& items, double target) {
  double lo = 0, hi = 1;
  pick(items, hi);
  while (sum(items).kld <= target && hi < 1e30) {
    lo = hi;
    hi *= 4;
    pick(items, hi);
  }
  if (sum(items).kld <= target) return;  // the cheapest picks already meet it
  lo = lo == 0 ? 1e-30 : lo;
  for (int i = 0; i < 100; ++i) {
    const double mid = std::sqrt(lo * hi);
    pick(items, mid);
    if (sum(items).kld <= target)
      lo = mid;
    else
      hi = mid;
  }
  pick(items, lo);
  // Single downgrades with the fewest KLD added per byte saved, while the target holds.
  for (;;) {
    const totals t = sum(items);
    double best_rate = std::numeric_limits<double>::infinity();
    item* best_item = nullptr;
    int best_opt = -1;
    for (auto& it : items) {
      const option& cur = it.options[size_t(it.pick)];
      for (int o = 0; o < int(it.options.size()); ++o) {
        const option& a = it.options[size_t(o)];
        const double saved = cur.bytes - a.bytes, dk = a.kld - cur.kld;
        if (saved <= 0 || t.kld + dk > target) continue;
        const double rate = std::max(dk, 0.0) / saved;
        if (rate < best_rate) {
          best_rate = rate;
          best_item = &it;
          best_opt = o;
        }
      }
    }
    if (!best_item) break;
    best_item->pick = best_opt;
  }
}

}  // namespace

double policy_bits(const strata::layer_map& map, const std::string& policy, int n_ctx,
                   int max_batch) {
  const strata::policy_report r = report_of(map, policy);
  strata::plan_options po;
  po.max_batch = size_t(std::max(0, max_batch));
  const strata::kv_plan p = strata::plan(r, size_t(n_ctx), po);
  double values = 0;
  for (size_t o = 0; o < r.layers.size(); ++o) {
    const strata::layer_info& li = map[r.layers[o].layer];
    values +=
        2.0 * double(r.layer_tokens(o, size_t(n_ctx), po.max_batch)) * li.n_kv_heads * li.head_dim;
  }
  return double(p.kv + p.side) * 8.0 / values;
}

policy_choice choose_policy(const tune_result& t, const strata::layer_map& map, int n_ctx,
                            int max_batch, const choice_target& target) {
  if (t.layers.size() != map.n_kv_layers())
    throw make_error("the tune result has " + std::to_string(t.layers.size()) +
                         " KV layers, the model " + std::to_string(map.n_kv_layers()),
                     "policy choice");
  std::vector<std::string> codecs = t.menu;
  codecs.push_back("f16");
  const strata::policy_report f16 = report_of(map, "f16");
  const size_t mb = size_t(std::max(0, max_batch));
  double values = 0;
  for (size_t o = 0; o < f16.layers.size(); ++o) {
    const strata::layer_info& li = map[f16.layers[o].layer];
    values += 2.0 * double(f16.layer_tokens(o, size_t(n_ctx), mb)) * li.n_kv_heads * li.head_dim;
  }

  policy_choice best;
  bool found = false;
  double cheapest_bits = std::numeric_limits<double>::infinity();
  for (const bool kb : {false, true}) {
    // Side data of k-balance (scales per channel): what the cache adds to its rows.
    const double side =
        kb ? double(strata::plan(report_of(map, "-ctk " + t.menu[0] + " -ctv f16 k-balance"),
                                 size_t(n_ctx), {.max_batch = mb})
                        .side)
           : 0.0;
    std::vector<item> items;
    for (size_t o = 0; o < t.layers.size(); ++o) {
      const strata::layer_info& li = map[f16.layers[o].layer];
      const double tokens = double(f16.layer_tokens(o, size_t(n_ctx), mb));
      for (const bool k : {true, false}) {
        item it;
        it.ordinal = int(o);
        it.k_side = k;
        for (size_t c = 0; c < codecs.size(); ++c) {
          const auto id = strata::parse_codec(codecs[c]);
          if (!id)
            throw make_error("unknown codec '" + codecs[c] + "' in the tune result",
                             "policy choice");
          option op;
          op.codec = int(c);
          op.bytes = double(strata::layout_of(*id, li.head_dim).row_bytes) * li.n_kv_heads * tokens;
          op.kld = t.predicted(int(o), k, codecs[c], kb);
          it.options.push_back(op);
        }
        items.push_back(std::move(it));
      }
    }
    if (!target.kld) {
      const double budget = target.value * values / 8.0 - side;
      if (!fit_bytes(items, budget)) {
        pick(items, 1e30);
        cheapest_bits = std::min(cheapest_bits, (sum(items).bytes + side) * 8.0 / values);
        continue;
      }
    } else {
      fit_kld(items, target.value);
    }
    policy_choice c;
    c.policy = policy_string(items, codecs, kb);
    c.k_balance = kb;
    c.predicted_kld = sum(items).kld;
    c.bits = policy_bits(map, c.policy, n_ctx, max_batch);
    const bool better = !found || (target.kld ? c.bits < best.bits - 1e-9 ||
                                                    (std::abs(c.bits - best.bits) <= 1e-9 &&
                                                     c.predicted_kld < best.predicted_kld)
                                              : c.predicted_kld < best.predicted_kld);
    if (better) best = c;
    found = true;
  }
  if (!found) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.3f", cheapest_bits);
    char want[64];
    std::snprintf(want, sizeof want, "%g", target.value);
    throw make_error(std::string("a budget of ") + want +
                         " bits/value is below the cheapest policy of the menu (" + buf + ")",
                     "policy choice");
  }
  return best;
}

}  // namespace engine
