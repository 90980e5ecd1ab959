# strata-server against the official openai and ollama Python clients (pinned in
# tests/server/requirements.txt, installed by strata_python_env), prometheus-client and curl, on
# loopback ports the test picks. SmolLM2 serves the chat tests, stories260K the completions.
if(STRATA_ENGINE_PYTHON AND TARGET strata-server AND TARGET strata-chat)
  strata_default_model(STRATA_SERVER_MODEL)
  if(STRATA_SERVER_MODEL)
    add_test(NAME server_test
             COMMAND ${STRATA_ENGINE_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/server/server_test.py
                     ${CMAKE_RUNTIME_OUTPUT_DIRECTORY} ${STRATA_DATA_DIR} ${STRATA_SERVER_MODEL}
                     ${CMAKE_CURRENT_BINARY_DIR}/server_test)
    set_tests_properties(server_test PROPERTIES TIMEOUT 300)
  endif()
endif()

# Under ThreadSanitizer (.ci/tsan.sh) the test runs its stories260K group only (raw completions,
# streaming, 4 parallel slots, 64 connections); a race report ends the server with status 66,
# which fails the test. httplib is not instrumented: tests/server/tsan.supp.
if(STRATA_SANITIZE STREQUAL "thread" AND TEST server_test)
  set_tests_properties(server_test PROPERTIES ENVIRONMENT
    "STRATA_SERVER_TEST_ONLY=stories;TSAN_OPTIONS=halt_on_error=1:exitcode=66:suppressions=${CMAKE_CURRENT_SOURCE_DIR}/server/tsan.supp")
endif()
