#include "run/auto_policy.hpp"

#include <sys/stat.h>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include <strata/io/atomic_file.hpp>
#include <strata/version.hpp>

#include "error.hpp"
#include "model/model.hpp"
#include "text/tokenizer.hpp"

namespace engine {

namespace {

// Bump when the measurement changes meaning, or when a codec of the menu encodes differently
// (the key holds codec names, not their encoders): 2 = turbo's scale search (issue 21).
constexpr int tune_format = 2;

uint64_t fnv1a(uint64_t h, const void* p, size_t n) {
  const auto* b = static_cast<const unsigned char*>(p);
  for (size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 0x100000001b3ull;
  return h;
}
constexpr uint64_t fnv_init = 0xcbf29ce484222325ull;

[[noreturn]] void bad_auto(const std::string& policy, const std::string& why) {
  throw make_error("bad auto policy '" + policy + "': " + why +
                       " (use auto, auto:bits=X with X in (0, 16], or auto:kld=Y with Y > 0)",
                   "kv policy");
}

void make_dirs(const std::string& dir) {
  for (size_t i = 1; i <= dir.size(); ++i) {
    if (i < dir.size() && dir[i] != '/') continue;
    const std::string d = dir.substr(0, i);
    if (::mkdir(d.c_str(), 0755) != 0 && errno != EEXIST)
      throw make_error("cannot create " + d + ": " + std::strerror(errno), "tune cache");
  }
}

}  // namespace

std::optional<choice_target> parse_auto_policy(const std::string& policy) {
  if (policy.rfind("auto", 0) != 0) return std::nullopt;
  choice_target t;
  if (policy == "auto") {
    t.value = auto_default_bits;
    return t;
  }
  if (policy[4] != ':') bad_auto(policy, "expected ':' after 'auto'");
  const std::string rest = policy.substr(5);
  const auto eq = rest.find('=');
  if (eq == std::string::npos) bad_auto(policy, "expected bits=X or kld=Y after 'auto:'");
  const std::string name = rest.substr(0, eq), value = rest.substr(eq + 1);
  if (name == "kld")
    t.kld = true;
  else if (name != "bits")
    bad_auto(policy, "unknown target '" + name + "'");
  if (value.empty()) bad_auto(policy, "no value for " + name);
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(value.c_str(), &end);
  if (*end != '\0' || errno != 0 || !(v > 0) || (!t.kld && v > 16))
    bad_auto(policy, "bad value '" + value + "' for " + name);
  t.value = v;
  return t;
}

std::string tune_cache_dir() {
  const char* cache = std::getenv("STRATA_CACHE_DIR");
  std::string dir;
  if (cache && *cache) {
    dir = cache;
  } else {
    const char* home = std::getenv("HOME");
    dir = std::string(home ? home : ".") + "/.cache/strata";
  }
  return dir + "/tune";
}

std::string tune_cache_key(const std::string& model_path, const model& m, const tune_options& o) {
  struct stat st {};
  if (::stat(model_path.c_str(), &st) != 0)
    throw make_error("cannot stat " + model_path + ": " + std::strerror(errno), "tune cache");
  // The metadata and tensor table: every byte before the tensor data.
  std::ifstream f(model_path, std::ios::binary);
  std::vector<char> head(m.file().data_offset());
  if (!f.read(head.data(), std::streamsize(head.size())))
    throw make_error("cannot read " + model_path, "tune cache");
  std::ostringstream s;
  s << "strata-tune " << tune_format << "\nstrata " << strata::version_string << "\nsize "
    << st.st_size << "\nmtime " << st.st_mtim.tv_sec << "." << st.st_mtim.tv_nsec << "\nmeta "
    << fnv1a(fnv_init, head.data(), head.size()) << "\nmenu";
  for (const auto& c : o.menu.empty() ? tune_menu(m) : o.menu) s << " " << c;
  s << "\nctx " << o.n_ctx << " chunks " << o.n_chunks << " batch " << o.fwd.n_batch << " exact "
    << o.fwd.exact << " q8 " << o.fwd.act_q8 << "\ncalibration " << o.calib_policy << "\ntext "
    << fnv1a(fnv_init, calibration_text().data(), calibration_text().size()) << "\n";
  const std::string all = s.str();
  char buf[32];
  std::snprintf(buf, sizeof buf, "%016llx",
                static_cast<unsigned long long>(fnv1a(fnv_init, all.data(), all.size())));
  return buf;
}

tune_result tune_cached(model& m, const tokenizer& tok, const std::string& model_path,
                        thread_pool& pool, const tune_options& o, std::FILE* log) {
  const std::string key = tune_cache_key(model_path, m, o);
  const std::string dir = tune_cache_dir();
  const std::string path = dir + "/" + key + ".json";
  {
    std::ifstream in(path);
    if (in) {
      std::stringstream ss;
      ss << in.rdbuf();
      try {
        tune_result r = tune_from_json(ss.str());
        if (r.key == key) {
          if (log) std::fprintf(log, "auto policy: tune result loaded from %s\n", path.c_str());
          return r;
        }
      } catch (const error&) {
        // A damaged or foreign file: measure again and replace it.
      }
    }
  }
  if (log) {
    std::fprintf(log, "auto policy: tuning %s on the calibration text (once; cached in %s)\n",
                 model_path.c_str(), dir.c_str());
    std::fflush(log);
  }
  const std::vector<int32_t> tokens = tok.encode(calibration_text(), true, false);
  tune_result r = run_tune(m, tokens, tok.add_bos() ? tok.bos() : -1, pool, o);
  r.key = key;
  make_dirs(dir);
  const std::string json = to_json(r);
  try {
    strata::atomic_file out(path);
    out.write(json.data(), json.size());
    out.commit();
  } catch (const std::exception& e) {
    throw make_error(std::string("cannot save the tune result: ") + e.what(), "tune cache");
  }
  if (log)
    std::fprintf(log, "auto policy: tuned in %.1f s, saved %s\n",
                 r.seconds_probe + r.seconds_calib + r.seconds_checks, path.c_str());
  return r;
}

std::optional<policy_choice> resolve_auto_policy(model& m, const tokenizer* tok,
                                                 const std::string& model_path,
                                                 const std::string& policy, int n_ctx,
                                                 int max_batch, thread_pool& pool, std::FILE* log) {
  const auto target = parse_auto_policy(policy);
  if (!target) return std::nullopt;
  if (!tok) throw make_error("--kv-policy auto needs the model's tokenizer", "kv policy");
  tune_options o;
  o.fwd.n_batch = max_batch > 0 ? max_batch : o.fwd.n_batch;
  const tune_result t = tune_cached(m, *tok, model_path, pool, o, log);
  policy_choice c = choose_policy(t, m.layers(), n_ctx, max_batch, *target);
  if (log)
    std::fprintf(log, "auto policy (%s): %s (%.3f bits/value at %d tokens, predicted KLD %.4f)\n",
                 policy.c_str(), c.policy.c_str(), c.bits, n_ctx, c.predicted_kld);
  return c;
}

}  // namespace engine
