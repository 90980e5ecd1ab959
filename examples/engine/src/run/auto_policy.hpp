// engine::auto_policy -- `--kv-policy auto` (a default budget), `auto:bits=X` (a budget in
// bits/value) and `auto:kld=Y` (a mean-KLD target): runs strata-tune's measurement on the shipped
// calibration text, or loads it from the cache directory (<cache>/tune/<key>.json, the key
// covering the model file's size, mtime and metadata bytes, strata's version, the codec menu,
// the calibration text and the tuner's settings), then chooses a policy (run/policy_choice.hpp).
#pragma once

#include <cstdio>
#include <optional>
#include <string>

#include "run/policy_choice.hpp"
#include "run/tune.hpp"

namespace engine {

class model;
class thread_pool;
class tokenizer;

// The budget of a plain `auto`, in bits/value.
inline constexpr double auto_default_bits = 5.0;

// nullopt when `policy` is not an auto policy (does not start with "auto"); throws engine::error
// naming the string for a malformed one ("auto:bits=", "auto:bits=abc", "auto:foo=1", ...).
std::optional<choice_target> parse_auto_policy(const std::string& policy);

// The cache key of a model file with the tuner's settings (hex FNV-1a 64 of everything listed
// above); reads the file's metadata bytes (everything before the tensor data).
std::string tune_cache_key(const std::string& model_path, const model& m, const tune_options& o);

// <cache dir>/tune ($STRATA_CACHE_DIR or ~/.cache/strata).
std::string tune_cache_dir();

// The tuner's result for a model: loaded from the cache when its key matches, else measured
// (and stored). `log` receives one line saying which (nullptr: quiet).
tune_result tune_cached(model& m, const tokenizer& tok, const std::string& model_path,
                        thread_pool& pool, const tune_options& o, std::FILE* log);

// When `policy` is an auto policy: the chosen policy for a cache of n_ctx tokens (bits/value
// at that context); otherwise nullopt.
std::optional<policy_choice> resolve_auto_policy(model& m, const tokenizer* tok,
                                                 const std::string& model_path,
                                                 const std::string& policy, int n_ctx,
                                                 int max_batch, thread_pool& pool, std::FILE* log);

}  // namespace engine
