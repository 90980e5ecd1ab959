// Model configuration from GGUF metadata: architectures, errors, gemma3's layer map.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <string>

#include "../support/data_file.hpp"
#include "error.hpp"
#include "gguf_builder.hpp"
#include "io/gguf.hpp"
#include "model/config.hpp"
#include "model/model.hpp"

namespace {

engine_test::gguf_builder minimal(const std::string& arch, bool with_counts) {
  engine_test::gguf_builder b;
  b.bytes.reserve(512);  // (g++ 12 -O3 warns on the first insert into an empty vector)
  const uint64_t n_kv = with_counts ? 4 : 1;
  b.header(0, n_kv).kv_str("general.architecture", arch);
  if (with_counts) {
    b.kv_u32(arch + ".block_count", 2).kv_u32(arch + ".embedding_length", 64);
    b.kv_u32(arch + ".attention.head_count", 4);
  }
  return b;
}

}  // namespace

TEST_CASE("an unknown architecture is an error that names it") {
  auto b = minimal("mamba", false);
  engine::gguf f(b.bytes, "mem");
  try {
    engine::model_config::from_gguf(f);
    FAIL("no error");
  } catch (const engine::error& e) {
    const std::string w = e.what();
    CHECK(w.rfind("error: ", 0) == 0);
    CHECK(w.find("mamba") != std::string::npos);
  }
}

TEST_CASE("missing hyper-parameters are errors, not defaults") {
  auto b = minimal("llama", true);  // no feed_forward_length, no tensors
  engine::gguf f(b.bytes, "mem");
  CHECK_THROWS_AS(engine::model_config::from_gguf(f), engine::error);
}

TEST_CASE("stories260K: llama hyper-parameters") {
  const std::string path = strata_test::data_file("stories260K.gguf");
  engine::gguf f(path);
  const auto c = engine::model_config::from_gguf(f);
  CHECK(c.architecture == engine::arch::llama);
  CHECK(c.n_layer == 5);
  CHECK(c.n_embd == 64);
  CHECK(c.n_head == 8);
  CHECK(c.n_head_kv == 4);
  CHECK(c.head_k == 8);
  CHECK(c.n_vocab == 512);
  CHECK(c.rope == engine::rope_style::normal);
  CHECK(c.layers[0].rope_base == doctest::Approx(10000.0f));
  CHECK(c.n_swa_layers() == 0);
}

TEST_CASE("Gemma 3 270M: sliding-window layers and their RoPE base, described to the cache") {
  const std::string path = std::string(STRATA_CACHE_DIR) + "/models/gemma-3-270m-q4_k_m.gguf";
  if (!std::filesystem::exists(path)) {
    MESSAGE("skipped: " << path << " not found");
    return;
  }
  auto f = std::make_shared<const engine::gguf>(path);
  engine::model m(f);
  const auto& c = m.config();
  CHECK(c.architecture == engine::arch::gemma3);
  CHECK(c.rope == engine::rope_style::neox);
  CHECK(c.head_k == 256);
  CHECK(c.n_head_kv == 1);
  CHECK(c.embd_scale == doctest::Approx(std::sqrt(640.0f)));
  CHECK(c.attn_scale == doctest::Approx(1.0f / 16.0f));
  const strata::layer_map map = m.layers();
  REQUIRE(map.n_layers() == 18);
  CHECK(map.n_kv_layers() == 18);
  for (size_t il = 0; il < 18; ++il) {
    const bool global = il % 6 == 5;
    CAPTURE(il);
    CHECK((map[il].kind == strata::attention_kind::global) == global);
    CHECK(map[il].window == (global ? 0u : 512u));
    CHECK(map[il].head_dim == 256u);
    CHECK(c.layers[il].rope_base == doctest::Approx(global ? 1e6f : 1e4f));
  }
}
