#!/usr/bin/env bash
# ThreadSanitizer: the kv_cache concurrency test, the engine's thread pool test, and
# strata-server's stories260K group (raw completions, streaming, 4 slots at once, 64 connections;
# tests/server.cmake sets its TSAN_OPTIONS with tests/server/tsan.supp).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-tsan}
# One Highway target (the static one, HWY_COMPILE_ONLY_STATIC): what is checked here is the
# locking, which no target changes; every target's kernels compiled under TSan took most of
# this stage.
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSTRATA_SANITIZE=thread \
      -DCMAKE_CXX_FLAGS="-DHWY_COMPILE_ONLY_STATIC=1" -DSTRATA_BUILD_BENCH=OFF \
      -DSTRATA_TEST_CODEBOOKS=OFF
cmake --build "$build" --target strata_kv_threads_test strata_thread_pool_test strata-server
TSAN_OPTIONS=halt_on_error=1 ctest --test-dir "$build" --output-on-failure \
  -R "kv_threads|thread_pool|^server_test$"
