#include "serve/slot_file.hpp"

#include <unistd.h>

#include <cstring>
#include <fstream>
#include <sstream>

#include <strata/io/atomic_file.hpp>

#include "error.hpp"
#include "kv/kv_strata.hpp"

namespace engine::serve {

namespace {

constexpr char magic[8] = {'S', 'T', 'R', 'A', 'S', 'L', 'O', 'T'};
constexpr uint32_t version = 1;

const kv_strata& strata_cache(const kv_store& kv) {
  const auto* s = dynamic_cast<const kv_strata*>(&kv);
  if (!s) throw make_error("a " + kv.describe() + " cache cannot be saved", "slot file");
  return *s;
}

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw make_error("cannot open " + path + ": " + std::strerror(errno), "slot file");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void put_u32(std::string& out, uint32_t v) { out.append(reinterpret_cast<const char*>(&v), 4); }
void put_str(std::string& out, const std::string& s) {
  put_u32(out, uint32_t(s.size()));
  out += s;
}

struct reader {
  const std::string& data;
  const std::string& path;
  size_t pos = 0;
  void need(size_t n) {
    if (data.size() - pos < n) throw make_error("truncated or not a slot file", "restore " + path);
  }
  uint32_t u32() {
    need(4);
    uint32_t v;
    std::memcpy(&v, data.data() + pos, 4);
    pos += 4;
    return v;
  }
  std::string str() {
    const uint32_t n = u32();
    need(n);
    std::string s = data.substr(pos, n);
    pos += n;
    return s;
  }
};

// A temporary file next to `path` for the cache's own state file; removed on destruction.
struct temp_path {
  std::string name;
  explicit temp_path(const std::string& path) {
    std::string tmpl = path + ".kv.XXXXXX";
    const int fd = ::mkstemp(tmpl.data());
    if (fd < 0) throw make_error("cannot create a temporary file beside " + path, "slot file");
    ::close(fd);
    name = tmpl;
  }
  ~temp_path() { ::unlink(name.c_str()); }
};

}  // namespace

bool plain_file_name(const std::string& name) {
  if (name.empty() || name.size() > 200 || name[0] == '.') return false;
  for (const char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '-' || c == '_';
    if (!ok) return false;
  }
  return true;
}

std::string model_fingerprint(const gguf& file) {
  std::string f = "size=" + std::to_string(file.file_size());
  for (const char* key : {"general.architecture", "general.name"})
    f += std::string(";") + key + "=" + file.get_string(key, "");
  return f;
}

void save_slot(const std::string& path, const gguf& file, const kv_store& kv,
               const std::vector<int32_t>& tokens) {
  const kv_strata& cache = strata_cache(kv);
  const temp_path state(path);
  cache.save_state(state.name);
  std::string head(magic, sizeof magic);
  put_u32(head, version);
  put_str(head, model_fingerprint(file));
  put_str(head, kv.describe());
  put_u32(head, uint32_t(tokens.size()));
  head.append(reinterpret_cast<const char*>(tokens.data()), tokens.size() * sizeof(int32_t));
  const std::string body = read_all(state.name);
  try {
    strata::atomic_file out(path);
    out.write(head.data(), head.size());
    out.write(body.data(), body.size());
    out.commit();
  } catch (const std::exception& e) {
    throw make_error(e.what(), "save " + path);
  }
}

void load_slot(const std::string& path, const gguf& file, kv_store& kv,
               std::vector<int32_t>& tokens) {
  auto* cache = dynamic_cast<kv_strata*>(&kv);
  if (!cache) throw make_error("a " + kv.describe() + " cache cannot be restored", "slot file");
  const std::string data = read_all(path);
  reader r{data, path};
  r.need(sizeof magic);
  if (std::memcmp(data.data(), magic, sizeof magic) != 0)
    throw make_error("not a slot file", "restore " + path);
  r.pos = sizeof magic;
  if (const uint32_t v = r.u32(); v != version)
    throw make_error(
        "slot file version " + std::to_string(v) + ", this server reads " + std::to_string(version),
        "restore " + path);
  const std::string fp = r.str(), mine = model_fingerprint(file);
  if (fp != mine)
    throw make_error(
        "the slot was saved with another model (" + fp + "; this server has " + mine + ")",
        "restore " + path);
  const std::string policy = r.str();
  if (policy != kv.describe())
    throw make_error(
        "the slot was saved with KV policy '" + policy + "', the slot has '" + kv.describe() + "'",
        "restore " + path);
  const uint32_t n = r.u32();
  if (int64_t(n) > kv.capacity())
    throw make_error("the slot file holds " + std::to_string(n) +
                         " tokens, more than the slot's context of " +
                         std::to_string(kv.capacity()),
                     "restore " + path);
  r.need(size_t(n) * sizeof(int32_t));
  std::vector<int32_t> ids(n);
  std::memcpy(ids.data(), data.data() + r.pos, size_t(n) * sizeof(int32_t));
  r.pos += size_t(n) * sizeof(int32_t);
  const temp_path state(path);
  {
    std::ofstream out(state.name, std::ios::binary | std::ios::trunc);
    out.write(data.data() + r.pos, std::streamsize(data.size() - r.pos));
    if (!out) throw make_error("cannot write " + state.name, "restore " + path);
  }
  tokens.clear();
  cache->load_state(state.name, int(n));
  tokens = std::move(ids);
}

}  // namespace engine::serve
