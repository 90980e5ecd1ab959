#include "run/bench.hpp"

#include <algorithm>
#include <cmath>
#include <memory>
#include <random>

#include <nlohmann/json.hpp>

#include "error.hpp"
#include "kv/kv_recorder.hpp"
#include "model/thread_pool.hpp"
#include "run/bandwidth.hpp"
#include "run/cli.hpp"
#include "run/memory_plan.hpp"

namespace engine {

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

std::vector<int32_t> random_tokens(int n, int n_vocab, std::mt19937_64& rng) {
  std::uniform_int_distribution<int32_t> d(0, n_vocab - 1);
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (auto& x : t) x = d(rng);
  return t;
}

// One CSV field per RFC 4180: quoted, with its quotes doubled (commas, quotes and line breaks
// of a model name or policy string stay inside the field).
std::string csv_field(const std::string& s) {
  std::string o = "\"";
  for (char c : s) {
    if (c == '"') o.push_back('"');
    o.push_back(c);
  }
  return o + "\"";
}

// A Markdown table cell: '|' and line breaks would end the cell or the row.
std::string md_cell(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '|')
      o += "\\|";
    else if (c == '\n' || c == '\r')
      o.push_back(' ');
    else
      o.push_back(c);
  }
  return o;
}

double round3(double v) { return std::round(v * 1000.0) / 1000.0; }

}  // namespace

std::vector<bench_row> run_bench(model& m, thread_pool& pool, const bench_options& opt) {
  std::vector<bench_row> rows;
  const int n_vocab = m.config().n_vocab;
  std::mt19937_64 rng(opt.seed);
  std::vector<float> logits(static_cast<size_t>(n_vocab));
  // The same depth tokens and prompts for every cache; depth d uses the first d fill tokens.
  const int max_depth =
      opt.depths.empty() ? 0 : *std::max_element(opt.depths.begin(), opt.depths.end());
  const std::vector<int32_t> fill_all = random_tokens(max_depth, n_vocab, rng);
  std::vector<std::vector<int32_t>> prompts;
  for (size_t di = 0; di < opt.depths.size(); ++di)
    prompts.push_back(random_tokens(opt.n_prompt, n_vocab, rng));
  const int batch = std::max(1, opt.fwd.n_batch);
  // The limit of the tg rows: weights once per step plus the KV the step reads.
  const double bw = opt.n_gen > 0 ? read_bandwidth(pool) : 0;
  const uint64_t step_weights = m.step_weight_bytes();
  auto set_limit = [&](bench_row& r, size_t ci, int mean_tokens, int sequences) {
    kv_options o = opt.caches[ci];
    o.max_batch = 1;  // the bytes a step reads, not the batch scratch
    r.read_bw = bw;
    r.step_kv_bytes = uint64_t(sequences) * kv_bytes(m, std::max(1, mean_tokens), o);
    r.limit_tps = bandwidth_limit_tps(bw, step_weights, r.step_kv_bytes, sequences);
  };
  std::unique_ptr<kv_recorder> shared;
  if (opt.shared_fill && max_depth > 0) {
    kv_options f16;
    f16.max_batch = batch;
    if (opt.progress) std::fprintf(stderr, "filling %d tokens once (f16 cache)...\r", max_depth);
    shared = std::make_unique<kv_recorder>(m.config(), make_kv(m, max_depth, f16));
    m.forward(fill_all, 0, *shared, pool, nullptr, 0, opt.fwd);
  }
  for (size_t ci = 0; ci < opt.caches.size(); ++ci) {
    for (size_t di = 0; di < opt.depths.size(); ++di) {
      const int depth = opt.depths[di];
      const int n_ctx = depth + std::max(opt.n_prompt, opt.n_gen);
      auto kv = make_kv(m, n_ctx, opt.caches[ci]);
      const std::span<const int32_t> fill(fill_all.data(), size_t(depth));
      auto refill = [&] {
        if (depth == 0) return;
        if (shared)
          shared->copy_into(*kv, depth, batch);
        else
          m.forward(fill, 0, *kv, pool, nullptr, 0, opt.fwd);
      };
      if (depth > 0) {
        if (opt.progress)
          std::fprintf(stderr, "%s %d tokens (%s)...\r", shared ? "copying" : "filling", depth,
                       opt.cache_names[ci].c_str());
        refill();
      }
      auto row_for = [&](const std::string& test, int n) {
        bench_row r;
        r.cache = opt.cache_names[ci];
        r.depth = depth;
        r.test = test;
        r.n_tokens = n;
        r.kv_bytes = kv->bytes();
        r.kv_f16_bytes = kv->f16_bytes();
        r.bits_per_value = kv->bits_per_value();
        return r;
      };
      // --profile: the timed repetitions (not the warm-up) run with a fresh profile per row.
      std::shared_ptr<profile> prof;
      forward_options fwd = opt.fwd;
      double timed = 0;
      auto start_row = [&] {
        prof = opt.profile ? std::make_shared<profile>() : nullptr;
        fwd.prof = prof.get();
        timed = 0;
      };
      auto take_profile = [&](bench_row& r) {
        r.prof = prof;
        r.timed_s = timed;
        r.rss_peak = process_rss().peak;
      };
      if (opt.n_prompt > 0) {
        const std::vector<int32_t>& prompt = prompts[di];
        // Warm-up run (not timed), then the timed repetitions.
        std::vector<double> tps;
        start_row();
        for (int rep = 0; rep <= opt.reps; ++rep) {
          kv->truncate(depth);
          if (kv->size() < depth) refill();
          const double t0 = cli::now_s();
          m.forward(prompt, depth, *kv, pool, logits.data(), 1, rep > 0 ? fwd : opt.fwd);
          const double dt = cli::now_s() - t0;
          if (rep > 0) tps.push_back(opt.n_prompt / dt), timed += dt;
        }
        bench_row r = row_for("pp" + std::to_string(opt.n_prompt), opt.n_prompt);
        take_profile(r);
        r.tps = median(tps);
        r.tps_min = *std::min_element(tps.begin(), tps.end());
        r.tps_max = *std::max_element(tps.begin(), tps.end());
        rows.push_back(r);
      }
      if (opt.n_gen > 0) {
        std::vector<double> tps;
        start_row();
        for (int rep = 0; rep <= opt.reps; ++rep) {
          kv->truncate(depth);
          if (kv->size() < depth) refill();
          int32_t t = fill.empty() ? 1 : fill.back();
          const double t0 = cli::now_s();
          for (int i = 0; i < opt.n_gen; ++i) {
            m.forward({&t, 1}, depth + i, *kv, pool, logits.data(), 1, rep > 0 ? fwd : opt.fwd);
            t = int32_t((uint32_t(t) * 2654435761u + 12345u) % uint32_t(n_vocab));
          }
          const double dt = cli::now_s() - t0;
          if (rep > 0) tps.push_back(opt.n_gen / dt), timed += dt;
        }
        bench_row r = row_for("tg" + std::to_string(opt.n_gen), opt.n_gen);
        set_limit(r, ci, depth + opt.n_gen / 2, 1);
        take_profile(r);
        r.tps = median(tps);
        r.tps_min = *std::min_element(tps.begin(), tps.end());
        r.tps_max = *std::max_element(tps.begin(), tps.end());
        rows.push_back(r);
      }
      for (const int np : opt.parallel) {
        if (opt.n_gen <= 0) break;
        // np sequences with their own caches and prompts; the prefills are not timed.
        const int base = depth + opt.n_prompt;
        std::mt19937_64 prompt_rng(opt.seed + 1);
        std::vector<std::unique_ptr<kv_store>> kvs;
        const size_t ns = static_cast<size_t>(np);
        std::vector<std::vector<float>> out(ns, std::vector<float>(logits.size()));
        if (opt.progress)
          std::fprintf(stderr, "filling %d caches (%s)...\r", np, opt.cache_names[ci].c_str());
        for (int s = 0; s < np; ++s) {
          kvs.push_back(make_kv(m, base + opt.n_gen, opt.caches[ci]));
          if (depth > 0) {
            if (shared)
              shared->copy_into(*kvs.back(), depth, batch);
            else
              m.forward(fill, 0, *kvs.back(), pool, nullptr, 0, opt.fwd);
          }
          m.forward(random_tokens(opt.n_prompt, n_vocab, prompt_rng), depth, *kvs.back(), pool,
                    nullptr, 0, opt.fwd);
        }
        std::vector<double> tps;
        start_row();
        std::vector<decode_item> items(ns);
        for (int rep = 0; rep <= opt.reps; ++rep) {
          for (int s = 0; s < np; ++s) {
            kvs[size_t(s)]->truncate(base);
            items[size_t(s)] = {int32_t(s + 1), base, kvs[size_t(s)].get(), out[size_t(s)].data()};
          }
          const double t0 = cli::now_s();
          for (int i = 0; i < opt.n_gen; ++i) {
            m.decode(items, pool, rep > 0 ? fwd : opt.fwd);
            for (decode_item& it : items) {
              it.token = int32_t((uint32_t(it.token) * 2654435761u + 12345u) % uint32_t(n_vocab));
              ++it.pos;
            }
          }
          const double dt = cli::now_s() - t0;
          if (rep > 0) tps.push_back(double(np) * opt.n_gen / dt), timed += dt;
        }
        bench_row r =
            row_for("tg" + std::to_string(opt.n_gen) + "x" + std::to_string(np), np * opt.n_gen);
        r.kv_bytes = r.kv_f16_bytes = 0;
        for (const auto& k : kvs) {
          r.kv_bytes += k->bytes();
          r.kv_f16_bytes += k->f16_bytes();
        }
        r.bits_per_value = kvs.front()->bits_per_value();
        set_limit(r, ci, base + opt.n_gen / 2, np);
        take_profile(r);
        r.tps = median(tps);
        r.tps_min = *std::min_element(tps.begin(), tps.end());
        r.tps_max = *std::max_element(tps.begin(), tps.end());
        rows.push_back(r);
      }
      if (opt.progress) std::fprintf(stderr, "%60s\r", "");
    }
  }
  return rows;
}

namespace {
// A tg row's limit (what 1), fraction (0) or fraction in percent (2); "-" for pp rows.
std::string limit_cell(const bench_row& r, const char* fmt, int what) {
  if (r.limit_tps <= 0) return "-";
  const double v = what == 1 ? r.limit_tps : r.tps / r.limit_tps * (what == 2 ? 100 : 1);
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}
}  // namespace

void print_bench(std::FILE* out, const std::string& format, const model& m, int n_threads,
                 const std::vector<bench_row>& rows) {
  const model_config& c = m.config();
  const std::string name = m.file().get_string("general.name", c.arch_name);
  if (format == "json") {
    // nlohmann::json escapes per RFC 8259 whatever the model's metadata holds; bytes that are
    // not UTF-8 become U+FFFD instead of an exception.
    nlohmann::ordered_json rows_json = nlohmann::ordered_json::array();
    for (const bench_row& r : rows) {
      nlohmann::ordered_json j;
      j["model"] = name;
      j["arch"] = c.arch_name;
      j["params"] = static_cast<long long>(m.n_params());
      j["model_bytes"] = m.weight_bytes();
      j["threads"] = n_threads;
      j["kv"] = r.cache;
      j["depth"] = r.depth;
      j["test"] = r.test;
      j["n_tokens"] = r.n_tokens;
      j["tokens_per_s"] = round3(r.tps);
      j["tokens_per_s_min"] = round3(r.tps_min);
      j["tokens_per_s_max"] = round3(r.tps_max);
      j["kv_bytes"] = r.kv_bytes;
      j["kv_f16_bytes"] = r.kv_f16_bytes;
      j["kv_bits_per_value"] = std::round(r.bits_per_value * 1e4) / 1e4;
      j["rss_peak_bytes"] = r.rss_peak;
      if (r.limit_tps > 0) {
        j["read_bandwidth_bytes_per_s"] = std::round(r.read_bw);
        j["step_weight_bytes"] = m.step_weight_bytes();
        j["step_kv_bytes"] = r.step_kv_bytes;
        j["bandwidth_limit_tokens_per_s"] = round3(r.limit_tps);
        j["bandwidth_fraction"] = std::round(r.tps / r.limit_tps * 1e4) / 1e4;
      }
      if (r.prof) {
        j["profile"] = nlohmann::ordered_json::parse(r.prof->json());
        j["profile"]["measured_wall_s"] = r.timed_s;
      }
      rows_json.push_back(std::move(j));
    }
    const std::string text =
        rows_json.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
    std::fprintf(out, "%s\n", text.c_str());
    return;
  }
  if (format == "csv") {
    std::fprintf(out,
                 "model,threads,kv,depth,test,tokens_per_s,tokens_per_s_min,tokens_per_s_max,kv_"
                 "bytes,kv_f16_bytes,kv_bits_per_value,bandwidth_limit_tokens_per_s,bandwidth_"
                 "fraction\r\n");
    for (const bench_row& r : rows)
      std::fprintf(out, "%s,%d,%s,%d,%s,%.3f,%.3f,%.3f,%zu,%zu,%.4f,%s,%s\r\n",
                   csv_field(name).c_str(), n_threads, csv_field(r.cache).c_str(), r.depth,
                   csv_field(r.test).c_str(), r.tps, r.tps_min, r.tps_max, r.kv_bytes,
                   r.kv_f16_bytes, r.bits_per_value, limit_cell(r, "%.3f", 1).c_str(),
                   limit_cell(r, "%.4f", 0).c_str());
    return;
  }
  std::fprintf(out,
               "| model | size | params | threads | kv | depth | test | t/s (median) | min..max | "
               "KV bytes | bits/value | peak RSS | limit t/s | of limit |\n");
  std::fprintf(out,
               "| --- | ---: | ---: | ---: | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | "
               "---: | ---: |\n");
  for (const bench_row& r : rows)
    std::fprintf(
        out,
        "| %s | %s | %.2f M | %d | %s | %d | %s | %.2f | %.2f..%.2f | %s | %.2f | %s | %s | %s "
        "|\n",
        md_cell(name).c_str(), cli::human_bytes(double(m.weight_bytes())).c_str(),
        double(m.n_params()) / 1e6, n_threads, md_cell(r.cache).c_str(), r.depth, r.test.c_str(),
        r.tps, r.tps_min, r.tps_max, cli::human_bytes(double(r.kv_bytes)).c_str(), r.bits_per_value,
        cli::human_bytes(double(r.rss_peak)).c_str(), limit_cell(r, "%.2f", 1).c_str(),
        limit_cell(r, "%.1f %%", 2).c_str());
  if (!rows.empty() && rows.back().read_bw > 0)
    std::fprintf(out,
                 "\nlimit: the weights a step reads (%s) and its KV at the test's mean length, "
                 "at the read bandwidth of %d threads (%.2f GB/s, measured in this run)\n",
                 cli::human_bytes(double(m.step_weight_bytes())).c_str(), n_threads,
                 rows.back().read_bw / 1e9);
  for (const bench_row& r : rows)
    if (r.prof)
      std::fprintf(out, "\nprofile of %s, depth %d, %s (timed repetitions: %.4f s measured):\n%s",
                   md_cell(r.cache).c_str(), r.depth, r.test.c_str(), r.timed_s,
                   r.prof->table(false).c_str());
}

}  // namespace engine
