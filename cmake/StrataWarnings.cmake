# strata_project_target(<target>): warnings (and -Werror when STRATA_WERROR) for strata's own
# code. Third-party headers (Highway, Boost, doctest) come in through imported targets and are
# treated as system headers, so their warnings do not fail the build.
function(strata_project_target target)
  if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
    target_compile_options(${target} PRIVATE -Wall -Wextra)
    if(STRATA_WERROR)
      target_compile_options(${target} PRIVATE -Werror)
    endif()
  endif()
endfunction()
