# libFuzzer targets: the GGUF reader (gguf_fuzz.cpp) and tests/fuzz/targets/*.cpp (the policy
# parser, the state-file loader, the KL-divergence base reader, the tokenizers, the chat
# templates; tests/fuzz/README.md). Off by default; needs clang:
#   cmake -S . -B build-fuzz -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DSTRATA_FUZZ=ON
#   cmake --build build-fuzz --target strata_gguf_fuzz
#   build-fuzz/bin/strata_gguf_fuzz -max_total_time=600 /tmp/corpus tests/fuzz/seeds tests/fuzz/corpus
# The ctest `gguf_fuzz` runs a fixed budget of runs over the seeds and the saved corpus.
option(STRATA_FUZZ "Build the libFuzzer targets (clang only)" OFF)
if(STRATA_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "STRATA_FUZZ needs clang (libFuzzer); CMAKE_CXX_COMPILER is ${CMAKE_CXX_COMPILER_ID}")
  endif()
  set(engine_src ${PROJECT_SOURCE_DIR}/examples/engine/src)
  add_executable(strata_gguf_fuzz ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/gguf_fuzz.cpp
                 ${engine_src}/io/gguf.cpp ${engine_src}/io/quant.cpp)
  target_include_directories(strata_gguf_fuzz PRIVATE ${engine_src})
  target_compile_features(strata_gguf_fuzz PRIVATE cxx_std_20)
  target_compile_options(strata_gguf_fuzz PRIVATE -fsanitize=fuzzer,address,undefined -g)
  target_link_options(strata_gguf_fuzz PRIVATE -fsanitize=fuzzer,address,undefined)
  strata_project_target(strata_gguf_fuzz)
  set(fuzz_sources_state_file)
  set(fuzz_sources_policy)
  set(fuzz_sources_kld_base
      ${engine_src}/io/kld_base.cpp ${engine_src}/io/gguf.cpp ${engine_src}/io/quant.cpp)
  set(fuzz_sources_tokenizer
      ${engine_src}/text/tokenizer.cpp ${engine_src}/text/tokenizer_spm.cpp
      ${engine_src}/text/tokenizer_bpe.cpp ${engine_src}/text/pretokenize.cpp
      ${engine_src}/text/unicode.cpp ${engine_src}/text/unicode_data.cpp
      ${engine_src}/io/gguf.cpp ${engine_src}/io/quant.cpp)
  set(fuzz_sources_chat_template
      ${engine_src}/text/chat_template.cpp ${engine_src}/io/gguf.cpp ${engine_src}/io/quant.cpp)
  foreach(name policy state_file kld_base tokenizer chat_template)
    set(exe strata_${name}_fuzz)
    add_executable(${exe} ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/entry.cpp
                   ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/targets/${name}.cpp ${fuzz_sources_${name}})
    target_compile_definitions(${exe} PRIVATE STRATA_FUZZ_TARGET=${name})
    target_include_directories(${exe} PRIVATE ${engine_src})
    target_link_libraries(${exe} PRIVATE strata::strata)
    target_compile_options(${exe} PRIVATE -fsanitize=fuzzer,address,undefined -g)
    target_link_options(${exe} PRIVATE -fsanitize=fuzzer,address,undefined)
    strata_project_target(${exe})
  endforeach()
  # New inputs go to the first directory: a scratch one in the build tree, never the sources.
  set(scratch ${CMAKE_CURRENT_BINARY_DIR}/gguf-fuzz-corpus)
  file(MAKE_DIRECTORY ${scratch})
  add_test(NAME gguf_fuzz
           COMMAND strata_gguf_fuzz -runs=50000 -max_len=4096 -artifact_prefix=${scratch}/
                   ${scratch} ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/seeds ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus)
endif()

# Every target's corpus (tests/fuzz/<target>/) and in-code seeds, replayed in every build.
if(TARGET strata_fuzz_corpus_test)
  file(GLOB fuzz_target_sources CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/targets/*.cpp)
  target_sources(strata_fuzz_corpus_test PRIVATE ${fuzz_target_sources})
  target_compile_definitions(strata_fuzz_corpus_test PRIVATE
    STRATA_FUZZ_DIR="${CMAKE_CURRENT_SOURCE_DIR}/fuzz")
endif()
