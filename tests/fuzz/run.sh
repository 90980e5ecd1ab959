#!/usr/bin/env bash
# By hand: fuzz one target of tests/fuzz/targets for SECONDS, then rebuild its saved corpus
# (tests/fuzz/<target>/, replayed by fuzz_corpus_test in every build) as the smallest set of
# inputs that covers every edge the saved corpus and this run reached.
#   tests/fuzz/run.sh BUILD_DIR TARGET SECONDS      (BUILD_DIR configured with -DSTRATA_FUZZ=ON)
# Crashers land in $scratch/<target>-crash-*; the log's last lines give runs and coverage.
set -euo pipefail
build=$1 name=$2 seconds=$3
src=$(cd "$(dirname "$0")" && pwd)
exe=$build/bin/strata_${name}_fuzz
scratch=${FUZZ_SCRATCH:-/tmp/strata-fuzz}
mkdir -p "$scratch/$name-corpus" "$src/$name"
STRATA_FUZZ_WRITE_SEEDS="$scratch/$name-seeds" "$exe"
dict=()
[ -f "$src/$name.dict" ] && dict=(-dict="$src/$name.dict")
"$exe" -max_total_time="$seconds" -max_len=4096 -timeout=10 -artifact_prefix="$scratch/$name-" \
  "${dict[@]}" "$scratch/$name-corpus" "$src/$name" "$scratch/$name-seeds" 2>&1 | tee "$scratch/$name.log" | tail -3
# Edges only (-use_counters=0): a few hundred files rather than one per hit count.
rm -rf "$scratch/$name-min" && mkdir "$scratch/$name-min"
"$exe" -merge=1 -use_counters=0 "$scratch/$name-min" "$src/$name" "$scratch/$name-corpus" 2>&1 | tail -1
rm -rf "$src/$name" && mv "$scratch/$name-min" "$src/$name"
echo "$name: $(ls "$src/$name" | wc -l) corpus files"
