# STRATA_SANITIZE: "" (off), "address" (ASan+UBSan), or "thread" (TSan). Applies to every
# target of the master project (tests, benchmarks, examples).
set(STRATA_SANITIZE "" CACHE STRING "Sanitizers for strata's own builds: '', address, thread")
set_property(CACHE STRATA_SANITIZE PROPERTY STRINGS "" address thread)
if(STRATA_SANITIZE STREQUAL "address")
  add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=undefined
                      -fno-omit-frame-pointer -g)
  add_link_options(-fsanitize=address,undefined)
elseif(STRATA_SANITIZE STREQUAL "thread")
  add_compile_options(-fsanitize=thread -fno-omit-frame-pointer -g)
  add_link_options(-fsanitize=thread)
elseif(NOT STRATA_SANITIZE STREQUAL "")
  message(FATAL_ERROR "STRATA_SANITIZE='${STRATA_SANITIZE}' is not one of: '', address, thread")
endif()
