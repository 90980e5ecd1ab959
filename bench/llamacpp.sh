#!/usr/bin/env bash
# bench/llamacpp.sh — build llama.cpp (the side-by-side peer) from the llama-cpp-python source
# package on PyPI into a cache directory outside the repository, and run its llama-bench /
# llama-perplexity on the same model file and thread count as strata's tools.
#
#   bench/llamacpp.sh build                      # download the sdist, cmake + build (slow, once)
#   bench/llamacpp.sh bench [-m MODEL] [-t N]    # llama-bench pp512/tg128
#   bench/llamacpp.sh perplexity [-m MODEL] [-t N] [-f FILE] [-c CTX] [--chunks N]
#
# Environment: STRATA_CACHE_DIR (default ~/.cache/strata); the tree goes to
# $STRATA_CACHE_DIR/llama.cpp/src, the build to $STRATA_CACHE_DIR/llama.cpp/build.
# LLAMA_CPP_PYTHON_VERSION pins the sdist (default 0.3.36, the newest on PyPI on 2026-12-05);
# the version built is written to $STRATA_CACHE_DIR/llama.cpp/VERSION and printed by each run.
set -euo pipefail
cache=${STRATA_CACHE_DIR:-$HOME/.cache/strata}
root=$cache/llama.cpp
src=$root/src
build=$root/build
version=${LLAMA_CPP_PYTHON_VERSION:-0.3.36}
model=$cache/models/SmolLM2-135M-Instruct.Q4_1.gguf
threads=$(nproc)
here=$(cd "$(dirname "$0")/.." && pwd)
data=${STRATA_DATA_DIR:-$here/../shared/data}

die() { echo "error: $* (bench/llamacpp.sh)" >&2; exit 1; }

do_build() {
  mkdir -p "$root"
  if [[ ! -f $src/CMakeLists.txt ]]; then
    local dl=$root/sdist
    mkdir -p "$dl"
    python3 -m pip download -q --disable-pip-version-check --no-binary :all: --no-deps \
      -d "$dl" "llama-cpp-python==$version" || die "pip download llama-cpp-python==$version failed"
    local tarball
    tarball=$(find "$dl" -maxdepth 1 -name "llama[_-]cpp[_-]python-$version.tar.gz" | head -1)
    [[ -n $tarball ]] || die "no sdist in $dl"
    rm -rf "$root/unpack" && mkdir -p "$root/unpack"
    tar -xzf "$tarball" -C "$root/unpack"
    local vendor
    vendor=$(find "$root/unpack" -maxdepth 3 -type d -path '*/vendor/llama.cpp' | head -1)
    [[ -f $vendor/CMakeLists.txt ]] || die "sdist has no vendor/llama.cpp"
    rm -rf "$src" && mv "$vendor" "$src" && rm -rf "$root/unpack"
    echo "llama-cpp-python $version (vendor/llama.cpp)" > "$root/VERSION"
  fi
  cmake -S "$src" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON \
    -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF -DBUILD_SHARED_LIBS=OFF
  nice -n 10 cmake --build "$build" --target llama-bench llama-perplexity -j "${JOBS:-2}"
  echo "llama.cpp built in $build/bin from $(cat "$root/VERSION" 2>/dev/null || echo 'an unrecorded sdist')"
}

cmd=${1:-}; shift || true
file=$data/wiki.test.raw; ctx=512; chunks=""
while [[ $# -gt 0 ]]; do
  case $1 in
    -m) model=$2; shift 2;;
    -t) threads=$2; shift 2;;
    -f) file=$2; shift 2;;
    -c) ctx=$2; shift 2;;
    --chunks) chunks="--chunks $2"; shift 2;;
    *) die "unknown flag $1";;
  esac
done
case $cmd in
  build) do_build;;
  bench)
    [[ -x $build/bin/llama-bench ]] || die "llama-bench not built; run bench/llamacpp.sh build"
    "$build/bin/llama-bench" -m "$model" -t "$threads" -p 512 -n 128 -r 3;;
  perplexity)
    [[ -x $build/bin/llama-perplexity ]] || die "llama-perplexity not built; run bench/llamacpp.sh build"
    # shellcheck disable=SC2086
    "$build/bin/llama-perplexity" -m "$model" -t "$threads" -f "$file" -c "$ctx" $chunks;;
  *) die "usage: bench/llamacpp.sh build|bench|perplexity [-m MODEL] [-t N]";;
esac
