# The instruction gate: the code of every built binary of this build -- library tests, engine,
# tools, benchmarks -- is decoded and each Highway target's code is checked against what that
# target's run-time check proves (tests/isa/isa_gate.py; allow-list tests/isa/guarded.txt).
# isa_gate_selftest proves the gate can fail: a VEX vpdpbusd in AVX3_DL code (the Zen 4
# SIGILL) must be refused with its feature named. .ci/aarch64.sh runs both on the Arm build.
# Needs the project venv (iced-x86, pyelftools); without it the tests fail and say so, since
# the gate is what keeps a CPU without AVX-VNNI from crashing.
if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64|amd64")
  set(isa_arch x86)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "aarch64|arm64")
  set(isa_arch arm)
else()
  return()
endif()
strata_python_env(strata_isa_python)
if(NOT strata_isa_python)
  add_test(NAME isa_gate COMMAND ${CMAKE_COMMAND} -E echo
           "error: isa_gate needs the project venv (python3-venv, PyPI iced-x86 and pyelftools)")
  set_tests_properties(isa_gate PROPERTIES WILL_FAIL ON)
  return()
endif()
set(isa_dir ${CMAKE_CURRENT_SOURCE_DIR}/isa)
# ctest runs after the whole build, so the gate reads every object file the build compiled for
# its programs (library, tests, engine, tools, benchmarks): the code of every built binary, each
# function decoded once (the 58 linked programs hold 68 M instructions of relocated copies, 103 s
# of a CI run; their objects 3.5 M, 11 s). Not the consumer checks' or the fixtures' builds, which
# other tests write while this one runs.
set(isa_objects ${PROJECT_BINARY_DIR}/CMakeFiles ${CMAKE_CURRENT_BINARY_DIR}/CMakeFiles
                ${PROJECT_BINARY_DIR}/tools)
if(STRATA_BUILD_EXAMPLES)
  list(APPEND isa_objects ${PROJECT_BINARY_DIR}/examples)
endif()
if(STRATA_BUILD_BENCH)
  list(APPEND isa_objects ${PROJECT_BINARY_DIR}/bench)
endif()
add_test(NAME isa_gate
         COMMAND ${strata_isa_python} ${isa_dir}/isa_gate.py --allow ${isa_dir}/guarded.txt
                 --objects ${isa_objects})
add_test(NAME isa_gate_selftest
         COMMAND ${strata_isa_python} ${isa_dir}/gate_selftest.py --arch ${isa_arch}
                 --cxx ${CMAKE_CXX_COMPILER} --workdir ${CMAKE_CURRENT_BINARY_DIR}/isa-fixtures)
