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
      -DSTRATA_BUILD_BENCH=OFF -DSTRATA_BUILD_EXAMPLES=OFF
cmake --build "$build"
# attention_quality_test (20-seed statistics over the f64 reference: 10 minutes under qemu
# here) runs on the widest CPU only; kernels_test checks every kernel on every CPU.
for cpu in max max,sve-default-vector-length=32 max,sve-default-vector-length=16 cortex-a72; do
  echo "== QEMU_CPU=$cpu"
  skip=attention_quality
  [ "$cpu" = max ] && skip=NONE
  QEMU_CPU=$cpu ctest --test-dir "$build" --output-on-failure -j2 \
    -R "kernels|codec|rotation|half|lloyd|quality|policy|cache" -E "$skip"
done
