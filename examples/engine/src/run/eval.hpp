// engine::eval -- known-answer evaluation: a JSONL file of prompts with expected answers (text or
// a regex), each answered through the model's chat template under one or more KV caches, with
// accuracy, agreement with the f16 cache's answers, speed and KV size per cache.
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include "kv/kv_select.hpp"
#include "model/model.hpp"
#include "run/sampler.hpp"
#include "text/tokenizer.hpp"

namespace engine {

class thread_pool;

// One line of the question file. Exactly one of `answers` (non-empty) and `regex` is set.
struct eval_item {
  std::string id;        // "line N" when the file gives none
  std::string category;  // "" when the file gives none
  std::string prompt;
  // Correct when one of these occurs in the answer as a whole word or phrase, ignoring case.
  std::vector<std::string> answers;
  // Correct when this ECMAScript regex is found in the answer (trimmed), ignoring case unless
  // case_sensitive.
  std::string regex;
  bool case_sensitive = false;
  std::shared_ptr<const std::regex> re;  // compiled regex (null with answers)
  // Per-item overrides (-1: the run's setting).
  int n_predict = -1;
  float temp = -1;
  int repeats = -1;
  int line = 0;  // 1-based line in the file
};

// Parses JSONL text (blank lines are skipped). Errors name the source and line:
// "error: <what> (<name>:<line>)". Unknown fields are refused, so a typo is not ignored.
std::vector<eval_item> parse_eval_items(std::string_view text, const std::string& name);
// Reads and parses a file (error naming it when it cannot be read or holds no item).
std::vector<eval_item> load_eval_items(const std::string& path);

// Whether `answer` is correct for `item` (see eval_item). The answer is trimmed of white space.
bool eval_correct(const eval_item& item, std::string_view answer);

struct eval_options {
  sampler_params sp;  // temp, top-k, top-p; sp.seed + r is repeat r's seed for every item
  int n_predict = 150;
  int repeats = 1;
  int n_ctx = 0;       // 0: the longest prompt plus its n_predict
  std::string system;  // system message ("" : the template's own default)
  std::vector<kv_options> caches;
  std::vector<std::string> cache_names;
  forward_options fwd;
  bool progress = false;  // one line per cache on stderr
};

struct eval_answer {
  int item = 0;  // index in the item list
  int repeat = 0;
  std::string text;
  bool correct = false;
  int n_gen = 0;
};

struct eval_category {
  std::string name;
  int n_items = 0;
  double accuracy = 0;  // mean over its items of the fraction of repeats answered correctly
};

struct eval_result {
  std::string cache;     // name as given
  std::string describe;  // the cache's own description
  bool reference = false;
  std::vector<eval_answer> answers;  // item-major, then repeat
  int n_answers = 0, n_correct = 0;
  // Each item weighs the same: accuracy is the mean over items of the fraction of its repeats
  // answered correctly; accuracy_se is the standard error of that mean over items
  // (sqrt(sum (a_i - mean)^2 / (n (n - 1))); with one repeat, sqrt(p (1 - p) / (n - 1))).
  double accuracy = 0, accuracy_se = 0;
  // Against the reference (f16) cache, answer by answer (same item, repeat and seed): the same
  // answer text, and the same correctness.
  double same_text = 0, same_correct = 0;
  std::vector<eval_category> categories;
  int n_prompt = 0, n_gen = 0;
  double prompt_s = 0, gen_s = 0;
  double pp_tps = 0, tg_tps = 0;
  int n_ctx = 0;
  size_t kv_bytes = 0, kv_f16_bytes = 0;
  double bits_per_value = 0;
};

struct eval_report {
  std::vector<eval_result> rows;  // one per cache; the reference one first when it was added
  int reference = 0;              // index of the f16 cache in rows
  bool reference_added = false;   // true when no f16 cache was asked and one was run
  int n_items = 0;
};

// Runs every item (and repeat) under every cache, each answer from an empty cache, and adds an
// f16 cache first when none of opt.caches is f16/f16 (the agreement's reference).
eval_report run_eval(model& m, const tokenizer& tok, thread_pool& pool,
                     const std::vector<eval_item>& items, const eval_options& opt);

// "table" (markdown: one row per cache, then accuracy per category) or "json".
void print_eval(std::FILE* out, const std::string& format, const model& m, int n_threads,
                const std::vector<eval_item>& items, const eval_options& opt,
                const eval_report& report);

}  // namespace engine
