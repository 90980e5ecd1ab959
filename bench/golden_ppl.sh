#!/usr/bin/env bash
# bench/golden_ppl.sh -- the perplexity / KL-divergence lines of every codec on SmolLM2, pinned
# before the codec-registry redesign (tests/golden/ppl.txt): a refactoring that changes no
# behaviour prints the same lines. By hand (about 4 minutes); the CI replays the
# cheaper golden state files and attention hashes (golden_test).
#
# usage: bench/golden_ppl.sh [--write] [BIN_DIR]    (default BIN_DIR: build/bin)
#   without --write: runs and compares with tests/golden/ppl.txt (exit 1 on any difference)
set -euo pipefail
cd "$(dirname "$0")/.."
write=0
if [ "${1:-}" = "--write" ]; then write=1; shift; fi
bin=${1:-build/bin}
data=${STRATA_DATA_DIR:-../shared/data}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# One thread: the sums of the matmul and attention do not depend on how rows are split.
common=(-f "$data/wiki.test.raw" -c 512 --chunks 4 -t 1 --no-progress)
"$bin/strata-perplexity" "${common[@]}" --kl-divergence-base "$tmp/base.kld" > "$tmp/f16-base.log"
out=$tmp/ppl.txt
# The numbers depend on the Highway targets the CPU runs (sums in a target's own order): compare
# on a machine of the kind that wrote the file (its first line).
flags=$(grep -m1 '^flags' /proc/cpuinfo || true)
isa=$(for f in avx512_vnni avx512bw avx512f avx2; do case " $flags " in *" $f "*) echo -n "$f ";; esac; done)
echo "# $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'); ${isa% }" > "$out"
for c in f32 f16 bf16 q8_0 q4_0 turbo2 turbo3 turbo4 vq2; do
  "$bin/strata-perplexity" "${common[@]}" -ctk "$c" -ctv "$c" --kl-divergence-base "$tmp/base.kld" \
    --kl-divergence > "$tmp/$c.log"
  # The result lines, without timings.
  grep -E '^(KV cache:|\[|base PPL|Mean KLD|Same top|Final estimate)' "$tmp/$c.log" | sed "s/^/$c: /" >> "$out"
done
if [ $write = 1 ]; then
  cp "$out" tests/golden/ppl.txt
  echo "wrote tests/golden/ppl.txt ($(wc -l < "$out") lines)"
elif diff -u tests/golden/ppl.txt "$out"; then
  echo "golden PPL/KLD lines: identical"
else
  echo "golden PPL/KLD lines differ (above)" >&2
  exit 1
fi
