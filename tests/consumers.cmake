# Not when cross-compiling: the consumer projects build for the host.
if(CMAKE_CROSSCOMPILING)
  return()
endif()
# Prove the three ways of consuming strata: find_package after install, add_subdirectory,
# and FetchContent from the local tree, and both ways of compiling the kernels: find_package
# and FetchContent link strata::kernels (the installed library, or one the consumer builds),
# add_subdirectory compiles them header-only. Each builds tests/consumer (the README's minimal
# example and kv_cache.hpp's example; header-only only the latter) and runs the programs.
set(consumer_root ${CMAKE_CURRENT_BINARY_DIR}/consumers)
set(consumer_common -G ${CMAKE_GENERATOR} -DCMAKE_CXX_COMPILER=${CMAKE_CXX_COMPILER})
# Every consumer build has no build type (no optimization: what they prove is the CMake wiring,
# and the kernels compile about 4x faster, docs/reliability.md); the README build itself is the
# Release one.
set(consumer_build_type_find_package "")
set(consumer_build_type_add_subdirectory "")
set(consumer_build_type_fetchcontent "")
# The two consumers that compile strata's kernels themselves (add_subdirectory header-only,
# FetchContent's strata::kernels) compile them for Highway's static target only: the wiring is
# what they prove, and every target's kernels are compiled and checked in this build
# (kernels_test, kernels_odr_test). 159 s and 122 s of ctest -j2 with every target.
set(consumer_flags_find_package "")
set(consumer_flags_add_subdirectory -DHWY_COMPILE_ONLY_STATIC=1)
set(consumer_flags_fetchcontent -DHWY_COMPILE_ONLY_STATIC=1)

# The installed package comes from this build's own install rules (STRATA_INSTALL, on for the
# top-level project): strata::kernels as this build compiled it, the headers, the CMake package
# files. (A separate install-only build compiled the kernels a second time: 178 s of ctest -j2.)
# Without install rules (-DSTRATA_INSTALL=OFF) the find_package consumer is left out.
set(consumer_modes add_subdirectory fetchcontent)
if(STRATA_INSTALL)
  add_test(NAME consumer_install
    COMMAND ${CMAKE_COMMAND} --install ${PROJECT_BINARY_DIR} --prefix ${consumer_root}/prefix)
  set_tests_properties(consumer_install PROPERTIES LABELS consumer)
  list(PREPEND consumer_modes find_package)
endif()

# The minimal example's head vectors per run: FetchContent's unoptimized kernels took 147 s of
# ctest -j2 for the default 4096 (every codec, three encodes and five score passes each).
set(consumer_rows_find_package "")
set(consumer_rows_fetchcontent 64)
set(consumer_link_find_package kernels)
set(consumer_link_add_subdirectory header_only)
set(consumer_link_fetchcontent kernels)
foreach(mode IN LISTS consumer_modes)
  add_test(NAME consumer_${mode}_configure
    COMMAND ${CMAKE_COMMAND} -S ${CMAKE_CURRENT_SOURCE_DIR}/consumer
            -B ${consumer_root}/${mode} ${consumer_common}
            -DCMAKE_BUILD_TYPE=${consumer_build_type_${mode}}
            "-DCMAKE_CXX_FLAGS=${consumer_flags_${mode}}"
            -DSTRATA_CONSUME=${mode} -DSTRATA_LINK=${consumer_link_${mode}}
            -DSTRATA_SOURCE_DIR=${PROJECT_SOURCE_DIR}
            -DCMAKE_PREFIX_PATH=${consumer_root}/prefix)
  add_test(NAME consumer_${mode}_build
    COMMAND ${CMAKE_COMMAND} --build ${consumer_root}/${mode})
  if(consumer_link_${mode} STREQUAL "kernels")
    # ... and the program's own object holds no per-target kernel code.
    add_test(NAME consumer_${mode}_run COMMAND ${CMAKE_COMMAND} -E chdir ${consumer_root}/${mode}
             sh -c "./strata_consumer ${consumer_rows_${mode}} && ./strata_consumer_cache && ! nm -C CMakeFiles/strata_consumer_cache.dir/kv_cache_example.cpp.o | grep -q kernels::N_")
  else()
    # ... and the subproject did not build strata::kernels, which nothing links.
    add_test(NAME consumer_${mode}_run COMMAND ${CMAKE_COMMAND} -E chdir ${consumer_root}/${mode}
             sh -c "./strata_consumer_cache && test ! -e strata/libstrata_kernels.a")
  endif()
  set_tests_properties(consumer_${mode}_build PROPERTIES DEPENDS consumer_${mode}_configure)
  set_tests_properties(consumer_${mode}_run PROPERTIES DEPENDS consumer_${mode}_build)
  set_tests_properties(consumer_${mode}_configure consumer_${mode}_build consumer_${mode}_run
                       PROPERTIES LABELS consumer RESOURCE_LOCK consumer_${mode})
endforeach()
if(STRATA_INSTALL)
  set_tests_properties(consumer_find_package_configure PROPERTIES DEPENDS consumer_install)
endif()
