// engine::tune -- per-layer sensitivity of a model's KV cache (what strata-tune measures).
//
// One pass over a calibration text with kv_probe: every KV layer's attention output on the f16
// cache is compared with what it would be with one cheaper codec on K alone or on V alone, for
// every codec of the menu (relative squared error, summed over the text). A second pass runs
// one whole policy (all layers on cheaper codecs) and measures its true KL divergence against
// the f16 pass's logits; the ratio of that KLD to the sum of the policy's relative errors is the
// gain that turns each layer's error into a predicted KLD (the errors of different layers are
// taken to add up). Optionally, true single-layer KLD runs on a subset of (layer, side) pairs
// check the prediction's ranking (Spearman's rank correlation).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <strata/codec/codec_id.hpp>

#include "model/model.hpp"

namespace engine {

class thread_pool;

struct tune_options {
  int n_ctx = 512;
  int n_chunks = 6;                                      // windows of n_ctx tokens
  forward_options fwd;                                   // n_batch also sizes sliding-window rings
  std::string calib_policy = "-ctk turbo4 -ctv turbo3";  // the policy whose KLD sets the gain
  std::vector<std::string> menu;                         // empty: tune_menu(model)
  int validate = 0;                                      // true single-layer KLD runs (pairs)
  std::string validate_codec = "turbo3";
  bool progress = false;  // a line per window on stderr
};

// One KV layer's measurements. Errors are relative: sum of squared attention-output changes
// over sum of squared f16 outputs, per menu codec (same order as tune_result::menu).
struct tune_layer {
  int ordinal = 0, layer = 0;
  bool sliding = false;
  double k_rms = 0, v_rms = 0;          // RMS norm of one head's K (V) vector
  double k_outlier = 0, v_outlier = 0;  // largest channel RMS / median channel RMS
  int k_outliers = 0, v_outliers = 0;   // channels whose RMS exceeds 4x the median
  std::vector<double> k_err, v_err;     // codec on K (V) alone
  std::vector<double> kb_err;           // codec on K alone, with k-balance
};

// A true single-layer KLD run against the gain x error prediction.
struct tune_check {
  int ordinal = 0;
  bool k_side = true;
  std::string codec;
  double predicted = 0, kld = 0;
};

struct tune_result {
  std::string model;  // general.name or the file name
  std::string key;    // the cache key it was stored under (auto_policy.hpp), or ""
  std::vector<std::string> menu;
  int n_ctx = 0, n_chunks = 0;
  int64_t n_scored = 0;
  std::vector<tune_layer> layers;  // by KV ordinal
  std::string calib_policy;
  double calib_kld = 0, calib_error = 0, gain = 0;
  std::vector<tune_check> checks;
  double spearman = 0;  // over checks (0 with fewer than 3)
  double seconds_probe = 0, seconds_calib = 0, seconds_checks = 0;

  // The menu index of a codec name, -1 when it is not in the menu.
  int codec_index(const std::string& codec) const;
  // Predicted KLD of one layer on `codec` for K (or V); 0 for f16/f32/bf16.
  double predicted(int ordinal, bool k_side, const std::string& codec, bool k_balance) const;
};

// The codecs a tuner tries: strata's standard block codecs (every name of the registry that is
// not an element codec) whose blocks fit the model's head dimensions, less two kinds measured
// not to help (docs/results.md, "Automatic policy"): the fixed-group turbos (turbo4g32, ...),
// whose errors are within a few percent of the default group's at more bits, and q8_0 / q4_0
// where their rotated twins q8_0r / q4_0r fit (same bytes, lower error on nearly every layer and
// side of SmolLM2 and Gemma 3; never picked by the chooser when offered both). On SmolLM2 (head dim
// 64): turbo2, turbo3, turbo4, vq2, q8_0r, q4_0r, turbo5, turbo6.
std::vector<std::string> tune_menu(const model& m);

// The (unrotated, rotated) codec pairs of the rule above.
inline constexpr std::pair<strata::codec_id, strata::codec_id> rotated_twins[] = {
    {strata::codec_id::q8_0, strata::codec_id::q8_0r},
    {strata::codec_id::q4_0, strata::codec_id::q4_0r}};

// True for the codecs tune_menu never offers (the fixed-group turbos).
constexpr bool tune_menu_skips(strata::codec_id id) {
  return std::uint8_t(id) >= std::uint8_t(strata::codec_id::turbo2g32) &&
         std::uint8_t(id) <= std::uint8_t(strata::codec_id::turbo5g256);
}

// tokens: the calibration text, tokenized (BOS first when the model adds one); bos >= 0 replaces
// each window's first token, as the perplexity tool does.
tune_result run_tune(model& m, const std::vector<int32_t>& tokens, int32_t bos, thread_pool& pool,
                     const tune_options& opt);

// Spearman's rank correlation (ties share their mean rank); 0 for fewer than 3 points.
double spearman(const std::vector<double>& a, const std::vector<double>& b);

// JSON (one object; to_json(from_json(s)) == s) and a text table.
std::string to_json(const tune_result& r);
tune_result tune_from_json(const std::string& json);  // throws engine::error on bad input
std::string tune_table(const tune_result& r);

// The calibration text shipped with the engine (data/calibration.txt, compiled in).
const std::string& calibration_text();

}  // namespace engine
