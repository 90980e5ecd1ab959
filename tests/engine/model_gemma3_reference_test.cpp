// The engine's forward pass against the NumPy reference on Gemma 3 270M Q4_K_M (gemma3:
// sliding-window layers, QK-norm, GELU, pre/post norms, scaled embeddings) in STRATA_CACHE_DIR.
// The NumPy side is slow here (a 262144-token vocabulary), so the greedy run is 4 steps.
#include "reference_util.hpp"

TEST_CASE("Gemma 3 270M Q4_K_M: logits and 4 greedy tokens match the NumPy reference") {
  const std::string path = std::string(STRATA_CACHE_DIR) + "/models/gemma-3-270m-q4_k_m.gguf";
  if (!reftest::model_ready(path)) return;
  // <bos> "The capital of France is"
  reftest::check_against_reference(path, {2, 818, 5279, 529, 7001, 563}, 4, "gemma3_270m");
}
