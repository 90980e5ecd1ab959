#include "run/tune.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <numeric>

#include <nlohmann/json.hpp>
#include <strata/codec/standard_codecs.hpp>
#include <strata/policy/parse.hpp>
#include <strata/policy/report.hpp>

#include "error.hpp"
#include "kv/kv_probe.hpp"
#include "kv/kv_strata.hpp"
#include "model/thread_pool.hpp"
#include "run/cli.hpp"
#include "run/perplexity.hpp"

namespace engine {

namespace {

bool is_uncompressed(const std::string& codec) {
  const auto id = strata::parse_codec(codec);
  return id && strata::is_element_codec(*id);
}

strata::policy_report report_of(const model& m, const std::string& policy) {
  try {
    return strata::report(strata::parse_policy(policy), m.layers());
  } catch (const std::exception& e) {
    const std::string w = e.what();
    throw error(w.rfind("error: ", 0) == 0 ? w : "error: " + w + " (tune)");
  }
}

// Channel statistics of one side: largest / median channel RMS, channels above 4x the median.
void channel_stats(const std::vector<double>& ch_sq, uint64_t tokens, double& ratio, int& count) {
  std::vector<double> rms(ch_sq.size());
  for (size_t i = 0; i < ch_sq.size(); ++i)
    rms[i] = std::sqrt(ch_sq[i] / double(std::max<uint64_t>(tokens, 1)));
  std::vector<double> sorted = rms;
  std::sort(sorted.begin(), sorted.end());
  const double median = sorted.empty() ? 0.0 : sorted[sorted.size() / 2];
  ratio = median > 0 ? sorted.back() / median : 0.0;
  count = int(std::count_if(rms.begin(), rms.end(), [&](double r) { return r > 4.0 * median; }));
}

// KL(base || run) of one row of log-probs.
double kld_row(const float* base, const float* run, int n) {
  double k = 0;
  for (int i = 0; i < n; ++i) k += std::exp(double(base[i])) * (double(base[i]) - double(run[i]));
  return std::max(k, 0.0);
}

}  // namespace

int tune_result::codec_index(const std::string& codec) const {
  const auto it = std::find(menu.begin(), menu.end(), codec);
  return it == menu.end() ? -1 : int(it - menu.begin());
}

double tune_result::predicted(int ordinal, bool k_side, const std::string& codec,
                              bool k_balance) const {
  if (is_uncompressed(codec)) return 0.0;
  const int c = codec_index(codec);
  if (c < 0)
    throw make_error("codec '" + codec + "' is not in the tuned menu", "tune_result::predicted");
  const tune_layer& L = layers.at(size_t(ordinal));
  const std::vector<double>& e = k_side ? (k_balance ? L.kb_err : L.k_err) : L.v_err;
  return gain * e.at(size_t(c));
}

std::vector<std::string> tune_menu(const model& m) {
  std::vector<std::string> menu;
  for (const strata::codec_id id : strata::all_codec_ids) {
    if (strata::is_element_codec(id) || tune_menu_skips(id)) continue;
    const std::string name(strata::codec_name(id));
    try {
      (void)strata::report(strata::parse_policy("-ctk " + name + " -ctv " + name), m.layers());
      menu.push_back(name);
    } catch (const std::exception&) {
      // The codec's blocks do not fit this model's head dimension.
    }
  }
  // An unrotated codec whose rotated twin fits is left out (the twin has the same bytes).
  for (const auto& [plain, twin] : rotated_twins) {
    const std::string t(strata::codec_name(twin));
    if (std::find(menu.begin(), menu.end(), t) != menu.end())
      menu.erase(std::remove(menu.begin(), menu.end(), std::string(strata::codec_name(plain))),
                 menu.end());
  }
  return menu;
}

double spearman(const std::vector<double>& a, const std::vector<double>& b) {
  const size_t n = a.size();
  if (n < 3 || b.size() != n) return 0.0;
  auto ranks = [n](const std::vector<double>& v) {
    std::vector<size_t> idx(n);
    std::iota(idx.begin(), idx.end(), size_t(0));
    std::sort(idx.begin(), idx.end(), [&](size_t i, size_t j) { return v[i] < v[j]; });
    std::vector<double> r(n);
    for (size_t i = 0; i < n;) {
      size_t j = i;
      while (j + 1 < n && v[idx[j + 1]] == v[idx[i]]) ++j;
      for (size_t t = i; t <= j; ++t) r[idx[t]] = 0.5 * double(i + j);
      i = j + 1;
    }
    return r;
  };
  const std::vector<double> ra = ranks(a), rb = ranks(b);
  const double ma = std::accumulate(ra.begin(), ra.end(), 0.0) / double(n);
  const double mb = std::accumulate(rb.begin(), rb.end(), 0.0) / double(n);
  double sab = 0, saa = 0, sbb = 0;
  for (size_t i = 0; i < n; ++i) {
    sab += (ra[i] - ma) * (rb[i] - mb);
    saa += (ra[i] - ma) * (ra[i] - ma);
    sbb += (rb[i] - mb) * (rb[i] - mb);
  }
  return saa > 0 && sbb > 0 ? sab / std::sqrt(saa * sbb) : 0.0;
}

tune_result run_tune(model& m, const std::vector<int32_t>& tokens, int32_t bos, thread_pool& pool,
                     const tune_options& opt) {
  const model_config& c = m.config();
  const int n_ctx = opt.n_ctx, n_vocab = c.n_vocab;
  if (n_ctx < 16)
    throw make_error("context " + std::to_string(n_ctx) + " is too small (>= 16)", "tune");
  const int max_chunks = int(tokens.size() / size_t(n_ctx));
  if (max_chunks < 1)
    throw make_error("the calibration text has " + std::to_string(tokens.size()) +
                         " tokens, fewer than one window of " + std::to_string(n_ctx),
                     "tune");
  tune_result r;
  r.model = m.file().get_string("general.name", "model");
  r.menu = opt.menu.empty() ? tune_menu(m) : opt.menu;
  if (r.menu.empty())
    throw make_error("no compressed codec fits this model's head dimension", "tune");
  for (const auto& codec : r.menu) {
    const auto id = strata::parse_codec(codec);
    if (!id || strata::is_element_codec(*id))
      throw make_error("'" + codec + "' is not a compressed codec (menu)", "tune");
  }
  r.n_ctx = n_ctx;
  r.n_chunks = std::min(opt.n_chunks, max_chunks);
  r.calib_policy = opt.calib_policy;
  const strata::layer_map map = m.layers();
  const size_t n_kv = map.n_kv_layers();

  // The probe: per menu codec, K alone, V alone and K alone with k-balance.
  std::vector<probe_variant> variants;
  for (const auto& codec : r.menu) {
    variants.push_back({codec, true, false});
    variants.push_back({codec, false, false});
    variants.push_back({codec, true, true});
  }
  const int max_batch = opt.fwd.n_batch;
  kv_probe probe(m, n_ctx, max_batch, variants);

  // The policy runs that are compared with the probe's logits: the calibration policy, then the
  // single-layer checks.
  const strata::policy_report calib = report_of(m, opt.calib_policy);
  std::vector<std::string> policies{opt.calib_policy};
  const int n_checks = std::max(0, opt.validate);
  const int n_check_layers = (n_checks + 1) / 2;
  for (int i = 0; i < n_checks; ++i) {
    tune_check k;
    const int slot = i / 2;
    k.ordinal = n_check_layers > 1
                    ? int(std::lround(double(slot) * double(n_kv - 1) / double(n_check_layers - 1)))
                    : 0;
    k.k_side = i % 2 == 0;
    k.codec = opt.validate_codec;
    r.checks.push_back(k);
    policies.push_back(std::string("-ctk f16 -ctv f16 ") + (k.k_side ? "k:" : "v:") +
                       std::to_string(k.ordinal) + "=" + k.codec);
  }
  std::vector<std::unique_ptr<kv_store>> caches;
  for (const auto& p : policies)
    caches.push_back(std::make_unique<kv_strata>(m, n_ctx, p, max_batch));

  const int first = n_ctx / 2;
  const int n_logits = n_ctx - first;
  const int n_scored = n_ctx - 1 - first;
  std::vector<int32_t> window(static_cast<size_t>(n_ctx));
  std::vector<float> ref(size_t(n_logits) * size_t(n_vocab));
  std::vector<float> logits(size_t(n_logits) * size_t(n_vocab));
  std::vector<float> lp(static_cast<size_t>(n_vocab));
  std::vector<double> kld(policies.size(), 0.0);
  for (int w = 0; w < r.n_chunks; ++w) {
    std::copy(tokens.begin() + long(size_t(w) * n_ctx),
              tokens.begin() + long(size_t(w + 1) * n_ctx), window.begin());
    if (bos >= 0) window[0] = bos;
    double t = cli::now_s();
    probe.truncate(0);
    m.forward(window, 0, probe, pool, ref.data(), n_logits, opt.fwd);
    for (int j = 0; j < n_scored; ++j) {
      float* row = ref.data() + size_t(j) * n_vocab;
      log_softmax(row, n_vocab, row);
    }
    r.seconds_probe += cli::now_s() - t;
    for (size_t p = 0; p < policies.size(); ++p) {
      t = cli::now_s();
      caches[p]->truncate(0);
      m.forward(window, 0, *caches[p], pool, logits.data(), n_logits, opt.fwd);
      for (int j = 0; j < n_scored; ++j) {
        log_softmax(logits.data() + size_t(j) * n_vocab, n_vocab, lp.data());
        kld[p] += kld_row(ref.data() + size_t(j) * n_vocab, lp.data(), n_vocab);
      }
      (p == 0 ? r.seconds_calib : r.seconds_checks) += cli::now_s() - t;
    }
    if (opt.progress)
      std::fprintf(stderr, "tune: window %d/%d (probe %.1f s, calibration %.1f s)\n", w + 1,
                   r.n_chunks, r.seconds_probe, r.seconds_calib);
  }
  r.n_scored = int64_t(r.n_chunks) * n_scored;
  for (auto& k : kld) k /= double(r.n_scored);

  // Per KV layer: relative errors and channel statistics.
  for (size_t o = 0; o < n_kv; ++o) {
    const int il = map.kv_layer(o);
    const probe_layer_sums& s = probe.sums(il);
    tune_layer L;
    L.ordinal = int(o);
    L.layer = il;
    L.sliding = map[size_t(il)].kind == strata::attention_kind::sliding;
    const double rows = double(std::max<uint64_t>(s.rows, 1));
    L.k_rms = std::sqrt(s.k_sq / rows);
    L.v_rms = std::sqrt(s.v_sq / rows);
    const uint64_t tokens_seen = s.rows / uint64_t(std::max(1, c.n_head_kv));
    channel_stats(s.k_ch_sq, tokens_seen, L.k_outlier, L.k_outliers);
    channel_stats(s.v_ch_sq, tokens_seen, L.v_outlier, L.v_outliers);
    const double denom = s.out_sq > 0 ? s.out_sq : 1.0;
    for (size_t v = 0; v < variants.size(); ++v) {
      const double e = s.err_sq[v] / denom;
      if (!variants[v].k_side)
        L.v_err.push_back(e);
      else if (variants[v].k_balance)
        L.kb_err.push_back(e);
      else
        L.k_err.push_back(e);
    }
    r.layers.push_back(std::move(L));
  }

  // The gain: the calibration policy's KLD over the sum of its layers' relative errors.
  r.gain = 1.0;
  double sum = 0;
  for (size_t o = 0; o < n_kv; ++o) {
    const std::string kc(strata::codec_name(calib.layers[o].k));
    const std::string vc(strata::codec_name(calib.layers[o].v));
    sum += r.predicted(int(o), true, kc, calib.k_balance) + r.predicted(int(o), false, vc, false);
  }
  r.calib_error = sum;
  r.calib_kld = kld[0];
  r.gain = sum > 0 ? kld[0] / sum : 0.0;

  std::vector<double> pred, truth;
  for (size_t i = 0; i < r.checks.size(); ++i) {
    tune_check& k = r.checks[i];
    k.kld = kld[i + 1];
    k.predicted = r.predicted(k.ordinal, k.k_side, k.codec, false);
    pred.push_back(k.predicted);
    truth.push_back(k.kld);
  }
  r.spearman = spearman(pred, truth);
  return r;
}

std::string to_json(const tune_result& r) {
  using nlohmann::ordered_json;
  ordered_json j;
  j["model"] = r.model;
  j["key"] = r.key;
  j["menu"] = r.menu;
  j["n_ctx"] = r.n_ctx;
  j["n_chunks"] = r.n_chunks;
  j["n_scored"] = r.n_scored;
  j["calibration_policy"] = r.calib_policy;
  j["calibration_kld"] = r.calib_kld;
  j["calibration_error"] = r.calib_error;
  j["gain"] = r.gain;
  ordered_json layers = ordered_json::array();
  for (const auto& L : r.layers) {
    ordered_json l;
    l["ordinal"] = L.ordinal;
    l["layer"] = L.layer;
    l["sliding"] = L.sliding;
    l["k_rms"] = L.k_rms;
    l["v_rms"] = L.v_rms;
    l["k_outlier_ratio"] = L.k_outlier;
    l["v_outlier_ratio"] = L.v_outlier;
    l["k_outlier_channels"] = L.k_outliers;
    l["v_outlier_channels"] = L.v_outliers;
    l["k_error"] = L.k_err;
    l["v_error"] = L.v_err;
    l["k_balance_error"] = L.kb_err;
    layers.push_back(std::move(l));
  }
  j["layers"] = std::move(layers);
  ordered_json checks = ordered_json::array();
  for (const auto& k : r.checks)
    checks.push_back({{"ordinal", k.ordinal},
                      {"side", k.k_side ? "k" : "v"},
                      {"codec", k.codec},
                      {"predicted_kld", k.predicted},
                      {"kld", k.kld}});
  j["checks"] = std::move(checks);
  j["spearman"] = r.spearman;
  j["seconds"] = {
      {"probe", r.seconds_probe}, {"calibration", r.seconds_calib}, {"checks", r.seconds_checks}};
  return j.dump(1);
}

tune_result tune_from_json(const std::string& text) {
  try {
    const auto j = nlohmann::json::parse(text);
    tune_result r;
    r.model = j.at("model").get<std::string>();
    r.key = j.at("key").get<std::string>();
    r.menu = j.at("menu").get<std::vector<std::string>>();
    r.n_ctx = j.at("n_ctx").get<int>();
    r.n_chunks = j.at("n_chunks").get<int>();
    r.n_scored = j.at("n_scored").get<int64_t>();
    r.calib_policy = j.at("calibration_policy").get<std::string>();
    r.calib_kld = j.at("calibration_kld").get<double>();
    r.calib_error = j.at("calibration_error").get<double>();
    r.gain = j.at("gain").get<double>();
    for (const auto& l : j.at("layers")) {
      tune_layer L;
      L.ordinal = l.at("ordinal").get<int>();
      L.layer = l.at("layer").get<int>();
      L.sliding = l.at("sliding").get<bool>();
      L.k_rms = l.at("k_rms").get<double>();
      L.v_rms = l.at("v_rms").get<double>();
      L.k_outlier = l.at("k_outlier_ratio").get<double>();
      L.v_outlier = l.at("v_outlier_ratio").get<double>();
      L.k_outliers = l.at("k_outlier_channels").get<int>();
      L.v_outliers = l.at("v_outlier_channels").get<int>();
      L.k_err = l.at("k_error").get<std::vector<double>>();
      L.v_err = l.at("v_error").get<std::vector<double>>();
      L.kb_err = l.at("k_balance_error").get<std::vector<double>>();
      if (L.k_err.size() != r.menu.size() || L.v_err.size() != r.menu.size() ||
          L.kb_err.size() != r.menu.size())
        throw make_error("a layer's errors do not match the menu", "tune json");
      r.layers.push_back(std::move(L));
    }
    for (const auto& k : j.at("checks")) {
      tune_check c;
      c.ordinal = k.at("ordinal").get<int>();
      c.k_side = k.at("side").get<std::string>() == "k";
      c.codec = k.at("codec").get<std::string>();
      c.predicted = k.at("predicted_kld").get<double>();
      c.kld = k.at("kld").get<double>();
      r.checks.push_back(std::move(c));
    }
    r.spearman = j.at("spearman").get<double>();
    r.seconds_probe = j.at("seconds").at("probe").get<double>();
    r.seconds_calib = j.at("seconds").at("calibration").get<double>();
    r.seconds_checks = j.at("seconds").at("checks").get<double>();
    return r;
  } catch (const error&) {
    throw;
  } catch (const std::exception& e) {
    throw make_error(std::string("bad tune result: ") + e.what(), "tune json");
  }
}

std::string tune_table(const tune_result& r) {
  std::string s;
  char buf[256];
  std::snprintf(buf, sizeof buf,
                "Predicted KLD when one layer's K (or V) alone is on a codec (x 1e-3; gain %.4g "
                "from %s: KLD %.5f)\n\n",
                r.gain, r.calib_policy.c_str(), r.calib_kld);
  s += buf;
  s += "| KV | layer | K rms | K out. | V rms | V out. |";
  for (const auto& c : r.menu) s.append(" K ").append(c).append(" |");
  for (const auto& c : r.menu) s.append(" K ").append(c).append(" kb |");
  for (const auto& c : r.menu) s.append(" V ").append(c).append(" |");
  s += "\n|---|---|---:|---:|---:|---:|";
  for (size_t i = 0; i < 3 * r.menu.size(); ++i) s += "---:|";
  s += "\n";
  for (const auto& L : r.layers) {
    std::snprintf(buf, sizeof buf, "| %d | %d%s | %.2f | %.1f (%d) | %.2f | %.1f (%d) |", L.ordinal,
                  L.layer, L.sliding ? " s" : "", L.k_rms, L.k_outlier, L.k_outliers, L.v_rms,
                  L.v_outlier, L.v_outliers);
    s += buf;
    for (const auto* e : {&L.k_err, &L.kb_err, &L.v_err})
      for (const double x : *e) {
        std::snprintf(buf, sizeof buf, " %.3f |", 1e3 * r.gain * x);
        s += buf;
      }
    s += "\n";
  }
  if (!r.checks.empty()) {
    s += "\nTrue single-layer KLD against the prediction:\n\n| KV | side | codec | predicted | "
         "measured |\n|---|---|---|---:|---:|\n";
    for (const auto& k : r.checks) {
      std::snprintf(buf, sizeof buf, "| %d | %s | %s | %.5f | %.5f |\n", k.ordinal,
                    k.k_side ? "K" : "V", k.codec.c_str(), k.predicted, k.kld);
      s += buf;
    }
    std::snprintf(buf, sizeof buf, "\nSpearman rank correlation: %.3f (%zu pairs)\n", r.spearman,
                  r.checks.size());
    s += buf;
  }
  return s;
}

}  // namespace engine
