// libFuzzer entry for the GGUF reader (built with -DSTRATA_FUZZ=ON and clang; tests/fuzz.cmake).
// Every input must either parse or throw engine::error; anything else (a crash, an ASan report,
// another exception type) is a finding. A parsed file is walked completely: every string, every
// array element, the first and last byte of every tensor and its first dequantized block.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "io/gguf.hpp"
#include "io/quant.hpp"

namespace {

volatile uint64_t g_sink;

uint64_t walk(const engine::gguf_value& v) {
  uint64_t h = static_cast<uint64_t>(v.i) + v.str.size();
  for (char c : v.str) h += static_cast<unsigned char>(c);
  for (auto s : v.strings)
    for (char c : s) h += static_cast<unsigned char>(c);
  for (const auto& item : v.items) h += walk(item);
  return h;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const engine::gguf g(std::span<const uint8_t>(data, size), "fuzz-input");
    uint64_t h = g.version() + g.alignment();
    for (const auto& [key, value] : g.metadata()) {
      h += key.size() + walk(value);
      if (value.type == engine::gguf_type::ARRAY && value.elem == engine::gguf_type::STRING)
        h += g.get_string_array(key).size();
      else if (value.type == engine::gguf_type::ARRAY && value.elem != engine::gguf_type::ARRAY)
        h += value.elem == engine::gguf_type::FLOAT32 || value.elem == engine::gguf_type::FLOAT64
                 ? g.get_float_array(key).size()
                 : g.get_int_array(key).size();
    }
    std::vector<float> block(256);
    for (const engine::tensor& t : g.tensors()) {
      h += t.data[0] + t.data[t.nbytes - 1];
      engine::dequantize(t.type, t.data, block.data(), engine::block_values(t.type));
      h += static_cast<uint64_t>(block[0] != 0);
    }
    g_sink = h;
  } catch (const engine::error&) {}
  return 0;
}
