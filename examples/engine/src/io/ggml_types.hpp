// The ggml tensor types the engine reads, in one table: every per-type list of the engine
// derives from ENGINE_GGML_TYPES (the ggml_type enum, type_name, known types in the GGUF
// reader, block sizes and dequantizers in io/quant.cpp, matmul's kernel choice and
// matmul_quantizes_activations, the tests' type lists). A new weight type is a row here plus
// its code: its block struct in io/quant.hpp (its size is checked against the row), its
// dequantizer `deq_<NAME>` in io/quant.cpp and, for matmul, its format in model/matmul/.
#pragma once

#include <cstdint>
#include <string_view>

namespace engine {

// How matmul multiplies a weight type: not at all (activation formats), f32 FMA with float
// activations (float weights), or integer multiply-adds with quantized activations.
enum class matmul_path : uint8_t { none, floats, ints };

// X(NAME, ggml value, values per block, bytes per block, matmul_path)
#define ENGINE_GGML_TYPES(X)  \
  X(F32, 0, 1, 4, floats)     \
  X(F16, 1, 1, 2, floats)     \
  X(Q4_0, 2, 32, 18, ints)    \
  X(Q4_1, 3, 32, 20, ints)    \
  X(Q5_0, 6, 32, 22, ints)    \
  X(Q5_1, 7, 32, 24, ints)    \
  X(Q8_0, 8, 32, 34, ints)    \
  X(Q8_1, 9, 32, 36, none)    \
  X(Q2_K, 10, 256, 84, ints)  \
  X(Q3_K, 11, 256, 110, ints) \
  X(Q4_K, 12, 256, 144, ints) \
  X(Q5_K, 13, 256, 176, ints) \
  X(Q6_K, 14, 256, 210, ints) \
  X(Q8_K, 15, 256, 292, none) \
  X(BF16, 30, 1, 2, floats)

enum class ggml_type : uint32_t {
#define ENGINE_GGML_ENUM(name, value, values, bytes, path) name = value,
  ENGINE_GGML_TYPES(ENGINE_GGML_ENUM)
#undef ENGINE_GGML_ENUM
};

struct ggml_type_info {
  ggml_type type;
  std::string_view name;  // "Q4_K"
  int64_t block_values;   // 1 for F32/F16/BF16, 32 for Q4_0.., 256 for K-quants
  int64_t block_bytes;
  matmul_path matmul;
};

inline constexpr ggml_type_info kGgmlTypes[] = {
#define ENGINE_GGML_INFO(name, value, values, bytes, path) \
  {ggml_type::name, #name, values, bytes, matmul_path::path},
    ENGINE_GGML_TYPES(ENGINE_GGML_INFO)
#undef ENGINE_GGML_INFO
};

// The row of `t`; nullptr for a value outside the table.
constexpr const ggml_type_info* find_ggml_type(ggml_type t) {
  for (const ggml_type_info& i : kGgmlTypes)
    if (i.type == t) return &i;
  return nullptr;
}

// Bytes per block of `t` (0 outside the table): block structs check their size against it.
// (By value, not through find_ggml_type: GCC 12 under -fsanitize=address cannot compare the
// row's address with nullptr in a constant expression.)
constexpr int64_t ggml_block_bytes(ggml_type t) {
  for (const ggml_type_info& i : kGgmlTypes)
    if (i.type == t) return i.block_bytes;
  return 0;
}

}  // namespace engine
