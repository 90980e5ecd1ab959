#pragma once
// Binary state files of a KV cache: streaming writer and reader with an FNV-1a 64 checksum.
//
// File layout (all integers little-endian, fixed width):
//   "STRATAKV"                    8-byte magic
//   u32 version (state_file_version), u32 flags (bit 0: K means follow each KV layer's entry)
//   u64 rotation id
//   u32 n_layers, then per layer: u8 has_kv, i32 kv_source, u8 kind, u32 window,
//                                 u32 n_heads, u32 n_kv_heads, u32 head_dim
//   per KV layer (by ordinal):    u8 k codec id, u8 v codec id, u64 tokens, i64 first position
//                                 [, n_kv_heads x head_dim f32 K means when flags bit 0]
//                                 u8 1 when K balance scales follow (0: none), then
//                                 [n_kv_heads x head_dim f32 scales]   (version 2 on; version 1
//                                 files, which lack the byte, are still read)
//   per KV layer: K rows [head][token] then V rows [head][token], oldest token first
//   u64 FNV-1a 64 of every byte before it
// Writers go through strata::atomic_file (a mkstemp temporary in the target's directory, checked
// writes, fsync, rename), so a crash never leaves a half-written file under the final name.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include "../io/atomic_file.hpp"

namespace strata {

inline constexpr std::uint32_t state_file_version = 2;
inline constexpr char state_file_magic[8] = {'S', 'T', 'R', 'A', 'T', 'A', 'K', 'V'};

namespace detail {

inline std::uint64_t fnv1a(std::uint64_t h, const void* p, std::size_t n) {
  const auto* b = static_cast<const unsigned char*>(p);
  for (std::size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 0x100000001b3ull;
  return h;
}
inline constexpr std::uint64_t fnv1a_init = 0xcbf29ce484222325ull;

class state_writer {
 public:
  explicit state_writer(const std::string& path) : file_(path) { buf_.reserve(buffer_bytes); }
  state_writer(const state_writer&) = delete;
  state_writer& operator=(const state_writer&) = delete;

  void bytes(const void* p, std::size_t n) {
    hash_ = fnv1a(hash_, p, n);
    const auto* b = static_cast<const unsigned char*>(p);
    if (buf_.size() + n > buffer_bytes) flush();
    if (n >= buffer_bytes) return file_.write(b, n);
    buf_.insert(buf_.end(), b, b + n);
  }
  template <class T> void le(T v) {  // little-endian integer of sizeof(T) bytes
    unsigned char b[sizeof(T)];
    for (std::size_t i = 0; i < sizeof(T); ++i)
      b[i] = static_cast<unsigned char>(static_cast<std::uint64_t>(v) >> (8 * i));
    bytes(b, sizeof b);
  }
  // Writes the checksum, then syncs and renames the file into place.
  void finish() {
    const std::uint64_t h = hash_;
    le(h);
    flush();
    file_.commit();
  }

 private:
  static constexpr std::size_t buffer_bytes = std::size_t(1) << 20;
  void flush() {
    if (!buf_.empty()) file_.write(buf_.data(), buf_.size());
    buf_.clear();
  }
  atomic_file file_;
  std::vector<unsigned char> buf_;
  std::uint64_t hash_ = fnv1a_init;
};

class state_reader {
 public:
  explicit state_reader(const std::string& path) : path_(path) {
    f_ = std::fopen(path.c_str(), "rb");
    if (!f_) fail("cannot open");
    std::error_code ec;
    size_ = std::filesystem::file_size(path, ec);
    if (ec) fail("cannot read the file size");
  }
  ~state_reader() {
    if (f_) std::fclose(f_);
  }
  state_reader(const state_reader&) = delete;
  state_reader& operator=(const state_reader&) = delete;

  std::uint64_t size() const noexcept { return size_; }
  std::uint64_t remaining() const noexcept { return size_ - read_; }

  void bytes(void* p, std::size_t n) {
    if (n > remaining() || (n && std::fread(p, 1, n, f_) != n))
      fail("truncated file (" + std::to_string(size_) + " bytes)");
    read_ += n;
    hash_ = fnv1a(hash_, p, n);
  }
  template <class T> T le() {
    unsigned char b[sizeof(T)];
    bytes(b, sizeof b);
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < sizeof(T); ++i) v |= std::uint64_t(b[i]) << (8 * i);
    return static_cast<T>(v);
  }
  // Reads the trailing checksum and compares it with every byte read before it.
  void finish() {
    const std::uint64_t want = hash_;
    const auto got = le<std::uint64_t>();
    if (got != want) fail("corrupted file (checksum mismatch)");
    if (remaining() != 0) fail("trailing bytes after the checksum");
  }

  [[noreturn]] void fail(const std::string& what) const {
    throw std::runtime_error("error: " + what + " (load " + path_ + ")");
  }

 private:
  std::string path_;
  std::FILE* f_ = nullptr;
  std::uint64_t size_ = 0, read_ = 0;
  std::uint64_t hash_ = fnv1a_init;
};

}  // namespace detail
}  // namespace strata
