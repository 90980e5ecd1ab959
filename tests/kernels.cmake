# Kernels: strata_kernels_odr_test links a second translation unit that also includes the
# Highway kernels (one-definition rule across translation units).
if(TARGET strata_kernels_odr_test)
  target_sources(strata_kernels_odr_test PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/kernels/odr_second_tu.cpp)
endif()
