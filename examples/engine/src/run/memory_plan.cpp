#include "run/memory_plan.hpp"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include <strata/plan.hpp>
#include <strata/policy/parse.hpp>
#include <strata/policy/report.hpp>

#include "error.hpp"
#include "model/model.hpp"
#include "run/cli.hpp"

namespace engine {

namespace {

// The first number of a one-line file ("max" or a missing file: nothing).
bool read_u64(const std::string& path, uint64_t& out) {
  std::ifstream in(path);
  std::string s;
  if (!(in >> s) || s == "max") return false;
  char* end = nullptr;
  const unsigned long long v = std::strtoull(s.c_str(), &end, 10);
  if (end == s.c_str() || *end != '\0') return false;
  out = v;
  return true;
}

}  // namespace

memory_available available_memory() {
  memory_available a;
  if (const char* env = std::getenv("STRATA_MEMORY_AVAILABLE"); env && *env) {
    char* end = nullptr;
    const unsigned long long v = std::strtoull(env, &end, 10);
    if (end == env || *end != '\0')
      throw make_error(std::string("STRATA_MEMORY_AVAILABLE='") + env + "' is not a byte count",
                       "environment");
    return {v, "STRATA_MEMORY_AVAILABLE"};
  }
  a.bytes = UINT64_MAX;
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  uint64_t kib = 0;
  std::string unit;
  while (meminfo >> key >> kib) {
    std::getline(meminfo, unit);
    if (key == "MemAvailable:") {
      a.bytes = kib * 1024;
      a.source = "MemAvailable";
      break;
    }
  }
  // cgroup v2: "0::/path" in /proc/self/cgroup names this process's group.
  std::ifstream cg("/proc/self/cgroup");
  std::string line;
  while (std::getline(cg, line)) {
    if (line.rfind("0::", 0) != 0) continue;
    const std::string dir = "/sys/fs/cgroup" + line.substr(3);
    uint64_t max = 0, cur = 0;
    if (read_u64(dir + "/memory.max", max) && read_u64(dir + "/memory.current", cur)) {
      const uint64_t left = max > cur ? max - cur : 0;
      if (left < a.bytes) {
        a.bytes = left;
        a.source = "cgroup v2 memory.max - memory.current";
      }
    }
  }
  if (a.source.empty()) a.source = "unknown (no /proc/meminfo)";
  return a;
}

resident_set process_rss() {
  resident_set r;
  std::ifstream in("/proc/self/status");
  std::string key;
  uint64_t kib = 0;
  while (in >> key) {
    if (key == "VmRSS:" && in >> kib) r.now = kib * 1024;
    if (key == "VmHWM:" && in >> kib) r.peak = kib * 1024;
    if (key == "RssAnon:" && in >> kib) r.anon = kib * 1024;
  }
  return r;
}

uint64_t mapping_rss(const void* base) {
  std::ifstream in("/proc/self/smaps");
  const uintptr_t want = reinterpret_cast<uintptr_t>(base);
  std::string line;
  bool inside = false;
  while (std::getline(in, line)) {
    // A mapping's first line: "start-end perms offset dev inode [path]" (start in hex).
    const size_t dash = line.find('-');
    if (dash != std::string::npos && dash > 0 &&
        line.find_first_not_of("0123456789abcdef") == dash) {
      inside = std::strtoull(line.substr(0, dash).c_str(), nullptr, 16) == want;
      continue;
    }
    if (inside && line.rfind("Rss:", 0) == 0)
      return std::strtoull(line.c_str() + 4, nullptr, 10) * 1024;
  }
  return 0;
}

uint64_t kv_bytes(const model& m, int n_ctx, const kv_options& o) {
  const model_config& c = m.config();
  if (o.reference)  // kv_f32: f32 K and V rows of every layer
    return uint64_t(c.n_layer) * uint64_t(n_ctx) * uint64_t(c.n_head_kv) *
           uint64_t(c.head_k + c.head_v) * 4;
  try {
    const auto rep = strata::report(strata::parse_policy(o.policy_string()), m.layers());
    return rep.bytes(size_t(n_ctx), size_t(std::max(0, o.max_batch)));
  } catch (const error&) {
    throw;
  } catch (const std::exception& e) {
    const std::string w = e.what();
    throw error(w.rfind("error: ", 0) == 0 ? w : "error: " + w + " (kv policy)");
  }
}

uint64_t memory_plan::total() const {
  uint64_t t = 0;
  for (const auto& i : items_) t += i.bytes;
  return t;
}

std::string memory_plan::describe() const {
  std::ostringstream os;
  for (const auto& i : items_)
    os << "  " << i.what << ": " << cli::human_bytes(double(i.bytes)) << "\n";
  os << "  total: " << cli::human_bytes(double(total()));
  return os.str();
}

void memory_plan::require_fits(const std::string& where) const {
  require_fits(where, available_memory());
}

void memory_plan::require_fits(const std::string& where, const memory_available& available,
                               uint64_t held) const {
  const uint64_t room = std::max(available.bytes, available.bytes + held);  // saturating
  if (total() <= room) return;
  std::string beside;
  if (held) {
    beside = " beside the ";
    beside += cli::human_bytes(double(held));
    beside += " this process holds";
  }
  throw make_error("this run needs " + cli::human_bytes(double(total())) + " (" +
                       std::to_string(total()) + " bytes) but " +
                       cli::human_bytes(double(available.bytes)) + " are available (" +
                       available.source + ")" + beside + ":\n" + describe() +
                       "\nhint: use a smaller context (-c), a smaller KV type (-ctk/-ctv, "
                       "--kv-policy), or fewer slots",
                   where);
}

}  // namespace engine
