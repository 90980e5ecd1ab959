// The GGUF reader: real files (stories260K, the vocab GGUFs), every metadata value type,
// and malformed input that must give an engine::error naming what and where.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <string>

#include "gguf_builder.hpp"
#include "io/gguf.hpp"

using engine::gguf;
using engine_test::gguf_builder;

namespace {

std::string data_file(const char* rel) { return std::string(STRATA_DATA_DIR) + "/" + rel; }

bool present(const std::string& path) {
  if (std::filesystem::exists(path)) return true;
  MESSAGE("skipping: " << path << " not found");
  return false;
}

// The message of the engine::error that parsing `b` throws ("" if it parses).
std::string parse_error(const gguf_builder& b) {
  try {
    gguf g(std::span<const uint8_t>(b.bytes), "test.gguf");
  } catch (const engine::error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("stories260K.gguf: metadata and tensors") {
  const std::string path = data_file("stories260K.gguf");
  if (!present(path)) return;
  gguf g(path);
  CHECK((g.version() == 2 || g.version() == 3));
  CHECK(g.architecture() == "llama");
  CHECK(g.get_int("llama.block_count") == 5);
  CHECK(g.get_int("llama.embedding_length") == 64);
  CHECK(g.get_int("llama.attention.head_count") == 8);
  CHECK(g.get_int("llama.attention.head_count_kv") == 4);
  CHECK(g.get_float("llama.attention.layer_norm_rms_epsilon", 0) > 0);
  CHECK(g.get_string("tokenizer.ggml.model") == "llama");
  CHECK(g.get_string_array("tokenizer.ggml.tokens").size() == 512);
  CHECK(g.get_float_array("tokenizer.ggml.scores").size() == 512);
  CHECK(g.get_int_array("tokenizer.ggml.token_type").size() == 512);
  CHECK(g.get_int("missing.key", 7) == 7);
  CHECK(g.get_string("missing.key", "x") == "x");
  CHECK_THROWS_AS(g.get_int("missing.key"), engine::error);
  CHECK_THROWS_AS(g.get_int("general.architecture"), engine::error);  // a string
  CHECK_THROWS_AS(g.get_string_array("tokenizer.ggml.scores"), engine::error);

  CHECK(g.tensors().size() == 48);
  const engine::tensor& emb = g.get_tensor("token_embd.weight");
  CHECK(emb.type == engine::ggml_type::F32);
  CHECK(emb.n_dims == 2);
  CHECK(emb.cols() == 64);
  CHECK(emb.rows() == 512);
  CHECK(emb.nbytes == 64 * 512 * 4);
  CHECK(g.find_tensor("no.such.tensor") == nullptr);
  CHECK_THROWS_WITH_AS(g.get_tensor("no.such.tensor"), doctest::Contains("no.such.tensor"),
                       engine::error);
  // Every tensor lies inside the file, aligned, and the data section is packed in order.
  size_t total = 0;
  for (const engine::tensor& t : g.tensors()) {
    const size_t off = static_cast<size_t>(t.data - g.tensors()[0].data) + g.data_offset();
    CHECK(off % g.alignment() == 0);
    CHECK(off + t.nbytes <= g.file_size());
    total += t.nbytes;
  }
  CHECK(total <= g.file_size() - g.data_offset());
  // RMS-norm weights of a trained model are finite and mostly positive.
  const engine::tensor& norm = g.get_tensor("output_norm.weight");
  float first;
  std::memcpy(&first, norm.data, 4);
  CHECK(std::isfinite(first));
}

TEST_CASE("vocab GGUFs: large string arrays") {
  const std::string spm = data_file("vocab/ggml-vocab-llama-spm.gguf");
  if (present(spm)) {
    gguf g(spm);
    CHECK(g.tensors().empty());
    const auto tokens = g.get_string_array("tokenizer.ggml.tokens");
    REQUIRE(tokens.size() == 32000);
    CHECK(tokens[0] == "<unk>");
    CHECK(tokens[1] == "<s>");
    CHECK(tokens[2] == "</s>");
    CHECK(g.get_float_array("tokenizer.ggml.scores").size() == 32000);
    CHECK(g.get_bool("tokenizer.ggml.add_bos_token", false) == true);
    CHECK(g.get_int("tokenizer.ggml.bos_token_id") == 1);
  }
  const std::string gpt2 = data_file("vocab/ggml-vocab-gpt-2.gguf");
  if (present(gpt2)) {
    gguf g(gpt2);
    CHECK(g.architecture() == "gpt2");
    CHECK(g.get_string("tokenizer.ggml.model") == "gpt2");
    const auto tokens = g.get_string_array("tokenizer.ggml.tokens");
    REQUIRE(tokens.size() == 50257);
    CHECK(tokens[0] == "!");
    CHECK(tokens[50256] == "<|endoftext|>");
    const auto merges = g.get_string_array("tokenizer.ggml.merges");
    REQUIRE(merges.size() == 50000);
    CHECK(merges[0] == "\xC4\xA0 t");  // "Ġ t"
  }
}

TEST_CASE("every metadata value type, nested arrays, tensors, alignment") {
  gguf_builder b;
  b.header(2, 17, 2);
  b.key("u8", 0).u8(200);
  b.key("i8", 1).pod<int8_t>(-5);
  b.key("u16", 2).pod<uint16_t>(60000);
  b.key("i16", 3).pod<int16_t>(-30000);
  b.kv_u32("u32", 4000000000u);
  b.key("i32", 5).pod<int32_t>(-2000000000);
  b.key("f32", 6).pod<float>(1.5f);
  b.key("bool", 7).u8(1);
  b.kv_str("str", "hello");
  b.key("u64", 10).u64(1ull << 40);
  b.key("i64", 11).pod<int64_t>(-(1ll << 40));
  b.key("f64", 12).pod<double>(-0.25);
  b.key("arr_str", 9).u32(8).u64(2).str("a").str("bc");
  b.key("arr_f32", 9).u32(6).u64(3).pod<float>(1).pod<float>(2).pod<float>(3);
  b.key("arr_i16", 9).u32(3).u64(2).pod<int16_t>(-1).pod<int16_t>(7);
  // [[1, 2], []] as arrays of uint8
  b.key("arr_arr", 9).u32(9).u64(2).u32(0).u64(2).u8(1).u8(2).u32(0).u64(0);
  b.key("general.alignment", 4).u32(64);
  b.tensor_info("a", {4, 2}, 0, 0);  // 32 bytes of f32
  b.tensor_info("b", {32}, 8, 64);   // one Q8_0 block
  b.pad(64);
  const size_t data_start = b.bytes.size();
  for (int k = 0; k < 8; ++k) b.pod<float>(static_cast<float>(k));
  b.pad(64);
  b.pod<uint16_t>(0x3C00);  // d = 1
  for (int k = 0; k < 32; ++k) b.pod<int8_t>(static_cast<int8_t>(k));

  gguf g(std::span<const uint8_t>(b.bytes), "mem");
  CHECK(g.version() == 2);
  CHECK(g.get_int("u8") == 200);
  CHECK(g.get_int("i8") == -5);
  CHECK(g.get_int("u16") == 60000);
  CHECK(g.get_int("i16") == -30000);
  CHECK(g.get_int("u32") == 4000000000ll);
  CHECK(g.get_int("i32") == -2000000000);
  CHECK(g.get_float("f32", 0) == 1.5);
  CHECK(g.get_bool("bool", false));
  CHECK(g.get_string("str") == "hello");
  CHECK(g.get_int("u64") == (1ll << 40));
  CHECK(g.get_int("i64") == -(1ll << 40));
  CHECK(g.get_float("f64", 0) == -0.25);
  CHECK(g.get_float("u8", 0) == 200.0);
  CHECK(g.get_string_array("arr_str") == std::vector<std::string>{"a", "bc"});
  CHECK(g.get_float_array("arr_f32") == std::vector<float>{1, 2, 3});
  CHECK(g.get_int_array("arr_i16") == std::vector<int64_t>{-1, 7});
  const engine::gguf_value* nested = g.find("arr_arr");
  REQUIRE(nested != nullptr);
  REQUIRE(nested->items.size() == 2);
  CHECK(nested->items[0].count == 2);
  CHECK(nested->items[0].raw[1] == 2);
  CHECK(nested->items[1].count == 0);
  CHECK_THROWS_WITH_AS(g.get_float_array("arr_str"), doctest::Contains("array of string"),
                       engine::error);
  CHECK_THROWS_WITH_AS(g.get_string("u32"), doctest::Contains("'u32' is uint32, expected string"),
                       engine::error);
  CHECK(g.alignment() == 64);
  CHECK(g.data_offset() == data_start);
  REQUIRE(g.tensors().size() == 2);
  const engine::tensor& a = g.get_tensor("a");
  CHECK(a.data == b.bytes.data() + data_start);
  CHECK(a.cols() == 4);
  CHECK(a.rows() == 2);
  const engine::tensor& t = g.get_tensor("b");
  CHECK(t.type == engine::ggml_type::Q8_0);
  CHECK(t.nbytes == 34);
  CHECK(t.data == b.bytes.data() + data_start + 64);
}

TEST_CASE("malformed files: each error names what and where") {
  CHECK(parse_error(gguf_builder{}).find("not a GGUF file") != std::string::npos);
  {
    gguf_builder b;
    b.raw("GGUG", 4).u32(3).u64(0).u64(0);
    const std::string e = parse_error(b);
    CHECK(e.rfind("error: not a GGUF file: magic is 'GGUG'", 0) == 0);
    CHECK(e.find("(test.gguf: offset 0)") != std::string::npos);
  }
  {
    gguf_builder b;
    b.header(0, 0, 1);
    CHECK(parse_error(b).find("version 1 is not supported") != std::string::npos);
  }
  {
    gguf_builder b;
    b.header(0, 0, 0x03000000u);
    CHECK(parse_error(b).find("big-endian") != std::string::npos);
  }
  {
    gguf_builder b;
    b.header(0, 0);
    b.bytes.resize(10);  // truncated in the tensor count
    CHECK(parse_error(b).find("tensor count needs 8 bytes but only 2 remain") != std::string::npos);
  }
  {
    gguf_builder b;
    b.header(0, 1ull << 60);
    CHECK(parse_error(b).find("metadata count 1152921504606846976 cannot fit") !=
          std::string::npos);
  }
  {
    gguf_builder b;
    b.header(1ull << 40, 0);
    CHECK(parse_error(b).find("tensor count") != std::string::npos);
  }
  {
    gguf_builder b;
    b.header(0, 1).key("k", 8).u64(1000).raw("abc", 3);
    const std::string e = parse_error(b);
    CHECK(e.find("string value length 1000 runs past the end") != std::string::npos);
    CHECK(e.find("key 'k'") != std::string::npos);
  }
  {
    gguf_builder b;
    b.header(0, 1).key("k", 9).u32(4).u64(1ull << 62);
    CHECK(parse_error(b).find("array of 4611686018427387904 uint32 elements cannot fit") !=
          std::string::npos);
  }
  {
    gguf_builder b;
    b.header(0, 1).key("k", 13).u32(0);
    CHECK(parse_error(b).find("unknown metadata value type 13") != std::string::npos);
  }
  {
    gguf_builder b;
    b.header(0, 2).kv_u32("k", 1).kv_u32("k", 2);
    CHECK(parse_error(b).find("duplicate metadata key") != std::string::npos);
  }
  {
    gguf_builder b;  // nesting bomb: arrays of arrays of ...
    b.header(0, 1).key("k", 9);
    for (int d = 0; d < 20; ++d) b.u32(9).u64(1);
    b.u32(0).u64(0);
    CHECK(parse_error(b).find("nested deeper") != std::string::npos);
  }
  {
    gguf_builder b;
    b.header(0, 1).kv_u32("general.alignment", 48);
    CHECK(parse_error(b).find("alignment 48 is not a power of two") != std::string::npos);
  }
  {
    gguf_builder b;
    b.header(1, 0).tensor_info("t", {32}, 16, 0).pad(32);
    CHECK(parse_error(b).find("unsupported tensor type 16 (IQ2_XXS)") != std::string::npos);
  }
  {
    gguf_builder b;
    b.header(1, 0).tensor_info("t", {30}, 2, 0).pad(32);
    b.bytes.resize(b.bytes.size() + 64);
    CHECK(parse_error(b).find("row length 30 is not a multiple of the Q4_0 block of 32") !=
          std::string::npos);
  }
  {
    gguf_builder b;
    b.header(1, 0).tensor_info("t", {4, 5, 6, 7, 8}, 0, 0);
    CHECK(parse_error(b).find("dimension count 5") != std::string::npos);
  }
  {
    gguf_builder b;
    b.header(1, 0).tensor_info("t", {1ull << 62, 1ull << 62}, 0, 0);
    CHECK(parse_error(b).find("too large") != std::string::npos);
  }
  {
    gguf_builder b;
    b.header(1, 0).tensor_info("t", {8}, 0, 16).pad(32);
    b.bytes.resize(b.bytes.size() + 64);
    CHECK(parse_error(b).find("data offset 16 is not a multiple of the alignment 32") !=
          std::string::npos);
  }
  {
    gguf_builder b;
    b.header(1, 0).tensor_info("weights", {8}, 0, 32).pad(32);
    b.bytes.resize(b.bytes.size() + 40);  // needs 32 + 32 bytes of data
    const std::string e = parse_error(b);
    CHECK(e.find("runs past the end of the 40-byte data section") != std::string::npos);
    CHECK(e.find("tensor #0 'weights'") != std::string::npos);
  }
  {
    gguf_builder b;  // alignment 1 lets a tensor start at an odd offset: rejected as misaligned
    b.header(1, 1).kv_u32("general.alignment", 1).tensor_info("t", {32}, 8, 1);
    b.bytes.resize(b.bytes.size() + 40);
    CHECK(parse_error(b).find("is not 4-byte aligned (general.alignment is 1)") !=
          std::string::npos);
  }
  {
    gguf_builder b;
    b.header(2, 0).tensor_info("t", {8}, 0, 0).tensor_info("t", {8}, 0, 32).pad(32);
    b.bytes.resize(b.bytes.size() + 64);
    CHECK(parse_error(b).find("duplicate tensor name") != std::string::npos);
  }
}

TEST_CASE("file errors") {
  CHECK_THROWS_WITH_AS(gguf("/nonexistent/x.gguf"), doctest::Contains("cannot open file"),
                       engine::error);
  CHECK_THROWS_WITH_AS(gguf("/"), doctest::Contains("not a regular file"), engine::error);
}
