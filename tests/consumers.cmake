# Not when cross-compiling: the consumer projects build for the host.
if(CMAKE_CROSSCOMPILING)
  return()
endif()
# Prove the three ways of consuming strata: find_package after install, add_subdirectory,
# and FetchContent from the local tree. Each builds tests/consumer (which compiles the
# README's minimal example) and runs it.
set(consumer_root ${CMAKE_CURRENT_BINARY_DIR}/consumers)
set(consumer_common -G ${CMAKE_GENERATOR} -DCMAKE_CXX_COMPILER=${CMAKE_CXX_COMPILER}
    -DCMAKE_BUILD_TYPE=Release)

add_test(NAME consumer_install
  COMMAND ${CMAKE_COMMAND} -S ${PROJECT_SOURCE_DIR} -B ${consumer_root}/install-build
          ${consumer_common} -DSTRATA_BUILD_TESTS=OFF -DSTRATA_BUILD_BENCH=OFF
          -DSTRATA_BUILD_EXAMPLES=OFF -DSTRATA_INSTALL=ON
          -DCMAKE_INSTALL_PREFIX=${consumer_root}/prefix)
add_test(NAME consumer_install_do
  COMMAND ${CMAKE_COMMAND} --install ${consumer_root}/install-build)
set_tests_properties(consumer_install_do PROPERTIES DEPENDS consumer_install)

foreach(mode find_package add_subdirectory fetchcontent)
  add_test(NAME consumer_${mode}_configure
    COMMAND ${CMAKE_COMMAND} -S ${CMAKE_CURRENT_SOURCE_DIR}/consumer
            -B ${consumer_root}/${mode} ${consumer_common}
            -DSTRATA_CONSUME=${mode} -DSTRATA_SOURCE_DIR=${PROJECT_SOURCE_DIR}
            -DCMAKE_PREFIX_PATH=${consumer_root}/prefix)
  add_test(NAME consumer_${mode}_build
    COMMAND ${CMAKE_COMMAND} --build ${consumer_root}/${mode})
  add_test(NAME consumer_${mode}_run COMMAND ${consumer_root}/${mode}/strata_consumer)
  set_tests_properties(consumer_${mode}_build PROPERTIES DEPENDS consumer_${mode}_configure)
  set_tests_properties(consumer_${mode}_run PROPERTIES DEPENDS consumer_${mode}_build)
  set_tests_properties(consumer_${mode}_configure consumer_${mode}_build consumer_${mode}_run
                       PROPERTIES LABELS consumer RESOURCE_LOCK consumer_${mode})
endforeach()
set_tests_properties(consumer_find_package_configure PROPERTIES DEPENDS consumer_install_do)
set_tests_properties(consumer_install consumer_install_do PROPERTIES LABELS consumer)
