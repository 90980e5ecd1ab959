# Tokenizer tests' extra: reference splits for the BPE pre-tokenizers, made with Python's
# `regex` module (tests/engine/reference/pretokenize_ref.py) by a fixture before tokenizer_test runs.
# Without python3 + regex the comparison is skipped (tokenizer_test says so).
if(TEST tokenizer_test)
  find_package(Python3 COMPONENTS Interpreter QUIET)
  set(strata_has_regex OFF)
  if(Python3_FOUND)
    execute_process(COMMAND ${Python3_EXECUTABLE} -c "import regex"
                    RESULT_VARIABLE rc OUTPUT_QUIET ERROR_QUIET)
    if(rc EQUAL 0)
      set(strata_has_regex ON)
    endif()
  endif()
  if(strata_has_regex)
    set(ref_dir ${CMAKE_CURRENT_BINARY_DIR}/pretokenize_ref)
    add_test(NAME pretokenize_ref
             COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/engine/reference/pretokenize_ref.py
                     ${ref_dir} ${STRATA_DATA_DIR}/vocab/ggml-vocab-llama-spm.gguf.inp)
    set_tests_properties(pretokenize_ref PROPERTIES FIXTURES_SETUP strata_pretokenize_ref)
    set_tests_properties(tokenizer_test PROPERTIES FIXTURES_REQUIRED strata_pretokenize_ref
                         ENVIRONMENT STRATA_PRETOKENIZE_REF=${ref_dir})
  else()
    message(STATUS "strata: no python3 with `regex`; pre-tokenizer reference splits skipped")
  endif()
endif()
