# Every public header compiles alone (hana's way): one ctest test per header that runs the
# compiler with -fsyntax-only on a generated unit including the header twice (its guard works).
# Release host builds only. The units see the kernels' declarations (STRATA_KERNELS_PRECOMPILED,
# as with strata::kernels), so the check takes seconds; the header-only definitions are compiled
# by the tests that include them. The -inl.hpp files are re-included per SIMD target inside
# kernels.hpp, and instantiate.hpp is strata::kernels' own unit: neither stands alone.
if(CMAKE_CROSSCOMPILING OR NOT CMAKE_BUILD_TYPE STREQUAL "Release")
  return()
endif()
set(header_flags -std=c++20 -DSTRATA_KERNELS_PRECOMPILED -Werror -Wall -Wextra
    -I${PROJECT_SOURCE_DIR}/include)
foreach(dep hwy::hwy Boost::headers)
  get_target_property(dirs ${dep} INTERFACE_INCLUDE_DIRECTORIES)
  if(dirs)
    list(REMOVE_ITEM dirs ${CMAKE_CXX_IMPLICIT_INCLUDE_DIRECTORIES})
    foreach(dir IN LISTS dirs)
      list(APPEND header_flags -isystem ${dir})
    endforeach()
  endif()
endforeach()
file(GLOB_RECURSE strata_public_headers CONFIGURE_DEPENDS RELATIVE ${PROJECT_SOURCE_DIR}/include
     ${PROJECT_SOURCE_DIR}/include/strata/*.hpp)
list(FILTER strata_public_headers EXCLUDE REGEX "-inl\\.hpp$|/instantiate\\.hpp$")
foreach(header IN LISTS strata_public_headers)
  string(REGEX REPLACE "^strata/|\\.hpp$" "" name ${header})
  string(REPLACE "/" "_" name ${name})
  set(unit ${CMAKE_CURRENT_BINARY_DIR}/headers/${name}.cpp)
  file(CONFIGURE OUTPUT ${unit} CONTENT "#include <${header}>\n#include <${header}>\n")
  add_test(NAME header_${name} COMMAND ${CMAKE_CXX_COMPILER} ${header_flags} -fsyntax-only ${unit})
  set_tests_properties(header_${name} PROPERTIES LABELS headers)
endforeach()
