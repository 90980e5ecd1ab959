#!/usr/bin/env bash
# ThreadSanitizer: the kv_cache concurrency test and the engine's thread pool test.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-tsan}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSTRATA_SANITIZE=thread \
      -DSTRATA_BUILD_BENCH=OFF
cmake --build "$build" --target strata_kv_threads_test strata_thread_pool_test
TSAN_OPTIONS=halt_on_error=1 ctest --test-dir "$build" --output-on-failure -R "kv_threads|thread_pool"
