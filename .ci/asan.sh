#!/usr/bin/env bash
# ASan + UBSan subset for .ci/run: every codec (codec, half, kernels), the cache (kv_cache,
# typed_cache, policy, rotation), the GGUF reader (gguf, gguf_corpus), the atomic writer and the
# replayed fuzz corpora of the other readers (atomic_file, fuzz_corpus), built for one Highway
# target (AVX2, HWY_COMPILE_ONLY_STATIC) so that it fits the CI budget. The other targets run
# in the Release suite (README command 2) and under qemu (.ci/aarch64.sh); the whole suite
# under ASan with every target is .ci/sanitize.sh (about 2 h here, docs/reliability.md).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-asan-ci}
tests=(codec half kernels kv_cache typed_cache policy rotation gguf gguf_corpus atomic_file fuzz_corpus)
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" \
      -DCMAKE_CXX_FLAGS="-march=haswell -DHWY_COMPILE_ONLY_STATIC=1" \
      -DSTRATA_SANITIZE=address -DSTRATA_BUILD_BENCH=OFF
targets=("${tests[@]/#/strata_}"); targets=("${targets[@]/%/_test}")
cmake --build "$build" --target "${targets[@]}"
regex=$(IFS='|'; echo "^(${tests[*]/%/_test})\$")
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir "$build" --output-on-failure -j2 -R "$regex"
