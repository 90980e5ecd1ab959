# The README's minimal example (examples/minimal): it runs on a few head vectors, and a bad
# count is refused with a message naming it.
if(NOT TARGET strata-minimal OR CMAKE_CROSSCOMPILING)
  return()
endif()
add_test(NAME minimal_example COMMAND strata-minimal 64)
set_tests_properties(minimal_example PROPERTIES
  PASS_REGULAR_EXPRESSION "64 random head vectors.*\\| turbo6 +\\|")
add_test(NAME minimal_example_bad_count COMMAND strata-minimal 0)
set_tests_properties(minimal_example_bad_count PROPERTIES
  PASS_REGULAR_EXPRESSION "error: head vectors must be a whole number in 1..1048576, not '0'")
