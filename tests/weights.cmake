# Weights tests (GGUF reader, dequantization, matmul): the quant test compares against the
# `gguf` package's NumPy dequantizers through tests/engine/reference/quant_ref.py.
include(${PROJECT_SOURCE_DIR}/cmake/StrataPython.cmake)
if(TARGET strata_quant_test)
  strata_python_env(strata_weights_python)
  target_compile_definitions(strata_quant_test PRIVATE
    STRATA_PYTHON="${strata_weights_python}"
    STRATA_QUANT_REF="${CMAKE_CURRENT_SOURCE_DIR}/engine/reference/quant_ref.py")
endif()
if(TARGET strata_gguf_corpus_test)
  target_compile_definitions(strata_gguf_corpus_test PRIVATE
    STRATA_FUZZ_DIR="${CMAKE_CURRENT_SOURCE_DIR}/fuzz")
endif()
