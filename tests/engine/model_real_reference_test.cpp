// The engine's forward pass against the NumPy reference on the real models in STRATA_CACHE_DIR
// (SmolLM2-135M-Instruct Q4_1: llama; Gemma 3 270M Q4_K_M: gemma3). The NumPy side is slow on
// these (hundreds of millions of dequantized weights), so the prompts are short and the greedy
// runs are 16 steps (SmolLM2) and 4 steps (Gemma 3) instead of 64.
#include <filesystem>

#include "reference_util.hpp"

namespace {

bool ready(const std::string& path) {
  if (!std::filesystem::exists(path)) {
    MESSAGE("skipped: " << path << " not found (cmake -P cmake/fetch_model.cmake fetches it)");
    return false;
  }
  if (!reftest::have_python()) {
    MESSAGE("skipped: no Python with numpy + gguf (strata_python_env)");
    return false;
  }
  return true;
}

}  // namespace

TEST_CASE("SmolLM2-135M Q4_1: logits and 16 greedy tokens match the NumPy reference") {
  const std::string path =
      std::string(STRATA_CACHE_DIR) + "/models/SmolLM2-135M-Instruct.Q4_1.gguf";
  if (!ready(path)) return;
  // "The capital of France is"
  reftest::check_against_reference(path, {504, 3575, 282, 4649, 314}, 16, "smollm2");
}

TEST_CASE("Gemma 3 270M Q4_K_M: logits and 4 greedy tokens match the NumPy reference") {
  const std::string path = std::string(STRATA_CACHE_DIR) + "/models/gemma-3-270m-q4_k_m.gguf";
  if (!ready(path)) return;
  // <bos> "The capital of France is"
  reftest::check_against_reference(path, {2, 818, 5279, 529, 7001, 563}, 4, "gemma3_270m");
}
