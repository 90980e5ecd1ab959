// The engine's forward pass against an independent NumPy forward pass (tests/engine/reference/):
// stories260K (real, llama) and small random-weight GGUFs of every architecture.
#include <filesystem>
#include <fstream>

#include "../support/data_file.hpp"
#include "reference_util.hpp"

namespace {

const std::vector<int32_t> kTinyPrompt = {1, 5, 9, 20, 33, 47, 60, 71, 88, 99, 120, 150};

void tiny(const std::string& arch) {
  if (!reftest::have_python()) {
    MESSAGE("skipped: no Python with numpy + gguf (strata_python_env)");
    return;
  }
  const std::string path = (reftest::tmp_dir() / ("tiny_" + arch + ".gguf")).string();
  REQUIRE(reftest::run_script("make_tiny.py", arch + " " + reftest::quote(path)));
  reftest::check_against_reference(path, kTinyPrompt, 64, "tiny_" + arch);
}

}  // namespace

TEST_CASE("stories260K: logits and 64 greedy tokens match the NumPy reference") {
  const std::string path = strata_test::data_file("stories260K.gguf");
  if (!reftest::have_python()) {
    MESSAGE("skipped: no Python with numpy + gguf (strata_python_env)");
    return;
  }
  reftest::check_against_reference(path, {1, 403, 407, 261, 378, 306, 285, 263}, 64, "stories260K");
}

TEST_CASE("tiny random llama matches the reference") { tiny("llama"); }
TEST_CASE("tiny random qwen2 (QKV bias, tied output) matches the reference") { tiny("qwen2"); }
TEST_CASE("tiny random qwen3 (QK-norm, head_dim 32) matches the reference") { tiny("qwen3"); }
TEST_CASE("tiny random gemma3 (sliding window, GELU, post-norms) matches the reference") {
  tiny("gemma3");
}

TEST_CASE("batched prefill equals token-by-token decoding") {
  const std::string path = strata_test::data_file("stories260K.gguf");
  auto file = std::make_shared<const engine::gguf>(path);
  engine::model m(file);
  const int V = m.config().n_vocab;
  engine::thread_pool pool(0);
  const std::vector<int32_t> prompt = {1, 403, 407, 261, 378, 306, 285, 263, 300, 301, 302};
  const int n = int(prompt.size());
  for (bool exact : {true, false}) {
    engine::forward_options opt;
    opt.exact = exact;
    engine::kv_f32 a(m.config(), 32), b(m.config(), 32);
    std::vector<float> la(size_t(n) * V), lb(size_t(n) * V);
    opt.n_batch = 4;  // several internal batches
    m.forward(prompt, 0, a, pool, la.data(), n, opt);
    for (int i = 0; i < n; ++i)
      m.forward({&prompt[size_t(i)], 1}, i, b, pool, lb.data() + size_t(i) * V, 1, opt);
    const auto [err, mx] = reftest::max_err(la.data(), lb.data(), la.size());
    CHECK(err <= 1e-5 * mx + 1e-6);
  }
}

TEST_CASE("context overflow and bad tokens are errors, never a write past the cache") {
  const std::string path = strata_test::data_file("stories260K.gguf");
  auto file = std::make_shared<const engine::gguf>(path);
  engine::model m(file);
  engine::thread_pool pool(1);
  engine::kv_f32 kv(m.config(), 4);
  const std::vector<int32_t> five = {1, 2, 3, 4, 5};
  CHECK_THROWS_AS(m.forward(five, 0, kv, pool, nullptr, 0), engine::error);
  const std::vector<int32_t> bad = {1, 100000};
  CHECK_THROWS_AS(m.forward(bad, 0, kv, pool, nullptr, 0), engine::error);
  const std::vector<int32_t> two = {1, 2};
  CHECK_THROWS_AS(m.forward(two, 3, kv, pool, nullptr, 0), engine::error);  // past size()
  m.forward(two, 0, kv, pool, nullptr, 0);
  CHECK(kv.size() == 2);
}

TEST_CASE("a NaN activation is a clear error naming the layer") {
  if (!reftest::have_python()) {
    MESSAGE("skipped: no Python with numpy + gguf (strata_python_env)");
    return;
  }
  const std::string path = (reftest::tmp_dir() / "tiny_llama_nan.gguf").string();
  REQUIRE(reftest::run_script("make_tiny.py", "llama " + reftest::quote(path) + " --poison"));
  auto file = std::make_shared<const engine::gguf>(path);
  engine::model m(file);
  engine::thread_pool pool(1);
  engine::kv_f32 kv(m.config(), 16);
  std::vector<float> logits(static_cast<size_t>(m.config().n_vocab));
  try {
    m.forward(kTinyPrompt, 0, kv, pool, logits.data(), 1);
    FAIL("no error");
  } catch (const engine::error& e) {
    const std::string w = e.what();
    CHECK(w.rfind("error: non-finite activation", 0) == 0);
    CHECK(w.find("layer 1") != std::string::npos);
  }
}
