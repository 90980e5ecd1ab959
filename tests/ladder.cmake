# The smoke version of the quality ladder (bench/ladder.sh --smoke): stories260K
# (head dim 8: f32/f16/bf16 KV, the block codecs must be refused) and SmolLM2 at context 256
# when the model is present, with loose bounds (q8_0 PPL within 1% of f16; KLD q8_0 < turbo4 <
# q4_0; Lloyd-Max turbo4 below the fork's table; Boundary V between q8_0/turbo3 and
# q8_0/turbo2). About 30 s on 2 cores. Skips (exit 77) without shared/data.
find_program(STRATA_BASH bash)
if(STRATA_BASH AND TARGET strata-perplexity AND TARGET strata-bench AND TARGET strata-needle)
  add_test(NAME ladder_smoke
           COMMAND ${STRATA_BASH} ${PROJECT_SOURCE_DIR}/bench/ladder.sh --smoke
                   --bin ${CMAKE_RUNTIME_OUTPUT_DIRECTORY} --data ${STRATA_DATA_DIR}
                   --out ${CMAKE_CURRENT_BINARY_DIR}/ladder-smoke)
  set_tests_properties(ladder_smoke PROPERTIES
    TIMEOUT 300 SKIP_RETURN_CODE 77
    ENVIRONMENT "STRATA_CACHE_DIR=${STRATA_CACHE_DIR}")
endif()
