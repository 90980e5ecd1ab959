# Compile-fail tests: each tests/compile_fail/<name>.cpp is an object library excluded from
# the build; its ctest test builds it and passes only when the compiler prints the expected
# static_assert message (control_ok must build).
set(strata_compile_fail
  "empty_rule_list|the rule list is empty"
  "codec_not_in_set|not in the cache's codec set"
  "rule_sets_nothing|a rule must set a K codec, a V codec or both"
  "not_a_codec|K must be a codec type"
  "not_a_selector|Selector must be a layer selector"
  "duplicate_codec_id|two codec types of the policy share a codec id"
  "reader_missing_role|i8_reader<Codec> must provide D, query_t, kOffset, state, block and product")
foreach(entry IN LISTS strata_compile_fail ITEMS "control_ok|")
  string(REPLACE "|" ";" parts "${entry}")
  list(GET parts 0 name)
  set(target strata_compile_fail_${name})
  add_library(${target} OBJECT ${CMAKE_CURRENT_SOURCE_DIR}/compile_fail/${name}.cpp)
  target_link_libraries(${target} PRIVATE strata::strata)
  # As a program that links strata::kernels sees the headers (kernel declarations only: 3 s
  # instead of 15 s of compile each); reader_missing_role needs the kernels' definitions.
  if(NOT name STREQUAL "reader_missing_role")
    target_link_libraries(${target} PRIVATE strata::kernels)
  endif()
  set_target_properties(${target} PROPERTIES EXCLUDE_FROM_ALL ON EXCLUDE_FROM_DEFAULT_BUILD ON)
  add_test(NAME compile_fail_${name}
           COMMAND ${CMAKE_COMMAND} --build ${CMAKE_BINARY_DIR} --target ${target})
  list(GET parts 1 expected)
  if(expected STREQUAL "")
    set_tests_properties(compile_fail_${name} PROPERTIES LABELS compile_fail)
  else()
    # Passes only when the build fails with the expected message (not for another reason).
    set_tests_properties(compile_fail_${name} PROPERTIES
      LABELS compile_fail PASS_REGULAR_EXPRESSION "${expected}")
  endif()
  set_tests_properties(compile_fail_${name} PROPERTIES RESOURCE_LOCK strata_build_tree)
endforeach()

find_package(Threads REQUIRED)
target_link_libraries(strata_kv_cache_test PRIVATE Threads::Threads)

# Golden fixtures (tests/golden/) are read from the source tree.
if(TARGET strata_golden_test)
  target_compile_definitions(strata_golden_test PRIVATE STRATA_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
endif()
