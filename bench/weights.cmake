# The engine's weight matmul benchmark links the engine library.
if(TARGET strata_matmul_bench)
  if(TARGET strata_engine)
    target_link_libraries(strata_matmul_bench PRIVATE strata_engine)
  else()
    set_target_properties(strata_matmul_bench PROPERTIES EXCLUDE_FROM_ALL ON)
  endif()
endif()
