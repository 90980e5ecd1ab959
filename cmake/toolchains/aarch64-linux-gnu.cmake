# Cross-compile for 64-bit Arm on Debian (g++-aarch64-linux-gnu, libhwy-dev:arm64 and
# doctest through multiarch) and run the tests under qemu-user. Pick the emulated CPU per run
# with QEMU_CPU: `max` (NEON, SVE, SVE2 at 512 bits), `max,sve-default-vector-length=32`
# (SVE_256), `max,sve-default-vector-length=16` (SVE2_128), `cortex-a72` (NEON only).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
