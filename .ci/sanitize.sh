#!/usr/bin/env bash
# ASan+UBSan build (g++) of the library, engine and tests; runs every test except the slow
# Python-reference and consumer ones (which build outside the sanitizer flags anyway).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-asan}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" \
      -DSTRATA_SANITIZE=address \
      -DSTRATA_BUILD_BENCH=OFF
cmake --build "$build"
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir "$build" --output-on-failure -j2 -LE consumer -E "ladder_smoke|model_real|model_gemma3|quant_test"
