// A tiny GGUF writer for tests: builds files byte by byte, including malformed ones.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace engine_test {

struct gguf_builder {
  std::vector<uint8_t> bytes;

  template <class T> gguf_builder& pod(T v) {
    const size_t at = bytes.size();
    bytes.resize(at + sizeof(T));
    std::memcpy(bytes.data() + at, &v, sizeof(T));
    return *this;
  }
  gguf_builder& u8(uint8_t v) { return pod(v); }
  gguf_builder& u32(uint32_t v) { return pod(v); }
  gguf_builder& u64(uint64_t v) { return pod(v); }
  gguf_builder& str(std::string_view s) {
    u64(s.size());
    bytes.insert(bytes.end(), s.begin(), s.end());
    return *this;
  }
  gguf_builder& raw(const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    bytes.insert(bytes.end(), b, b + n);
    return *this;
  }
  gguf_builder& header(uint64_t n_tensors, uint64_t n_kv, uint32_t version = 3) {
    raw("GGUF", 4);
    return u32(version).u64(n_tensors).u64(n_kv);
  }
  // key + type tag; the caller appends the value.
  gguf_builder& key(std::string_view k, uint32_t type) { return str(k).u32(type); }
  gguf_builder& kv_u32(std::string_view k, uint32_t v) { return key(k, 4).u32(v); }
  gguf_builder& kv_str(std::string_view k, std::string_view v) { return key(k, 8).str(v); }
  // name, dims, type, offset
  gguf_builder& tensor_info(std::string_view name, std::vector<uint64_t> ne, uint32_t type,
                            uint64_t offset) {
    str(name).u32(static_cast<uint32_t>(ne.size()));
    for (uint64_t d : ne) u64(d);
    return u32(type).u64(offset);
  }
  gguf_builder& pad(size_t alignment) {
    while (bytes.size() % alignment) bytes.push_back(0);
    return *this;
  }
};

}  // namespace engine_test
