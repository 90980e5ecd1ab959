// engine::gguf -- a GGUF v2/v3 reader over a memory mapping (or a caller's buffer).
//
// Layout (little-endian; https://github.com/ggml-org/ggml/blob/master/docs/gguf.md):
//   magic "GGUF" | u32 version | u64 n_tensors | u64 n_kv
//   n_kv x { string key | u32 value_type | value }
//   n_tensors x { string name | u32 n_dims | u64 ne[n_dims] | u32 ggml_type | u64 offset }
//   padding to general.alignment (default 32) | tensor data (offsets relative to its start)
// A string is u64 length + bytes (no NUL); an array is u32 element type + u64 count + elements.
// Every count, length and offset is checked against the bytes that remain before it is used;
// bad input throws engine::error ("error: <what> (<file>: offset N, <context>)").
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "error.hpp"
#include "io/ggml_types.hpp"

namespace engine {

// ggml_type: io/ggml_types.hpp (the one table of the ggml types the engine reads).
std::string_view type_name(ggml_type);  // "Q4_K"; "unknown" for a value outside the table

// The value types of GGUF metadata.
enum class gguf_type : uint32_t {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12
};
std::string_view type_name(gguf_type);  // "uint32", "array", ...

// One metadata value. Strings and numeric array elements point into the mapping.
struct gguf_value {
  gguf_type type = gguf_type::UINT8;
  // Scalars: integers (and bool) in `i` (uint64 values above INT64_MAX wrap), floats in `f`.
  int64_t i = 0;
  double f = 0;
  std::string_view str;  // STRING
  // ARRAY: element type and count; numeric elements packed at `raw` (count * element size
  // bytes, little-endian, unaligned); string elements in `strings`; nested arrays in `items`.
  gguf_type elem = gguf_type::UINT8;
  uint64_t count = 0;
  const uint8_t* raw = nullptr;
  std::vector<std::string_view> strings;
  std::vector<gguf_value> items;

  bool is_int() const;    // any integer type or bool
  bool is_float() const;  // FLOAT32 / FLOAT64
};

struct tensor {
  std::string name;
  ggml_type type;
  int n_dims;
  std::array<int64_t, 4> ne;  // ne[0] is the contiguous (fastest) dimension, as in ggml
  const uint8_t* data;        // into the mapping, aligned as the file says
  size_t nbytes;
  int64_t cols() const { return ne[0]; }  // values per row
  int64_t rows() const { return ne[1] * ne[2] * ne[3]; }
};

class gguf {
 public:
  explicit gguf(const std::string& path);  // mmaps the file; throws engine::error
  // Parses a buffer the caller keeps alive (tests, fuzzing); `where` names it in errors.
  gguf(std::span<const uint8_t> bytes, std::string where);

  uint32_t version() const;
  bool has(std::string_view key) const;
  std::string get_string(std::string_view key) const;  // throws if missing / wrong type
  std::string get_string(std::string_view key, std::string fallback) const;
  int64_t get_int(std::string_view key) const;  // any integer type (and bool)
  int64_t get_int(std::string_view key, int64_t fallback) const;
  double get_float(std::string_view key, double fallback) const;  // f32/f64 (or ints)
  bool get_bool(std::string_view key, bool fallback) const;
  // Arrays throw when the key is missing or holds another element type.
  std::vector<std::string> get_string_array(std::string_view key) const;
  std::vector<float> get_float_array(std::string_view key) const;  // f32 (f64, int) arrays
  std::vector<int64_t> get_int_array(std::string_view key) const;  // any int arrays
  const std::vector<tensor>& tensors() const;
  const tensor* find_tensor(std::string_view name) const;  // nullptr if absent
  const tensor& get_tensor(std::string_view name) const;   // throws naming it
  std::string architecture() const;                        // general.architecture

  const gguf_value* find(std::string_view key) const;                       // nullptr if absent
  const std::vector<std::pair<std::string, gguf_value>>& metadata() const;  // file order
  uint64_t alignment() const;  // general.alignment or 32
  size_t data_offset() const;  // where the tensor data section starts in the file
  size_t file_size() const;
  const std::string& path() const;            // the file name or the buffer's `where`
  const void* base() const { return base_; }  // the mapping (or the caller's buffer)

 private:
  void parse();
  std::string where_;
  std::shared_ptr<const void> mapping_;  // keeps an mmap alive (empty for caller buffers)
  const uint8_t* base_ = nullptr;
  size_t size_ = 0;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  size_t data_offset_ = 0;
  std::vector<std::pair<std::string, gguf_value>> kv_;
  std::vector<tensor> tensors_;
};

}  // namespace engine
