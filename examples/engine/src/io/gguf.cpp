#include "io/gguf.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <unordered_set>

#include "io/quant.hpp"

namespace engine {

std::string_view type_name(ggml_type t) {
  const ggml_type_info* info = find_ggml_type(t);
  return info ? info->name : "unknown";
}

std::string_view type_name(gguf_type t) {
  switch (t) {
    case gguf_type::UINT8: return "uint8";
    case gguf_type::INT8: return "int8";
    case gguf_type::UINT16: return "uint16";
    case gguf_type::INT16: return "int16";
    case gguf_type::UINT32: return "uint32";
    case gguf_type::INT32: return "int32";
    case gguf_type::FLOAT32: return "float32";
    case gguf_type::BOOL: return "bool";
    case gguf_type::STRING: return "string";
    case gguf_type::ARRAY: return "array";
    case gguf_type::UINT64: return "uint64";
    case gguf_type::INT64: return "int64";
    case gguf_type::FLOAT64: return "float64";
  }
  return "unknown";
}

bool gguf_value::is_int() const {
  return type != gguf_type::FLOAT32 && type != gguf_type::FLOAT64 && type != gguf_type::STRING &&
         type != gguf_type::ARRAY;
}
bool gguf_value::is_float() const {
  return type == gguf_type::FLOAT32 || type == gguf_type::FLOAT64;
}

namespace {

// Names of ggml tensor types this reader knows of but does not support, for error messages.
std::string ggml_type_label(uint32_t t) {
  constexpr std::pair<uint32_t, const char*> kOther[] = {
      {4, "Q4_2 (removed)"}, {5, "Q4_3 (removed)"}, {16, "IQ2_XXS"}, {17, "IQ2_XS"},
      {18, "IQ3_XXS"},       {19, "IQ1_S"},         {20, "IQ4_NL"},  {21, "IQ3_S"},
      {22, "IQ2_S"},         {23, "IQ4_XS"},        {24, "I8"},      {25, "I16"},
      {26, "I32"},           {27, "I64"},           {28, "F64"},     {29, "IQ1_M"},
      {34, "TQ1_0"},         {35, "TQ2_0"},         {39, "MXFP4"}};
  for (const auto& [v, name] : kOther)
    if (v == t) return std::to_string(t) + " (" + name + ")";
  return std::to_string(t);
}

bool known_ggml_type(uint32_t t) { return find_ggml_type(static_cast<ggml_type>(t)) != nullptr; }

// Size in the file of one scalar element; 0 for STRING / ARRAY / unknown.
size_t scalar_size(gguf_type t) {
  switch (t) {
    case gguf_type::UINT8:
    case gguf_type::INT8:
    case gguf_type::BOOL: return 1;
    case gguf_type::UINT16:
    case gguf_type::INT16: return 2;
    case gguf_type::UINT32:
    case gguf_type::INT32:
    case gguf_type::FLOAT32: return 4;
    case gguf_type::UINT64:
    case gguf_type::INT64:
    case gguf_type::FLOAT64: return 8;
    case gguf_type::STRING:
    case gguf_type::ARRAY: return 0;
  }
  return 0;
}

bool valid_value_type(uint32_t t) { return t <= static_cast<uint32_t>(gguf_type::FLOAT64); }

template <class T> T load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// Decodes one scalar at p (scalar_size(t) bytes) into the integer or float slot.
void decode_scalar(gguf_type t, const uint8_t* p, int64_t& i, double& f) {
  switch (t) {
    case gguf_type::UINT8: i = load<uint8_t>(p); break;
    case gguf_type::INT8: i = load<int8_t>(p); break;
    case gguf_type::BOOL: i = load<uint8_t>(p) != 0; break;
    case gguf_type::UINT16: i = load<uint16_t>(p); break;
    case gguf_type::INT16: i = load<int16_t>(p); break;
    case gguf_type::UINT32: i = load<uint32_t>(p); break;
    case gguf_type::INT32: i = load<int32_t>(p); break;
    case gguf_type::UINT64: i = static_cast<int64_t>(load<uint64_t>(p)); break;
    case gguf_type::INT64: i = load<int64_t>(p); break;
    case gguf_type::FLOAT32: f = load<float>(p); break;
    case gguf_type::FLOAT64: f = load<double>(p); break;
    case gguf_type::STRING:
    case gguf_type::ARRAY: break;
  }
}

constexpr int kMaxArrayNesting = 8;

// A bounds-checked reading position in the buffer.
struct cursor {
  const uint8_t* base;
  size_t size;
  size_t pos;
  const std::string& where;
  std::string context;  // "key 'x'" / "tensor #3 'y'"

  [[noreturn]] void fail(const std::string& what) const {
    std::string w = where + ": offset " + std::to_string(pos);
    if (!context.empty()) w += ", " + context;
    throw make_error(what, w);
  }
  size_t remaining() const { return size - pos; }
  void need(uint64_t n, std::string_view what) const {
    if (n > remaining())
      fail(std::string(what) + " needs " + std::to_string(n) + " bytes but only " +
           std::to_string(remaining()) + " remain in the file (truncated or corrupt)");
  }
  template <class T> T read(std::string_view what) {
    need(sizeof(T), what);
    T v = load<T>(base + pos);
    pos += sizeof(T);
    return v;
  }
  std::string_view read_string(std::string_view what) {
    const uint64_t len = read<uint64_t>(what);
    if (len > remaining()) {
      pos -= 8;
      fail(std::string(what) + " length " + std::to_string(len) +
           " runs past the end of the file (" + std::to_string(remaining() - 8) + " bytes remain)");
    }
    std::string_view s(reinterpret_cast<const char*>(base + pos), static_cast<size_t>(len));
    pos += static_cast<size_t>(len);
    return s;
  }

  gguf_type read_type(std::string_view what) {
    const uint32_t t = read<uint32_t>(what);
    if (!valid_value_type(t)) {
      pos -= 4;
      fail("unknown metadata value type " + std::to_string(t) + " in " + std::string(what));
    }
    return static_cast<gguf_type>(t);
  }

  void read_value(gguf_type type, gguf_value& v, int depth) {
    v.type = type;
    if (type == gguf_type::STRING) {
      v.str = read_string("string value");
      return;
    }
    if (type != gguf_type::ARRAY) {
      const size_t n = scalar_size(type);
      need(n, std::string(type_name(type)) + " value");
      decode_scalar(type, base + pos, v.i, v.f);
      pos += n;
      return;
    }
    if (depth >= kMaxArrayNesting)
      fail("arrays nested deeper than " + std::to_string(kMaxArrayNesting));
    v.elem = read_type("array element type");
    const size_t count_pos = pos;
    v.count = read<uint64_t>("array length");
    // The smallest encoding of one element bounds how many can fit in what remains.
    const size_t min_elem = v.elem == gguf_type::STRING  ? 8
                            : v.elem == gguf_type::ARRAY ? 12
                                                         : scalar_size(v.elem);
    if (v.count > remaining() / min_elem) {
      pos = count_pos;
      fail("array of " + std::to_string(v.count) + " " + std::string(type_name(v.elem)) +
           " elements cannot fit in the " + std::to_string(remaining() - 8) + " bytes that remain");
    }
    if (v.elem == gguf_type::STRING) {
      v.strings.reserve(static_cast<size_t>(v.count));
      for (uint64_t k = 0; k < v.count; ++k)
        v.strings.push_back(read_string("string array element"));
    } else if (v.elem == gguf_type::ARRAY) {
      v.items.resize(static_cast<size_t>(v.count));
      for (auto& item : v.items) read_value(gguf_type::ARRAY, item, depth + 1);
    } else {
      v.raw = base + pos;
      pos += static_cast<size_t>(v.count) * min_elem;
    }
  }
};

std::string quoted(std::string_view s) {
  // Keys and names come from the file: show at most 80 printable bytes.
  std::string out = "'";
  for (size_t k = 0; k < s.size() && k < 80; ++k) {
    const unsigned char c = static_cast<unsigned char>(s[k]);
    out += (c >= 32 && c < 127) ? static_cast<char>(c) : '?';
  }
  if (s.size() > 80) out += "...";
  return out + "'";
}

// What the header holds after the magic.
struct gguf_header {
  uint32_t version;
  uint64_t n_tensors, n_kv;
};

// The magic, the version (2 or 3, little-endian) and the tensor and metadata counts.
gguf_header read_header(cursor& c) {
  if (c.size < 4 || std::memcmp(c.base, "GGUF", 4) != 0) {
    std::string got;
    for (size_t k = 0; k < std::min<size_t>(c.size, 4); ++k) {
      const unsigned char ch = c.base[k];
      got += (ch >= 32 && ch < 127) ? static_cast<char>(ch) : '?';
    }
    c.fail("not a GGUF file: magic is '" + got + "', expected 'GGUF'");
  }
  c.pos = 4;
  gguf_header h{};
  h.version = c.read<uint32_t>("version");
  if (h.version == 1) {
    c.pos = 4;
    c.fail("GGUF version 1 is not supported (versions 2 and 3 are)");
  }
  if (h.version == 0x02000000u || h.version == 0x03000000u) {
    c.pos = 4;
    c.fail("big-endian GGUF files are not supported");
  }
  if (h.version != 2 && h.version != 3) {
    c.pos = 4;
    c.fail("unsupported GGUF version " + std::to_string(h.version) +
           " (versions 2 and 3 are supported)");
  }
  h.n_tensors = c.read<uint64_t>("tensor count");
  h.n_kv = c.read<uint64_t>("metadata count");
  // Smallest encodings: key (8 + 1) + type (4) + 1-byte value; tensor info 8+1 + 4 + 8 + 4 + 8.
  if (h.n_kv > c.remaining() / 13) {
    c.pos = 16;
    c.fail("metadata count " + std::to_string(h.n_kv) + " cannot fit in a file of " +
           std::to_string(c.size) + " bytes");
  }
  if (h.n_tensors > c.remaining() / 33) {
    c.pos = 8;
    c.fail("tensor count " + std::to_string(h.n_tensors) + " cannot fit in a file of " +
           std::to_string(c.size) + " bytes");
  }
  return h;
}

// The n_kv metadata key/value pairs, in file order (keys unique and not empty).
std::vector<std::pair<std::string, gguf_value>> read_metadata(cursor& c, uint64_t n_kv) {
  std::vector<std::pair<std::string, gguf_value>> kv;
  kv.reserve(static_cast<size_t>(n_kv));
  std::unordered_set<std::string_view> seen_keys;  // views into the buffer
  for (uint64_t k = 0; k < n_kv; ++k) {
    c.context = "metadata #" + std::to_string(k);
    const std::string_view key = c.read_string("key");
    if (key.empty()) c.fail("empty metadata key");
    c.context = "key " + quoted(key);
    if (!seen_keys.insert(key).second) c.fail("duplicate metadata key");
    const gguf_type type = c.read_type("value type");
    gguf_value v;
    c.read_value(type, v, 0);
    kv.emplace_back(std::string(key), std::move(v));
  }
  c.context.clear();
  return kv;
}

// general.alignment: an integer, a power of two in [1, 2^30].
uint64_t read_alignment(cursor& c, const gguf_value& a) {
  c.context = "key 'general.alignment'";
  if (!a.is_int() || a.type == gguf_type::BOOL)
    c.fail("alignment must be an integer, not " + std::string(type_name(a.type)));
  if (a.i <= 0 || (a.i & (a.i - 1)) != 0 || a.i > (int64_t{1} << 30))
    c.fail("alignment " + std::to_string(a.i) + " is not a power of two in [1, 2^30]");
  c.context.clear();
  return static_cast<uint64_t>(a.i);
}

// A tensor's data offset as its info gives it (relative to the data section), and where that
// info starts in the file (for errors).
struct pending_info {
  uint64_t offset;
  size_t info_pos;
};

// The n_tensors tensor infos (name, dimensions, type, data offset) into `tensors`, without
// their data; returns each one's data offset.
std::vector<pending_info> read_tensor_infos(cursor& c, uint64_t n_tensors, uint64_t alignment,
                                            std::vector<tensor>& tensors) {
  std::vector<pending_info> offsets;
  std::unordered_set<std::string_view> seen_names;  // views into the buffer
  tensors.reserve(static_cast<size_t>(n_tensors));
  offsets.reserve(static_cast<size_t>(n_tensors));
  for (uint64_t k = 0; k < n_tensors; ++k) {
    c.context = "tensor #" + std::to_string(k);
    const size_t info_pos = c.pos;
    const std::string_view name = c.read_string("tensor name");
    if (name.empty()) c.fail("empty tensor name");
    // Two appends, not `+= " " + quoted(name)`: here g++ 12 at -O3 reports a false -Wrestrict
    // in that operator+ (std::string's insert), an error with -Werror.
    c.context += ' ';
    c.context += quoted(name);
    if (!seen_names.insert(name).second) c.fail("duplicate tensor name");
    const uint32_t n_dims = c.read<uint32_t>("dimension count");
    if (n_dims < 1 || n_dims > 4) {
      c.pos -= 4;
      c.fail("dimension count " + std::to_string(n_dims) + " is not in [1, 4]");
    }
    tensor t{};
    t.name = std::string(name);
    t.n_dims = static_cast<int>(n_dims);
    t.ne = {1, 1, 1, 1};
    uint64_t n_values = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      const uint64_t ne = c.read<uint64_t>("dimension");
      if (ne == 0 || ne > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ||
          n_values > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) / ne) {
        c.pos -= 8;
        c.fail("dimension " + std::to_string(d) + " = " + std::to_string(ne) +
               " is zero or too large");
      }
      n_values *= ne;
      t.ne[d] = static_cast<int64_t>(ne);
    }
    const uint32_t type = c.read<uint32_t>("tensor type");
    if (!known_ggml_type(type)) {
      c.pos -= 4;
      c.fail("unsupported tensor type " + ggml_type_label(type));
    }
    t.type = static_cast<ggml_type>(type);
    const int64_t bv = block_values(t.type), bb = block_bytes(t.type);
    if (t.ne[0] % bv != 0)
      c.fail("row length " + std::to_string(t.ne[0]) + " is not a multiple of the " +
             std::string(type_name(t.type)) + " block of " + std::to_string(bv) + " values");
    const uint64_t n_blocks = n_values / static_cast<uint64_t>(bv);
    if (n_blocks > static_cast<uint64_t>(c.size) / static_cast<uint64_t>(bb))
      c.fail("tensor of " + std::to_string(n_values) + " values is larger than the file");
    t.nbytes = static_cast<size_t>(n_blocks * static_cast<uint64_t>(bb));
    const uint64_t offset = c.read<uint64_t>("tensor data offset");
    if (offset % alignment != 0) {
      c.pos -= 8;
      c.fail("data offset " + std::to_string(offset) + " is not a multiple of the alignment " +
             std::to_string(alignment));
    }
    tensors.push_back(std::move(t));
    offsets.push_back({offset, info_pos});
  }
  c.context.clear();
  return offsets;
}

// Where the data section starts (returned), and each tensor's data in it: inside the file and
// 4-byte aligned. Sets tensor::data.
size_t read_tensor_data(cursor& c, uint64_t alignment, std::vector<tensor>& tensors,
                        const std::vector<pending_info>& offsets) {
  // The data section starts at the next multiple of the alignment.
  const size_t end_of_infos = c.pos;
  const size_t data_offset =
      end_of_infos + static_cast<size_t>((alignment - end_of_infos % alignment) % alignment);
  if (tensors.empty()) return data_offset;
  if (data_offset > c.size) {
    c.pos = end_of_infos;
    c.fail("tensor data section (at " + std::to_string(data_offset) +
           " after alignment) starts past the end of the file");
  }
  const uint64_t data_size = c.size - data_offset;
  for (size_t k = 0; k < tensors.size(); ++k) {
    tensor& t = tensors[k];
    const uint64_t off = offsets[k].offset;
    if (off > data_size || t.nbytes > data_size - off) {
      c.pos = offsets[k].info_pos;
      c.context = "tensor #" + std::to_string(k) + " " + quoted(t.name);
      c.fail("data [" + std::to_string(off) + ", +" + std::to_string(t.nbytes) +
             ") runs past the end of the " + std::to_string(data_size) +
             "-byte data section (truncated file?)");
    }
    t.data = c.base + data_offset + off;
    // Block structs hold 16- and 32-bit fields: a file with general.alignment 1 or 2 can place
    // a tensor where they cannot be read (undefined behaviour, a fault on some CPUs).
    if (reinterpret_cast<uintptr_t>(t.data) % 4 != 0) {
      c.pos = offsets[k].info_pos;
      c.context = "tensor #" + std::to_string(k) + " " + quoted(t.name);
      c.fail("data at file offset " + std::to_string(data_offset + off) +
             " is not 4-byte aligned (general.alignment is " + std::to_string(alignment) + ")");
    }
  }
  return data_offset;
}

}  // namespace

gguf::gguf(const std::string& path) : where_(path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw make_error(std::string("cannot open file: ") + std::strerror(errno), path);
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw make_error("not a regular file", path);
  }
  size_ = static_cast<size_t>(st.st_size);
  if (size_ == 0) {
    ::close(fd);
    throw make_error("empty file, not a GGUF", path);
  }
  void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
  const int mmap_errno = errno;
  ::close(fd);
  if (p == MAP_FAILED)
    throw make_error(std::string("cannot map file: ") + std::strerror(mmap_errno), path);
  const size_t len = size_;
  mapping_ =
      std::shared_ptr<const void>(p, [len](const void* q) { ::munmap(const_cast<void*>(q), len); });
  base_ = static_cast<const uint8_t*>(p);
  parse();
}

gguf::gguf(std::span<const uint8_t> bytes, std::string where)
    : where_(std::move(where)), base_(bytes.data()), size_(bytes.size()) {
  parse();
}

// Five readers: the header, the metadata, general.alignment (before the tensor infos, whose data
// offsets must be multiples of it), the tensor infos, the tensor data.
void gguf::parse() {
  cursor c{base_, size_, 0, where_, {}};
  const gguf_header h = read_header(c);
  version_ = h.version;
  kv_ = read_metadata(c, h.n_kv);
  if (const gguf_value* a = find("general.alignment")) alignment_ = read_alignment(c, *a);
  const std::vector<pending_info> offsets = read_tensor_infos(c, h.n_tensors, alignment_, tensors_);
  data_offset_ = read_tensor_data(c, alignment_, tensors_, offsets);
}

uint32_t gguf::version() const { return version_; }
uint64_t gguf::alignment() const { return alignment_; }
size_t gguf::data_offset() const { return data_offset_; }
size_t gguf::file_size() const { return size_; }
const std::string& gguf::path() const { return where_; }
const std::vector<std::pair<std::string, gguf_value>>& gguf::metadata() const { return kv_; }
const std::vector<tensor>& gguf::tensors() const { return tensors_; }
bool gguf::has(std::string_view key) const { return find(key) != nullptr; }

const gguf_value* gguf::find(std::string_view key) const {
  for (const auto& [k, v] : kv_)
    if (k == key) return &v;
  return nullptr;
}

namespace {

[[noreturn]] void missing(const std::string& where, std::string_view key) {
  throw make_error("metadata key " + quoted(key) + " is missing", where);
}
[[noreturn]] void wrong_type(const std::string& where, std::string_view key, const gguf_value& v,
                             std::string_view expected) {
  std::string got(type_name(v.type));
  if (v.type == gguf_type::ARRAY) got += " of " + std::string(type_name(v.elem));
  throw make_error(
      "metadata key " + quoted(key) + " is " + got + ", expected " + std::string(expected), where);
}

}  // namespace

std::string gguf::get_string(std::string_view key) const {
  const gguf_value* v = find(key);
  if (!v) missing(where_, key);
  if (v->type != gguf_type::STRING) wrong_type(where_, key, *v, "string");
  return std::string(v->str);
}

std::string gguf::get_string(std::string_view key, std::string fallback) const {
  return has(key) ? get_string(key) : fallback;
}

int64_t gguf::get_int(std::string_view key) const {
  const gguf_value* v = find(key);
  if (!v) missing(where_, key);
  if (!v->is_int()) wrong_type(where_, key, *v, "an integer");
  return v->i;
}

int64_t gguf::get_int(std::string_view key, int64_t fallback) const {
  return has(key) ? get_int(key) : fallback;
}

double gguf::get_float(std::string_view key, double fallback) const {
  const gguf_value* v = find(key);
  if (!v) return fallback;
  if (v->is_float()) return v->f;
  if (v->is_int()) return static_cast<double>(v->i);
  wrong_type(where_, key, *v, "a number");
}

bool gguf::get_bool(std::string_view key, bool fallback) const {
  const gguf_value* v = find(key);
  if (!v) return fallback;
  if (!v->is_int()) wrong_type(where_, key, *v, "bool");
  return v->i != 0;
}

std::vector<std::string> gguf::get_string_array(std::string_view key) const {
  const gguf_value* v = find(key);
  if (!v) missing(where_, key);
  if (v->type != gguf_type::ARRAY || v->elem != gguf_type::STRING)
    wrong_type(where_, key, *v, "array of string");
  return {v->strings.begin(), v->strings.end()};
}

std::vector<float> gguf::get_float_array(std::string_view key) const {
  const gguf_value* v = find(key);
  if (!v) missing(where_, key);
  const size_t es = v->type == gguf_type::ARRAY ? scalar_size(v->elem) : 0;
  if (es == 0) wrong_type(where_, key, *v, "array of float32");
  std::vector<float> out(static_cast<size_t>(v->count));
  for (size_t k = 0; k < out.size(); ++k) {
    int64_t i = 0;
    double f = 0;
    decode_scalar(v->elem, v->raw + k * es, i, f);
    out[k] = (v->elem == gguf_type::FLOAT32 || v->elem == gguf_type::FLOAT64)
                 ? static_cast<float>(f)
                 : static_cast<float>(i);
  }
  return out;
}

std::vector<int64_t> gguf::get_int_array(std::string_view key) const {
  const gguf_value* v = find(key);
  if (!v) missing(where_, key);
  const size_t es = v->type == gguf_type::ARRAY ? scalar_size(v->elem) : 0;
  if (es == 0 || v->elem == gguf_type::FLOAT32 || v->elem == gguf_type::FLOAT64)
    wrong_type(where_, key, *v, "array of integers");
  std::vector<int64_t> out(static_cast<size_t>(v->count));
  double f = 0;
  for (size_t k = 0; k < out.size(); ++k) decode_scalar(v->elem, v->raw + k * es, out[k], f);
  return out;
}

const tensor* gguf::find_tensor(std::string_view name) const {
  for (const tensor& t : tensors_)
    if (t.name == name) return &t;
  return nullptr;
}

const tensor& gguf::get_tensor(std::string_view name) const {
  if (const tensor* t = find_tensor(name)) return *t;
  throw make_error("tensor " + quoted(name) + " is missing", where_);
}

std::string gguf::architecture() const { return get_string("general.architecture"); }

}  // namespace engine
