#include "run/cli.hpp"

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <strata/codec/standard_codecs.hpp>
#include <strata/io/atomic_file.hpp>

#include "error.hpp"

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
  lm.file = std::make_shared<const gguf>(path);
  lm.net = std::make_unique<model>(lm.file);
  if (need_tokenizer || lm.file->has("tokenizer.ggml.tokens"))
    lm.tok = std::make_unique<tokenizer>(*lm.file);
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

}  // namespace engine::cli
