#!/usr/bin/env bash
# Cross-compile the library tests for aarch64 and run them under qemu-user on several emulated
# CPUs, so the NEON, SVE, SVE_256 and SVE2_128 kernels are compared with the scalar reference.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-aarch64}
if ! command -v aarch64-linux-gnu-g++ >/dev/null || ! command -v qemu-aarch64 >/dev/null \
   || [ ! -e /usr/lib/aarch64-linux-gnu/libhwy.so ]; then
  sudo dpkg --add-architecture arm64
  sudo apt-get update
  sudo apt-get install -y --no-install-recommends g++-aarch64-linux-gnu qemu-user libhwy-dev:arm64
fi
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/aarch64-linux-gnu.cmake \
      -DSTRATA_BUILD_BENCH=OFF -DSTRATA_BUILD_EXAMPLES=ON -DSTRATA_ENGINE_TESTS=OFF \
      -DSTRATA_TEST_CODEBOOKS=OFF
# Only what this stage runs or gates: strata::kernels, the library tests of the qemu loops below
# (their programs, read from ctest), and the engine library (its matmul's NEON code for the
# gate). The engine's tools and the tests that never run here hold only baseline code calling
# the library (about a quarter of the cross build's CPU time).
library_tests="kernels|codec|rotation|half|lloyd|quality|policy|cache|atomic_file"
mapfile -t programs < <(ctest --test-dir "$build" --show-only=json-v1 -R "$library_tests" |
  python3 -c 'import json, os, sys
for t in json.load(sys.stdin)["tests"]:
    for word in t.get("command", []):
        if os.path.dirname(word) == sys.argv[1]: print(os.path.basename(word))' "$(cd "$build" && pwd)/bin")
if [ "${#programs[@]}" -lt 10 ]; then
  echo "error: ctest names only ${#programs[@]} library test programs in $build" >&2
  exit 1
fi
cmake --build "$build" --target strata_kernels strata_engine "${programs[@]}"
# The instruction gate on the Arm build's object files (library, its tests, engine: each
# function once): NEON code may not use dotprod, fp16 or SVE, SVE code no SVE2
# (tests/isa/isa_gate.py); and its fixtures prove it can fail (an Advanced SIMD sdot in NEON code).
venv_py=${STRATA_CACHE_DIR:-$HOME/.cache/strata}/venv/bin/python3
"$venv_py" tests/isa/isa_gate.py --allow tests/isa/guarded.txt --objects "$build/CMakeFiles" \
  "$build/tests/CMakeFiles" "$build/examples"
"$venv_py" tests/isa/gate_selftest.py --arch arm --cxx aarch64-linux-gnu-g++ \
  --workdir "$build/isa-fixtures"
# kernels_test compares every kernel with the scalar reference. qemu's SVE is slow (one test
# case: 23 s per SVE target at 512 bits against 2 s for NEON here), so each CPU tests the
# targets that are new on it and every target runs at least once: scalable SVE at 128 bits
# (where a 32-byte plane cap once broke it), SVE2 at 512 and 256, the fixed SVE_256 and
# SVE2_128, NEON (scalable SVE at 512 bits no longer: SVE2 there runs the same vector length).
# Its test cases run as separate processes, two at a time, with the long case at 131 keys
# instead of 1000 (STRATA_TEST_LONG_KEYS; 1000 natively).
kernels=$(find "$build" -name strata_kernels_test -type f | head -n 1)
run_kernels() {  # $1 = QEMU_CPU, $2 = targets
  echo "== QEMU_CPU=$1 STRATA_TEST_TARGETS='$2' strata_kernels_test"
  # Each name goes to --test-case, which splits at commas: a name with one would run nothing.
  if QEMU_CPU=$1 qemu-aarch64 "$kernels" --list-test-cases --no-version | grep -q ','; then
    echo "error: a strata_kernels_test case name holds a comma (doctest would split it)" >&2
    exit 1
  fi
  QEMU_CPU=$1 qemu-aarch64 "$kernels" --list-test-cases --no-version | sed -n '/^=*$/d; /^\[doctest\]/d; p' \
    | QEMU_CPU=$1 STRATA_TEST_TARGETS=$2 STRATA_TEST_LONG_KEYS=131 xargs -d '\n' -P 2 -I{} \
        sh -c 'qemu-aarch64 "$0" --no-version --test-case="$1" > /dev/null 2>&1 ||
               { echo "FAILED: $1"; qemu-aarch64 "$0" --test-case="$1"; exit 1; }' "$kernels" {}
}
run_kernels max "SVE2"
run_kernels max,sve-default-vector-length=32 "SVE_256 SVE2"
run_kernels max,sve-default-vector-length=16 "SVE2_128 SVE"
run_kernels cortex-a72 "NEON"
# The other library tests on each CPU. attention_quality_test runs on the widest CPU only,
# without its 20-seed statistics (the f64 reference over 24 policies x 20 seeds took 10 minutes
# under qemu here; they do not depend on the CPU and run natively in the Release suite); its
# Gaussian and single-draw outlier cosine checks still run.
# quality_test runs after the loops, on cortex-a72 only (NEON, the Raspberry Pi's encoders)
# and without its 20,000-vector MSE case (108 s of the stage under qemu, 3 s natively):
# strata_kernels_test above already checks every target's encoder against the reference, whose
# quality the Release suite measures in full. The compile-fail tests (the host cross compiler,
# no emulated CPU) run once.
for cpu in max max,sve-default-vector-length=32 max,sve-default-vector-length=16 cortex-a72; do
  echo "== QEMU_CPU=$cpu"
  skip="attention_quality|^kernels_test$|^quality_test$"
  [ "$cpu" = max ] || skip="$skip|compile_fail"
  QEMU_CPU=$cpu ctest --test-dir "$build" --output-on-failure -j2 \
    -R "$library_tests" -E "$skip"
done
attention_quality=$(find "$build" -name strata_attention_quality_test -type f | head -n 1)
quality=$(find "$build" -name strata_quality_test -type f | head -n 1)
# attention_quality_test without the statistics over 20 seeds (prefill's matrix-product path
# included: more than 17 minutes of this stage beside other work; the matrix product is checked
# against its reference on every target by strata_kernels_test above), beside quality_test.
echo "== QEMU_CPU=max $attention_quality (without the 20-seed statistics)"
echo "== QEMU_CPU=cortex-a72 $quality (without the 20,000-vector MSE case)"
QEMU_CPU=cortex-a72 qemu-aarch64 "$quality" --test-case-exclude='*normalised per-coordinate MSE*' &
quality_pid=$!
QEMU_CPU=max qemu-aarch64 "$attention_quality" --test-case-exclude='*20 seeds*,*matrix-product path*'
wait "$quality_pid"
