#include "run/eval.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "error.hpp"
#include "model/thread_pool.hpp"
#include "run/cli.hpp"
#include "run/generate.hpp"
#include "text/chat_template.hpp"

namespace engine {

namespace {

using json = nlohmann::json;

std::string where(const std::string& name, int line) { return name + ":" + std::to_string(line); }

std::string string_field(const json& j, const char* key, const std::string& at) {
  const json& v = j.at(key);
  if (!v.is_string()) throw make_error(std::string("'") + key + "' must be a string", at);
  return v.get<std::string>();
}

int int_field(const json& j, const char* key, int lo, int hi, const std::string& at) {
  const json& v = j.at(key);
  if (!v.is_number_integer() || v.get<int64_t>() < lo || v.get<int64_t>() > hi)
    throw make_error(std::string("'") + key + "' must be an integer in [" + std::to_string(lo) +
                         ", " + std::to_string(hi) + "]",
                     at);
  return int(v.get<int64_t>());
}

eval_item parse_item(const json& j, const std::string& at, int line) {
  if (!j.is_object()) throw make_error("a line must hold one JSON object", at);
  static const std::set<std::string> known = {"id",     "category",  "prompt",
                                              "answer", "regex",     "case_sensitive",
                                              "temp",   "n_predict", "repeats"};
  for (auto it = j.begin(); it != j.end(); ++it)
    if (!known.count(it.key()))
      throw make_error("unknown field '" + it.key() +
                           "' (id, category, prompt, answer, regex, case_sensitive, temp, "
                           "n_predict, repeats)",
                       at);
  eval_item item;
  item.line = line;
  item.id = j.contains("id") ? string_field(j, "id", at)
                             : std::string("line ").append(std::to_string(line));
  if (j.contains("category")) item.category = string_field(j, "category", at);
  if (!j.contains("prompt")) throw make_error("missing field 'prompt'", at);
  item.prompt = string_field(j, "prompt", at);
  if (item.prompt.empty()) throw make_error("empty 'prompt'", at);
  const bool has_answer = j.contains("answer"), has_regex = j.contains("regex");
  if (has_answer == has_regex)
    throw make_error(has_answer ? "both 'answer' and 'regex' given (one of them)"
                                : "missing field 'answer' or 'regex'",
                     at);
  if (has_answer) {
    const json& a = j.at("answer");
    if (a.is_string()) {
      item.answers.push_back(a.get<std::string>());
    } else if (a.is_array() && !a.empty()) {
      for (const json& s : a) {
        if (!s.is_string()) throw make_error("'answer' must be a string or a list of strings", at);
        item.answers.push_back(s.get<std::string>());
      }
    } else {
      throw make_error("'answer' must be a string or a non-empty list of strings", at);
    }
    for (const std::string& s : item.answers)
      if (s.empty()) throw make_error("empty 'answer'", at);
  }
  if (j.contains("case_sensitive")) {
    if (!j.at("case_sensitive").is_boolean())
      throw make_error("'case_sensitive' must be true or false", at);
    item.case_sensitive = j.at("case_sensitive").get<bool>();
    if (item.case_sensitive && has_answer)
      throw make_error("'case_sensitive' applies to 'regex' only", at);
  }
  if (has_regex) {
    item.regex = string_field(j, "regex", at);
    if (item.regex.empty()) throw make_error("empty 'regex'", at);
    auto flags = std::regex::ECMAScript;
    if (!item.case_sensitive) flags |= std::regex::icase;
    try {
      item.re = std::make_shared<const std::regex>(item.regex, flags);
    } catch (const std::regex_error& e) {
      throw make_error("bad regex '" + item.regex + "': " + e.what(), at);
    }
  }
  if (j.contains("n_predict")) item.n_predict = int_field(j, "n_predict", 1, 1 << 20, at);
  if (j.contains("repeats")) item.repeats = int_field(j, "repeats", 1, 1000, at);
  if (j.contains("temp")) {
    const json& t = j.at("temp");
    if (!t.is_number() || t.get<double>() < 0 || t.get<double>() > 100)
      throw make_error("'temp' must be a number in [0, 100]", at);
    item.temp = float(t.get<double>());
  }
  return item;
}

char lower(char c) { return (c >= 'A' && c <= 'Z') ? char(c - 'A' + 'a') : c; }
bool word_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

// `needle` occurs in `hay` (ASCII case folded) with no word character joined to either end.
bool contains_word(std::string_view hay, std::string_view needle) {
  std::string h(hay), n(needle);
  std::transform(h.begin(), h.end(), h.begin(), lower);
  std::transform(n.begin(), n.end(), n.begin(), lower);
  for (size_t pos = h.find(n); pos != std::string::npos; pos = h.find(n, pos + 1)) {
    const size_t end = pos + n.size();
    const bool left_ok = pos == 0 || !word_char(n.front()) || !word_char(h[pos - 1]);
    const bool right_ok = end == h.size() || !word_char(n.back()) || !word_char(h[end]);
    if (left_ok && right_ok) return true;
  }
  return false;
}

std::string_view trim(std::string_view s) {
  const auto space = [](char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
  };
  while (!s.empty() && space(s.front())) s.remove_prefix(1);
  while (!s.empty() && space(s.back())) s.remove_suffix(1);
  return s;
}

bool is_f16(const kv_options& k) {
  if (k.reference) return false;
  const std::string p = k.policy_string();
  return p == "-ctk f16 -ctv f16" || p == "f16" || p == "k=f16;v=f16" || p == "f16/f16";
}

double round_to(double x, double scale) { return std::round(x * scale) / scale; }

}  // namespace

std::vector<eval_item> parse_eval_items(std::string_view text, const std::string& name) {
  std::vector<eval_item> items;
  std::set<std::string> ids;
  int line = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    const std::string_view raw = text.substr(pos, nl - pos);
    pos = nl + 1;
    ++line;
    if (trim(raw).empty()) continue;
    const std::string at = where(name, line);
    json j;
    try {
      j = json::parse(raw);
    } catch (const json::parse_error& e) {
      throw make_error(std::string("bad JSON: ") + e.what(), at);
    }
    eval_item item = parse_item(j, at, line);
    if (!ids.insert(item.id).second) throw make_error("duplicate id '" + item.id + "'", at);
    items.push_back(std::move(item));
  }
  if (items.empty()) throw make_error("no questions", name);
  return items;
}

std::vector<eval_item> load_eval_items(const std::string& path) {
  return parse_eval_items(cli::read_file(path), path);
}

bool eval_correct(const eval_item& item, std::string_view answer) {
  answer = trim(answer);
  if (item.re) return std::regex_search(answer.begin(), answer.end(), *item.re);
  for (const std::string& a : item.answers)
    if (contains_word(answer, a)) return true;
  return false;
}

eval_report run_eval(model& m, const tokenizer& tok, thread_pool& pool,
                     const std::vector<eval_item>& items, const eval_options& opt) {
  eval_report rep;
  rep.n_items = int(items.size());
  std::vector<kv_options> caches = opt.caches;
  std::vector<std::string> names = opt.cache_names;
  int ref = -1;
  for (size_t i = 0; i < caches.size() && ref < 0; ++i)
    if (is_f16(caches[i])) ref = int(i);
  if (ref < 0) {
    kv_options f16;
    f16.max_batch = opt.fwd.n_batch;
    caches.insert(caches.begin(), f16);
    names.insert(names.begin(), "f16");
    ref = 0;
    rep.reference_added = true;
  }
  rep.reference = ref;

  // Each item's prompt, rendered and tokenized once; the context fits the longest answer.
  std::vector<std::vector<int32_t>> prompts;
  int need = 0;
  for (const eval_item& it : items) {
    std::vector<chat_message> msgs;
    if (!opt.system.empty()) msgs.push_back({"system", opt.system});
    msgs.push_back({"user", it.prompt});
    prompts.push_back(tok.encode(apply_chat_template(m.file(), msgs, true), true, true));
    need = std::max(need,
                    int(prompts.back().size()) + (it.n_predict > 0 ? it.n_predict : opt.n_predict));
  }
  const int n_ctx = opt.n_ctx > 0 ? opt.n_ctx : need;
  if (n_ctx < need)
    throw make_error("-c " + std::to_string(n_ctx) +
                         " is too small: a prompt and its answer need " + std::to_string(need) +
                         " tokens",
                     "strata-eval");

  for (size_t c = 0; c < caches.size(); ++c) {
    auto kv = make_kv(m, n_ctx, caches[c]);
    eval_result r;
    r.cache = names[c];
    r.describe = kv->describe();
    r.reference = int(c) == ref;
    r.n_ctx = n_ctx;
    r.kv_bytes = kv->bytes();
    r.kv_f16_bytes = kv->f16_bytes();
    r.bits_per_value = kv->bits_per_value();
    std::map<std::string, std::pair<int, double>> cats;  // name -> items, summed item accuracy
    double sum_acc = 0, sum_sq = 0;
    std::vector<double> item_acc;
    for (size_t i = 0; i < items.size(); ++i) {
      const eval_item& it = items[i];
      const int reps = it.repeats > 0 ? it.repeats : opt.repeats;
      const int n_predict = it.n_predict > 0 ? it.n_predict : opt.n_predict;
      int right = 0;
      for (int rp = 0; rp < reps; ++rp) {
        kv->truncate(0);  // every answer starts from an empty cache: no order effects
        session s(m, tok, *kv, pool, opt.fwd);
        sampler_params sp = opt.sp;
        sp.seed = opt.sp.seed + uint64_t(rp);
        if (it.temp >= 0) sp.temp = it.temp;
        sampler smp(sp);
        generation_stats st;
        s.prefill(prompts[i], st);
        const auto out = s.generate(
            smp, n_predict, [](const std::string&) { return true; }, st);
        eval_answer a;
        a.item = int(i);
        a.repeat = rp;
        a.text = tok.decode(out, false);
        a.correct = eval_correct(it, a.text);
        a.n_gen = st.n_gen;
        right += a.correct;
        r.n_correct += a.correct;
        r.n_prompt += st.n_prompt;
        r.n_gen += st.n_gen;
        r.prompt_s += st.prompt_s;
        r.gen_s += st.gen_s;
        r.answers.push_back(std::move(a));
      }
      const double acc = double(right) / reps;
      item_acc.push_back(acc);
      sum_acc += acc;
      auto& cat = cats[it.category];
      cat.first += 1;
      cat.second += acc;
    }
    const double n = double(items.size());
    r.n_answers = int(r.answers.size());
    r.accuracy = sum_acc / n;
    for (double a : item_acc) sum_sq += (a - r.accuracy) * (a - r.accuracy);
    r.accuracy_se = items.size() > 1 ? std::sqrt(sum_sq / (n * (n - 1))) : 0.0;
    for (const auto& [name, v] : cats) r.categories.push_back({name, v.first, v.second / v.first});
    r.pp_tps = r.prompt_s > 0 ? r.n_prompt / r.prompt_s : 0;
    r.tg_tps = r.gen_s > 0 ? r.n_gen / r.gen_s : 0;
    if (opt.progress)
      std::fprintf(stderr, "eval: %-24s %d/%d correct, accuracy %.3f, %.1f s\n", r.cache.c_str(),
                   r.n_correct, r.n_answers, r.accuracy, r.prompt_s + r.gen_s);
    rep.rows.push_back(std::move(r));
  }

  const eval_result& base = rep.rows[size_t(ref)];
  for (eval_result& r : rep.rows) {
    int same_text = 0, same_correct = 0;
    for (size_t k = 0; k < r.answers.size(); ++k) {
      same_text += r.answers[k].text == base.answers[k].text;
      same_correct += r.answers[k].correct == base.answers[k].correct;
    }
    r.same_text = double(same_text) / double(r.answers.size());
    r.same_correct = double(same_correct) / double(r.answers.size());
  }
  return rep;
}

void print_eval(std::FILE* out, const std::string& format, const model& m, int n_threads,
                const std::vector<eval_item>& items, const eval_options& opt,
                const eval_report& report) {
  const std::string name = m.file().get_string("general.name", m.config().arch_name);
  const std::string ref = report.rows[size_t(report.reference)].cache;
  if (format == "json") {
    nlohmann::ordered_json j;
    j["model"] = name;
    j["arch"] = m.config().arch_name;
    j["threads"] = n_threads;
    j["n_items"] = report.n_items;
    j["temp"] = round_to(opt.sp.temp, 1e6);
    j["top_k"] = opt.sp.top_k;
    j["top_p"] = round_to(opt.sp.top_p, 1e6);
    j["seed"] = opt.sp.seed;
    j["n_predict"] = opt.n_predict;
    j["repeats"] = opt.repeats;
    j["reference"] = ref;
    j["reference_added"] = report.reference_added;
    nlohmann::ordered_json rows = nlohmann::ordered_json::array();
    for (const eval_result& r : report.rows) {
      nlohmann::ordered_json c;
      c["kv"] = r.cache;
      c["kv_describe"] = r.describe;
      c["reference"] = r.reference;
      c["n_answers"] = r.n_answers;
      c["n_correct"] = r.n_correct;
      c["accuracy"] = round_to(r.accuracy, 1e6);
      c["accuracy_se"] = round_to(r.accuracy_se, 1e6);
      c["same_text_as_reference"] = round_to(r.same_text, 1e6);
      c["same_correct_as_reference"] = round_to(r.same_correct, 1e6);
      nlohmann::ordered_json cats = nlohmann::ordered_json::object();
      for (const eval_category& k : r.categories)
        cats[k.name] = {{"n_items", k.n_items}, {"accuracy", round_to(k.accuracy, 1e6)}};
      c["categories"] = cats;
      c["n_prompt_tokens"] = r.n_prompt;
      c["n_gen_tokens"] = r.n_gen;
      c["pp_tokens_per_s"] = round_to(r.pp_tps, 1e3);
      c["tg_tokens_per_s"] = round_to(r.tg_tps, 1e3);
      c["n_ctx"] = r.n_ctx;
      c["kv_bytes"] = r.kv_bytes;
      c["kv_f16_bytes"] = r.kv_f16_bytes;
      c["kv_bits_per_value"] = round_to(r.bits_per_value, 1e4);
      nlohmann::ordered_json ans = nlohmann::ordered_json::array();
      for (const eval_answer& a : r.answers)
        ans.push_back({{"id", items[size_t(a.item)].id},
                       {"repeat", a.repeat},
                       {"correct", a.correct},
                       {"n_gen", a.n_gen},
                       {"answer", a.text}});
      c["answers"] = ans;
      rows.push_back(std::move(c));
    }
    j["caches"] = rows;
    const std::string text =
        j.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
    std::fprintf(out, "%s\n", text.c_str());
    return;
  }
  std::fprintf(out,
               "%s: %d questions x %d repeat(s), temp %g, top-k %d, top-p %g, seed %llu, "
               "n_predict %d, %d threads\n\n",
               name.c_str(), report.n_items, opt.repeats, double(opt.sp.temp), opt.sp.top_k,
               double(opt.sp.top_p), static_cast<unsigned long long>(opt.sp.seed), opt.n_predict,
               n_threads);
  std::fprintf(out,
               "| KV cache | bits/value | KV bytes (%d tokens) | accuracy | same answer as %s | "
               "same correctness as %s | pp t/s | tg t/s |\n",
               report.rows.front().n_ctx, ref.c_str(), ref.c_str());
  std::fprintf(out, "|---|---:|---:|---:|---:|---:|---:|---:|\n");
  for (const eval_result& r : report.rows)
    std::fprintf(out, "| %s | %.2f | %s | %.3f ± %.3f | %.1f %% | %.1f %% | %.1f | %.1f |\n",
                 r.cache.c_str(), r.bits_per_value, cli::human_bytes(double(r.kv_bytes)).c_str(),
                 r.accuracy, r.accuracy_se, 100 * r.same_text, 100 * r.same_correct, r.pp_tps,
                 r.tg_tps);
  const auto& cats = report.rows.front().categories;
  if (cats.size() < 2) return;
  std::string head = "\n| KV cache |", rule = "|---|";
  for (const eval_category& k : cats) {
    head.append(" ").append(k.name.empty() ? "(none)" : k.name);
    head.append(" (").append(std::to_string(k.n_items)).append(") |");
    rule += "---:|";
  }
  std::fprintf(out, "%s\n%s\n", head.c_str(), rule.c_str());
  for (const eval_result& r : report.rows) {
    std::fprintf(out, "| %s |", r.cache.c_str());
    for (const eval_category& k : r.categories) std::fprintf(out, " %.3f |", k.accuracy);
    std::fprintf(out, "\n");
  }
}

}  // namespace engine
