// The engine's forward pass against the NumPy reference on SmolLM2-135M-Instruct Q4_1 (llama)
// in STRATA_CACHE_DIR. The NumPy side is slow on a real model (135 M dequantized weights), so
// the prompt is short and the greedy run is 16 steps instead of 64.
#include "reference_util.hpp"

TEST_CASE("SmolLM2-135M Q4_1: logits and 16 greedy tokens match the NumPy reference") {
  const std::string path =
      std::string(STRATA_CACHE_DIR) + "/models/SmolLM2-135M-Instruct.Q4_1.gguf";
  if (!reftest::model_ready(path)) return;
  // "The capital of France is"
  reftest::check_against_reference(path, {504, 3575, 282, 4649, 314}, 16, "smollm2");
}
