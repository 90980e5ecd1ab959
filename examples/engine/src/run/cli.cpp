#include "run/cli.hpp"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <sstream>

#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <strata/codec/standard_codecs.hpp>
#include <strata/io/atomic_file.hpp>

#include "error.hpp"
#include "run/auto_policy.hpp"
#include "run/memory_plan.hpp"

namespace engine::cli {

args::args(int argc, char** argv, std::string tool) : tool_(std::move(tool)) {
  install_signal_cleanup();
  for (int i = 1; i < argc; ++i) argv_.emplace_back(argv[i]);
}

namespace {
extern "C" void on_terminate_signal(int sig) {
  strata::remove_pending_temp_files();
  std::signal(sig, SIG_DFL);
  std::raise(sig);  // the default action: the status a shell reports as 128 + sig
}

const char* file_kind(mode_t m) {
  if (S_ISDIR(m)) return "a directory";
  if (S_ISFIFO(m)) return "a FIFO";
  if (S_ISCHR(m)) return "a character device";
  if (S_ISBLK(m)) return "a block device";
  if (S_ISSOCK(m)) return "a socket";
  return "not a regular file";
}
}  // namespace

void print_usage(std::string_view usage) {
  constexpr std::string_view key = "{codecs}";
  std::string text(usage);
  for (std::size_t at; (at = text.find(key)) != std::string::npos;)
    text.replace(at, key.size(), strata::standard_codecs::names());
  std::fputs(text.c_str(), stdout);
}

void warn_sizes(int threads, int n_ctx, const model_config& c) {
  cpu_set_t set;
  CPU_ZERO(&set);
  const int cores = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 0;
  if (threads > 0 && cores > 0 && threads > cores)
    std::fprintf(
        stderr,
        "warning: -t %d exceeds the %d cores available to this process; threads will share cores\n",
        threads, cores);
  if (c.n_ctx_train > 0 && n_ctx > c.n_ctx_train)
    std::fprintf(
        stderr,
        "warning: context %d exceeds the model's trained context (%d); quality may drop past it\n",
        n_ctx, c.n_ctx_train);
}

void install_signal_cleanup() {
  struct sigaction sa {};
  sa.sa_handler = on_terminate_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

void refuse_output_over_inputs(const std::string& output, const std::string& output_flag,
                               const std::vector<std::pair<std::string, std::string>>& inputs) {
  struct stat out {};
  if (::stat(output.c_str(), &out) != 0) return;  // a new file cannot be an input
  for (const auto& [flag, path] : inputs) {
    struct stat in {};
    if (path.empty() || ::stat(path.c_str(), &in) != 0) continue;
    if (in.st_dev == out.st_dev && in.st_ino == out.st_ino)
      throw make_error(output_flag + " " + output + " is the same file as the input " + flag + " " +
                           path + "; writing it would destroy the input",
                       output);
  }
}

bool args::next() {
  if (i_ >= argv_.size()) return false;
  flag_ = argv_[i_++];
  // --flag=value
  if (flag_.size() > 2 && flag_.rfind("--", 0) == 0) {
    const size_t eq = flag_.find('=');
    if (eq != std::string::npos) {
      argv_.insert(argv_.begin() + long(i_), flag_.substr(eq + 1));
      flag_.resize(eq);
    }
  }
  return true;
}

bool args::is(std::string_view a, std::string_view b) const {
  return flag_ == a || (!b.empty() && flag_ == b);
}

void args::fail(const std::string& what) const { throw make_error(what, tool_); }

void args::unknown() const { fail("unknown argument '" + flag_ + "' (try --help)"); }

std::string args::str() {
  if (i_ >= argv_.size()) fail("missing value for " + flag_);
  return argv_[i_++];
}

int64_t args::integer(int64_t lo, int64_t hi) {
  const std::string s = str();
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0' || errno != 0 || v < lo || v > hi)
    fail("bad value '" + s + "' for " + flag_ + " (an integer in [" + std::to_string(lo) + ", " +
         std::to_string(hi) + "])");
  return v;
}

double args::real(double lo, double hi) {
  const std::string s = str();
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(s.c_str(), &end);
  if (s.empty() || *end != '\0' || errno != 0 || !(v >= lo && v <= hi)) {
    std::ostringstream os;
    os << "bad value '" << s << "' for " << flag_ << " (a number in [" << lo << ", " << hi << "])";
    fail(os.str());
  }
  return v;
}

std::vector<std::string> args::str_list() {
  const std::string s = str();
  std::vector<std::string> out;
  size_t b = 0;
  while (b <= s.size()) {
    const size_t e = std::min(s.find(',', b), s.size());
    if (e > b) out.push_back(s.substr(b, e - b));
    b = e + 1;
  }
  if (out.empty()) fail("empty list for " + flag_);
  return out;
}

std::vector<int64_t> args::int_list(int64_t lo, int64_t hi) {
  std::vector<int64_t> out;
  for (const std::string& s : str_list()) {
    char* end = nullptr;
    errno = 0;
    const long long v = std::strtoll(s.c_str(), &end, 10);
    if (*end != '\0' || errno != 0 || v < lo || v > hi)
      fail("bad value '" + s + "' in " + flag_ + " (integers in [" + std::to_string(lo) + ", " +
           std::to_string(hi) + "])");
    out.push_back(v);
  }
  return out;
}

std::string default_model_path() {
  const char* cache = std::getenv("STRATA_CACHE_DIR");
  std::string dir;
  if (cache && *cache) {
    dir = cache;
  } else {
    const char* home = std::getenv("HOME");
    dir = std::string(home ? home : ".") + "/.cache/strata";
  }
  return dir + "/models/SmolLM2-135M-Instruct.Q4_1.gguf";
}

loaded_model load(const std::string& path, bool need_tokenizer) {
  loaded_model lm;
  const double t0 = now_s();
  const uint64_t anon0 = process_rss().anon;
  lm.file = std::make_shared<const gguf>(path);
  lm.net = std::make_unique<model>(lm.file);
  const uint64_t anon1 = process_rss().anon;
  if (need_tokenizer || lm.file->has("tokenizer.ggml.tokens"))
    lm.tok = std::make_unique<tokenizer>(*lm.file);
  const uint64_t anon2 = process_rss().anon;
  lm.model_tables_bytes = anon1 > anon0 ? anon1 - anon0 : 0;
  lm.tokenizer_bytes = anon2 > anon1 ? anon2 - anon1 : 0;
  lm.load_ms = (now_s() - t0) * 1000.0;
  return lm;
}

std::string read_file(const std::string& path, uint64_t max_bytes) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    throw make_error(std::string("cannot open file: ") + std::strerror(errno), path);
  if (!S_ISREG(st.st_mode))
    throw make_error(std::string("cannot read ") + file_kind(st.st_mode) + " as a text file", path);
  if (uint64_t(st.st_size) > max_bytes)
    throw make_error("file is " + std::to_string(uint64_t(st.st_size)) + " bytes, more than the " +
                         std::to_string(max_bytes) + "-byte limit for a text input",
                     path);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw make_error("cannot open file", path);
  std::string out(size_t(st.st_size), '\0');
  in.read(out.data(), std::streamsize(out.size()));
  if (in.gcount() != std::streamsize(out.size()))
    throw make_error("file changed size while it was read", path);
  if (in.peek() != std::char_traits<char>::eof())
    throw make_error("file grew while it was read", path);
  return out;
}

std::string human_bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024.0 && u < 4) {
    b /= 1024.0;
    ++u;
  }
  char buf[64];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.2f %s", b, units[u]);
  return buf;
}

void expand_kv_policies(const kv_options& base, const std::vector<std::string>& policies,
                        std::vector<kv_options>& caches, std::vector<std::string>& names) {
  caches.clear();
  names.clear();
  if (policies.empty()) {
    caches.push_back(base);
    names.push_back(base.ctk + "/" + base.ctv);
  }
  for (const std::string& p : policies) {
    kv_options k = base;
    k.policy = p;
    caches.push_back(k);
    names.push_back(p);
  }
}

// ---- flags ---------------------------------------------------------------------------------

namespace {
// "[lo, hi]" as args::integer and args::real write it in their errors.
std::string int_range(int64_t lo, int64_t hi) {
  return "[" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
}
std::string real_range(double lo, double hi) {
  std::ostringstream os;
  os << "[" << lo << ", " << hi << "]";
  return os.str();
}
std::string with_range(std::string help, const std::string& range) {
  constexpr std::string_view key = "{range}";
  for (std::size_t at; (at = help.find(key)) != std::string::npos;)
    help.replace(at, key.size(), range);
  return help;
}
}  // namespace

flags::flags(std::string tool, std::string usage, std::string epilog)
    : tool_(std::move(tool)), usage_(std::move(usage)), epilog_(std::move(epilog)) {}

void flags::add(std::vector<std::string> names, std::string value, std::string help,
                std::function<void(args&)> act) {
  entries_.push_back({std::move(names), std::move(value), std::move(help), std::move(act)});
}

void flags::on(std::vector<std::string> names, std::string help, std::function<void()> act) {
  add(std::move(names), "", std::move(help), [act = std::move(act)](args&) { act(); });
}

void flags::text(std::vector<std::string> names, std::string value, std::string help,
                 std::function<void(std::string)> act) {
  add(std::move(names), std::move(value), std::move(help),
      [act = std::move(act)](args& a) { act(a.str()); });
}

void flags::integer(std::vector<std::string> names, std::string value, std::string help, int64_t lo,
                    int64_t hi, std::function<void(int64_t)> act) {
  add(std::move(names), std::move(value), with_range(std::move(help), int_range(lo, hi)),
      [=, act = std::move(act)](args& a) { act(a.integer(lo, hi)); });
}

void flags::real(std::vector<std::string> names, std::string value, std::string help, double lo,
                 double hi, std::function<void(double)> act) {
  add(std::move(names), std::move(value), with_range(std::move(help), real_range(lo, hi)),
      [=, act = std::move(act)](args& a) { act(a.real(lo, hi)); });
}

void flags::int_list(std::vector<std::string> names, std::string value, std::string help,
                     int64_t lo, int64_t hi, std::function<void(std::vector<int64_t>)> act) {
  add(std::move(names), std::move(value), with_range(std::move(help), int_range(lo, hi)),
      [=, act = std::move(act)](args& a) { act(a.int_list(lo, hi)); });
}

void flags::custom(std::vector<std::string> names, std::string value, std::string help,
                   std::function<void(args&)> act) {
  add(std::move(names), std::move(value), std::move(help), std::move(act));
}

bool flags::parse(int argc, char** argv) {
  args a(argc, argv, tool_);
  while (a.next()) {
    if (a.is("-h", "--help")) {
      print_usage(usage());
      return false;
    }
    const entry* found = nullptr;
    for (const entry& e : entries_)
      for (const std::string& n : e.names)
        if (a.is(n)) found = &e;
    if (!found) a.unknown();
    found->act(a);
  }
  return true;
}

std::string flags::usage() const {
  std::vector<std::string> heads;
  size_t width = 0;
  for (const entry& e : entries_) {
    std::string h = "  ";
    for (size_t k = 0; k < e.names.size(); ++k) {
      if (k) h += ", ";
      h += e.names[k];
    }
    if (!e.value.empty()) h.append(" ").append(e.value);
    width = std::max(width, h.size());
    heads.push_back(std::move(h));
  }
  width += 2;
  std::string out = usage_ + "\n";
  for (size_t i = 0; i < entries_.size(); ++i) {
    std::string line = heads[i];
    line.resize(width, ' ');
    for (const char c : entries_[i].help) {
      line += c;
      if (c == '\n') line.append(width, ' ');
    }
    out.append(line).append("\n");
  }
  return out + epilog_;
}

void flags::fail(const std::string& what) const { throw make_error(what, tool_); }

// ---- the shared flags ----------------------------------------------------------------------

void model_flag(flags& f, std::string& path) {
  f.text({"-m", "--model"}, "FILE",
         "GGUF model (default: SmolLM2-135M-Instruct Q4_1 in ~/.cache/strata/models)",
         [&path](std::string v) { path = std::move(v); });
}

void threads_flag(flags& f, int& threads) {
  f.integer({"-t", "--threads"}, "N", "threads, in {range} (default: all cores)", 1, 1024,
            [&threads](int64_t v) { threads = int(v); });
}

void ctx_flag(flags& f, int& n_ctx, int lo, int hi, std::string what) {
  f.integer({"-c", "--ctx-size"}, "N",
            what + ", in {range} (default " + std::to_string(n_ctx) + ")", lo, hi,
            [&n_ctx](int64_t v) { n_ctx = int(v); });
}

void batch_flag(flags& f, forward_options& fwd) {
  f.integer({"-b", "--batch-size"}, "N",
            "tokens per forward batch, in {range} (default " + std::to_string(fwd.n_batch) + ")", 1,
            1 << 16, [&fwd](int64_t v) { fwd.n_batch = int(v); });
}

void cache_type_flags(flags& f, kv_options& kv) {
  f.text({"-ctk", "--cache-type-k"}, "T", "K cache type: {codecs} (default " + kv.ctk + ")",
         [&kv](std::string v) { kv.ctk = std::move(v); });
  f.text({"-ctv", "--cache-type-v"}, "T", "V cache type (default " + kv.ctv + ")",
         [&kv](std::string v) { kv.ctv = std::move(v); });
}

namespace {
constexpr const char* kPolicyHelp =
    "a strata policy (la1 la2 la5 la6 la7 boundary-v, or rules such as\n"
    "\"v:first2,last2=q8_0;v=turbo2;k=q8_0\")";
}  // namespace

void kv_policy_flag(flags& f, kv_options& kv) {
  f.text({"--kv-policy"}, "STRING", std::string(kPolicyHelp) + "; wins over -ctk/-ctv",
         [&kv](std::string v) {
           (void)parse_auto_policy(v);  // a malformed auto policy fails here, before loading
           kv.policy = std::move(v);
         });
}

void kv_policies_flag(flags& f, std::vector<std::string>& policies) {
  f.text({"--kv-policy"}, "STRING",
         std::string(kPolicyHelp) +
             ": a cache to compare; give the\n"
             "flag once per cache: --kv-policy f16 --kv-policy la7 --kv-policy \"k=q8_0;v=turbo3\"",
         [&policies](std::string v) {
           (void)parse_auto_policy(v);
           policies.push_back(std::move(v));
         });
}

bool is_auto_policy(const std::string& policy) { return policy.rfind("auto", 0) == 0; }

void resolve_auto_policy(kv_options& kv, const loaded_model& lm, const std::string& model_path,
                         int n_ctx, thread_pool& pool) {
  if (!is_auto_policy(kv.policy)) return;
  const auto c = engine::resolve_auto_policy(*lm.net, lm.tok.get(), model_path, kv.policy, n_ctx,
                                             kv.max_batch, pool, stderr);
  kv.policy = c->policy;
}

void seed_flag(flags& f, uint64_t& seed, std::string what, std::string default_text) {
  f.integer({"--seed"}, "N", what + ", in {range} (" + default_text + ")", 0, INT64_MAX,
            [&seed](int64_t v) { seed = uint64_t(v); });
}

void sampling_flags(flags& f, sampler_params& sp) {
  std::ostringstream temp, top_p;
  temp << sp.temp;
  top_p << sp.top_p;
  f.real({"--temp"}, "T", "temperature, in {range} (default " + temp.str() + "; 0 = greedy)", 0.0,
         100.0, [&sp](double v) { sp.temp = float(v); });
  f.integer({"--top-k"}, "N",
            "top-k, in {range} (default " + std::to_string(sp.top_k) + "; 0 = off)", 0, 1 << 22,
            [&sp](int64_t v) { sp.top_k = int(v); });
  f.real({"--top-p"}, "P", "top-p, in {range} (default " + top_p.str() + "; 1 = off)", 1e-6, 1.0,
         [&sp](double v) { sp.top_p = float(v); });
}

void profile_flags(flags& f, bool& on, bool& per_layer) {
  f.on({"--profile"},
       "where each token's time goes: weight matmuls, attention, KV append,\n"
       "sampling, other (a table and a JSON line on stderr)",
       [&on] { on = true; });
  f.on({"--profile-layers"}, "--profile with a row per layer", [&on, &per_layer] {
    on = true;
    per_layer = true;
  });
}

void print_profile(const profile& p, bool per_layer, double measured_s) {
  std::fprintf(stderr,
               "\nprofile: %ld tokens, %.4f s in forward passes and sampling, %.4f s "
               "measured by the tool\n%s",
               p.tokens, p.wall, measured_s, p.table(per_layer).c_str());
  std::fprintf(stderr, "profile json: %s\n", p.json().c_str());
}

void activation_flags(flags& f, forward_options& fwd, kv_options* kv) {
  f.on({"--exact"},
       kv ? "f32 activations in every matmul and an f32 KV cache (reference mode)"
          : "f32 activations in every matmul (reference mode)",
       [&fwd, kv] {
         fwd.exact = true;
         if (kv) kv->reference = true;
       });
  f.on({"--q8-act"},
       "8-bit activations in one int8 plane, as llama.cpp (faster prefill;\n"
       "default: two planes, about 15 bits, top-1 as --exact)",
       [&fwd] { fwd.act_q8 = true; });
}

int run_tool(const std::function<int()>& body) {
  try {
    return body();
  } catch (const std::exception& e) {
    const std::string w = e.what();
    std::fprintf(stderr, "%s\n", w.rfind("error: ", 0) == 0 ? w.c_str() : ("error: " + w).c_str());
    return 1;
  }
}

}  // namespace engine::cli

namespace engine::cli {

void context_flag(flags& f, context_request& c, const std::string& what) {
  f.custom({"-c", "--ctx-size"}, "N|auto",
           what + ", in [16, 4194304] (default " + std::to_string(c.n_ctx) +
               "),\nor auto: the largest that fits in --mem, at most the trained context",
           [&c](args& a) {
             const std::string v = a.str();
             if (v == "auto") {
               c.automatic = true;
               return;
             }
             char* end = nullptr;
             errno = 0;
             const long long n = std::strtoll(v.c_str(), &end, 10);
             if (v.empty() || *end != '\0' || errno != 0 || n < 16 || n > (1 << 22))
               a.fail("bad value '" + v + "' for " + a.flag() +
                      " (auto, or an integer in [16, 4194304])");
             c.n_ctx = int(n);
             c.automatic = false;
           });
}

void mem_flag(flags& f, double& mem_gib, const std::string& help) {
  f.custom({"--mem"}, "GiB", help, [&mem_gib](args& a) {
    const std::string v = a.str();
    char* end = nullptr;
    errno = 0;
    const double g = std::strtod(v.c_str(), &end);
    if (v.empty() || *end != '\0' || errno != 0 || !(g >= 0.001 && g <= 1048576.0))
      a.fail("bad value '" + v + "' for " + a.flag() +
             ": GiB of the whole process, e.g. 0.5 or 8 (a number in [0.001, 1048576])");
    mem_gib = g;
  });
}

void mem_flags(flags& f, context_request& c) {
  mem_flag(f, c.mem_gib,
           "memory of the whole process in GiB, in [0.001, 1048576]: -c auto fits in it,\n"
           "and a run whose plan (--mem-plan) exceeds it is refused (default: what the\n"
           "machine has available)");
  f.on({"--mem-plan"},
       "print the memory plan of the whole process (every buffer, a line each, and the\n"
       "total) and exit",
       [&c] { c.print_plan = true; });
}

memory_available budget_of(const context_request& c) {
  if (c.mem_gib > 0) return {uint64_t(c.mem_gib * 1073741824.0), "--mem"};
  return available_memory();
}

int auto_context_or_fail(const flags& f, const loaded_model& lm, const kv_options& kv,
                         const process_shape& s, const context_request& c) {
  memory_available b = budget_of(c);
  // Without --mem the machine's available memory comes on top of what this process holds.
  if (c.mem_gib <= 0) b.bytes = std::max(b.bytes, b.bytes + process_rss().now);
  const int trained = lm.net->config().n_ctx_train;
  const int limit = trained > 0 ? std::min(trained, 1 << 22) : 1 << 22;
  const int n = auto_context(lm, kv, s, b.bytes, limit);
  if (n < 16) {
    process_shape none = s;
    none.n_ctx = 0;
    f.fail("-c auto: the process without its KV cache takes " +
           human_bytes(double(process_plan(lm, kv, none).total())) + ", which leaves no room for " +
           (s.n_seq > 1 ? std::to_string(s.n_seq) + " caches" : std::string("a cache")) +
           " of 16 tokens in " + human_bytes(double(b.bytes)) + " (" + b.source +
           "); see --mem-plan");
  }
  std::fprintf(stderr, "context: -c auto gives %d tokens%s (%s budget, %s%s)\n", n,
               s.n_seq > 1 ? " per slot" : "", human_bytes(double(b.bytes)).c_str(),
               b.source.c_str(), n == limit ? "; the model's trained context" : "");
  return n;
}

void require_fits(const memory_plan& p, const std::string& tool, const context_request& c) {
  if (c.mem_gib > 0)
    p.require_fits(tool, budget_of(c));
  else
    p.require_fits(tool, available_memory(), process_rss().now);
}

void print_plan(const memory_plan& p, const std::string& tool, const context_request& c) {
  std::printf("memory plan of %s (whole process):\n", tool.c_str());
  char buf[64];
  for (const memory_item& i : p.items()) {
    std::snprintf(buf, sizeof buf, "%14llu bytes %12s  ", static_cast<unsigned long long>(i.bytes),
                  human_bytes(double(i.bytes)).c_str());
    std::printf("%s%s\n", buf, i.what.c_str());
  }
  std::snprintf(buf, sizeof buf, "%14llu bytes %12s  ", static_cast<unsigned long long>(p.total()),
                human_bytes(double(p.total())).c_str());
  std::printf("%stotal\n", buf);
  const memory_available b = budget_of(c);
  std::printf("budget: %s (%s)%s\n", human_bytes(double(b.bytes)).c_str(), b.source.c_str(),
              c.mem_gib > 0 ? (p.total() <= b.bytes ? ": fits" : ": does not fit") : "");
}

}  // namespace engine::cli
