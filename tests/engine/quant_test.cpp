// Dequantization of every block format against the `gguf` package's NumPy dequantizers
// (tests/engine/reference/quant_ref.py): random blocks of every type, and rows of real models.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "io/gguf.hpp"
#include "io/quant.hpp"

namespace {

struct record {
  std::string name;
  engine::ggml_type type;
  std::vector<uint8_t> raw;
  std::vector<float> values;
};

std::vector<record> read_records(const std::string& path) {
  std::vector<record> out;
  std::ifstream in(path, std::ios::binary);
  for (;;) {
    uint32_t name_len = 0;
    if (!in.read(reinterpret_cast<char*>(&name_len), 4)) break;
    record r;
    r.name.resize(name_len);
    in.read(r.name.data(), name_len);
    uint32_t type = 0;
    uint64_t n_values = 0, n_bytes = 0;
    in.read(reinterpret_cast<char*>(&type), 4);
    in.read(reinterpret_cast<char*>(&n_values), 8);
    in.read(reinterpret_cast<char*>(&n_bytes), 8);
    r.type = static_cast<engine::ggml_type>(type);
    r.raw.resize(n_bytes);
    r.values.resize(n_values);
    in.read(reinterpret_cast<char*>(r.raw.data()), static_cast<std::streamsize>(n_bytes));
    in.read(reinterpret_cast<char*>(r.values.data()), static_cast<std::streamsize>(n_values * 4));
    REQUIRE(in.good());
    out.push_back(std::move(r));
  }
  return out;
}

// Runs the reference script; false (with a MESSAGE) when Python is not available.
bool run_reference(const std::string& args, const std::string& out) {
  const std::string python = STRATA_PYTHON;
  if (python.empty()) {
    MESSAGE("skipping: no Python with numpy+gguf (strata_python_env)");
    return false;
  }
  const std::string cmd = python + " " + STRATA_QUANT_REF + " " + args + " > " + out + ".log 2>&1";
  const int rc = std::system(cmd.c_str());
  if (rc != 0) {
    std::ifstream log(out + ".log");
    std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
    FAIL("reference script failed: " << cmd << "\n" << text);
  }
  return true;
}

std::string temp_path(const char* stem) {
  return (std::filesystem::temp_directory_path() /
          (std::string(stem) + "-" + std::to_string(::getpid()) + ".bin"))
      .string();
}

// Compares dequantize(raw) with the reference, block by block: the tolerance is relative to the
// largest magnitude in the block (the reference may round d*sc*q in another order).
void check_record(const record& r, const uint8_t* raw) {
  INFO(r.name << " (" << engine::type_name(r.type) << ")");
  const int64_t n = static_cast<int64_t>(r.values.size());
  REQUIRE(n % engine::block_values(r.type) == 0);
  REQUIRE(static_cast<int64_t>(r.raw.size()) ==
          n / engine::block_values(r.type) * engine::block_bytes(r.type));
  std::vector<float> got(static_cast<size_t>(n));
  engine::dequantize(r.type, raw, got.data(), n);
  const int64_t bv = std::max<int64_t>(engine::block_values(r.type), 32);
  int64_t bad = 0;
  for (int64_t b = 0; b < n; b += bv) {
    float scale = 0;
    for (int64_t i = b; i < b + bv && i < n; ++i)
      if (std::isfinite(r.values[static_cast<size_t>(i)]))
        scale = std::max(scale, std::fabs(r.values[static_cast<size_t>(i)]));
    for (int64_t i = b; i < b + bv && i < n; ++i) {
      const float want = r.values[static_cast<size_t>(i)], have = got[static_cast<size_t>(i)];
      const bool ok = std::isfinite(want)
                          ? std::fabs(have - want) <= 2e-6f * scale
                          : (have == want || (std::isnan(have) && std::isnan(want)));
      if (!ok && bad++ < 5) MESSAGE("value " << i << ": got " << have << ", reference " << want);
    }
  }
  CHECK(bad == 0);
}

void check_model(const std::string& model, int expect_types) {
  if (!std::filesystem::exists(model)) {
    MESSAGE("skipping: " << model << " not found");
    return;
  }
  const std::string out = temp_path("quant-model");
  if (!run_reference("model " + model + " " + out + " 4", out)) return;
  const auto records = read_records(out);
  std::filesystem::remove(out);
  std::filesystem::remove(out + ".log");
  CHECK(static_cast<int>(records.size()) == expect_types);
  engine::gguf g(model);
  for (const record& r : records) {
    const engine::tensor& t = g.get_tensor(r.name);
    CHECK(t.type == r.type);
    REQUIRE(t.nbytes >= r.raw.size());
    CHECK(std::memcmp(t.data, r.raw.data(), r.raw.size()) == 0);  // the reader found the same bytes
    check_record(r, t.data);
  }
}

}  // namespace

TEST_CASE("block sizes") {
  using engine::ggml_type;
  CHECK(engine::block_values(ggml_type::F32) == 1);
  CHECK(engine::block_bytes(ggml_type::BF16) == 2);
  CHECK(engine::block_values(ggml_type::Q5_1) == 32);
  CHECK(engine::block_bytes(ggml_type::Q5_1) == 24);
  CHECK(engine::block_values(ggml_type::Q6_K) == 256);
  CHECK(engine::block_bytes(ggml_type::Q6_K) == 210);
  CHECK_THROWS_WITH_AS(engine::block_values(static_cast<ggml_type>(16)),
                       doctest::Contains("unsupported tensor type 16"), engine::error);
  float out[32];
  const uint8_t zeros[34] = {};
  CHECK_THROWS_WITH_AS(engine::dequantize(ggml_type::Q8_0, zeros, out, 31),
                       doctest::Contains("not a multiple"), engine::error);
}

TEST_CASE("half conversions: all 65536 values round-trip; midpoints round to even") {
  int bad = 0;
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = engine::half_to_float(static_cast<uint16_t>(h));
    const uint16_t back = engine::float_to_half(f);
    if (std::isnan(f) ? (back & 0x7C00u) != 0x7C00u || (back & 0x3FFu) == 0 : back != h) ++bad;
  }
  CHECK(bad == 0);
  bad = 0;
  for (uint32_t h = 0; h < 0x7BFF; ++h) {  // consecutive positive finite halves a < b
    const float a = engine::half_to_float(static_cast<uint16_t>(h));
    const float b = engine::half_to_float(static_cast<uint16_t>(h + 1));
    const float mid = (a + b) / 2;  // exact in float
    const uint16_t even = (h & 1u) ? static_cast<uint16_t>(h + 1) : static_cast<uint16_t>(h);
    bad += engine::float_to_half(mid) != even;
    bad += engine::float_to_half(std::nextafter(mid, 0.0f)) != h;
    bad += engine::float_to_half(std::nextafter(mid, 1e9f)) != h + 1;
    bad += engine::float_to_half(-mid) != (even | 0x8000u);
  }
  CHECK(bad == 0);
  CHECK(engine::float_to_half(65520.0f) == 0x7C00u);  // rounds to infinity
  CHECK(engine::float_to_half(65519.99f) == 0x7BFFu);
  CHECK(engine::float_to_half(1e-9f) == 0);
  CHECK(engine::bf16_to_float(0x3F80) == 1.0f);
}

TEST_CASE("Q8_1 and Q8_K (no reference in the gguf package): x = d * q") {
  engine::block_q8_1 b1{};
  b1.d = engine::float_to_half(0.5f);
  for (int j = 0; j < 32; ++j) b1.qs[j] = static_cast<int8_t>(j - 16);
  float y[256];
  engine::dequantize(engine::ggml_type::Q8_1, &b1, y, 32);
  for (int j = 0; j < 32; ++j) CHECK(y[j] == 0.5f * static_cast<float>(j - 16));
  engine::block_q8_K bk{};
  bk.d = 0.25f;
  for (int j = 0; j < 256; ++j) bk.qs[j] = static_cast<int8_t>(j - 128);
  engine::dequantize(engine::ggml_type::Q8_K, &bk, y, 256);
  for (int j = 0; j < 256; ++j) CHECK(y[j] == 0.25f * static_cast<float>(j - 128));
}

TEST_CASE("random blocks of every type match gguf.quants.dequantize") {
  const std::string out = temp_path("quant-random");
  if (!run_reference("random " + out + " 12345", out)) return;
  const auto records = read_records(out);
  std::filesystem::remove(out);
  std::filesystem::remove(out + ".log");
  CHECK(records.size() == 13);  // Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q2_K..Q6_K F32 F16 BF16
  for (const record& r : records) check_record(r, r.raw.data());
}

TEST_CASE("rows of SmolLM2-135M-Instruct Q4_1 (Q4_1, Q8_0 tensors)") {
  check_model(std::string(STRATA_CACHE_DIR) + "/models/SmolLM2-135M-Instruct.Q4_1.gguf", 2);
}

TEST_CASE("rows of gemma-3-270m Q4_K_M (Q8_0, Q5_0, Q4_K, Q6_K tensors)") {
  check_model(std::string(STRATA_CACHE_DIR) + "/models/gemma-3-270m-q4_k_m.gguf", 4);
}
