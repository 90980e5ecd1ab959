#!/usr/bin/env bash
# The whole-process memory plan (engine::process_plan, --mem-plan) against the peak RSS the run
# then reaches (/usr/bin/time -v), per model, tool, KV policy and context, each run in its own
# process and filling its context (perplexity: --chunks 1, one full window; chat: a prompt
# longer than the context with --ctx-shift, which keeps half, then generation to the end).
#   bench/rss_plan.sh [BUILD_DIR]      (prints a Markdown table; docs/engine.md has the numbers)
set -euo pipefail
B=${1:-build}/bin
M=${STRATA_CACHE_DIR:-$HOME/.cache/strata}/models
D=${STRATA_DATA_DIR:-/work/shared/data}
W=$D/wiki.test.raw
T=${THREADS:-2}
POLICIES=${POLICIES:-"-ctk f16 -ctv f16|-ctk q8_0 -ctv turbo3|-ctk turbo4 -ctv turbo4"}

# run TOOL MODEL CTX POLICY ARGS...: one table row.
run() {
  local tool=$1 model=$2 ctx=$3 pol=$4
  shift 4
  local plan peak
  plan=$("$B/strata-$tool" -m "$model" -c "$ctx" -t "$T" --kv-policy "$pol" "$@" --mem-plan |
    awk '$NF == "total" { print $1 }')
  local out
  out=$(mktemp)
  /usr/bin/time -f '%M' -o "$out" "$B/strata-$tool" -m "$model" -c "$ctx" -t "$T" --kv-policy "$pol" \
    "$@" >/dev/null 2>&1
  peak=$(($(tail -1 "$out") * 1024))  # kB (GNU time's %M: the peak resident set, VmHWM)
  rm -f "$out"
  awk -v m="$(basename "$model" .gguf)" -v t="$tool" -v c="$ctx" -v p="$pol" -v a="$plan" -v b="$peak" \
    'BEGIN { printf "| %s | %s | %s | %d | %.2f | %.2f | %.2f %% |\n", m, t, p, c, a / 1048576, b / 1048576, 100 * a / b }'
}

echo "| model | tool | KV | context | plan (MiB) | peak RSS (MiB) | plan / peak |"
echo "|---|---|---|---:|---:|---:|---:|"
IFS='|' read -r -a pols <<<"$POLICIES"
ppl() { run perplexity "$1" "$2" "$3" -f "$W" --chunks 1 --no-progress; }
chat() {  # a prompt of about 3 x ctx tokens; the shift keeps ctx/2 (one full batch of 512 at
  # -c 1024), generation fills the rest
  run chat "$1" "$2" "$3" --raw --ctx-shift --temp 0 -n $(($2 / 2 + 4)) -p "$(head -c $(($2 * 12)) "$W")"
}
ppl "$D/stories260K.gguf" 256 "-ctk f16 -ctv f16"
chat "$D/stories260K.gguf" 1024 "-ctk f16 -ctv f16"
for model in "$M/SmolLM2-135M-Instruct.Q4_1.gguf" "$M/gemma-3-270m-q4_k_m.gguf"; do
  [ -f "$model" ] || continue
  case $model in *gemma*) ctxs="128 256 512" ;; *) ctxs="512 1024 2048" ;; esac
  for pol in "${pols[@]}"; do
    for c in $ctxs; do ppl "$model" "$c" "$pol"; done
  done
  chat "$model" 1024 "-ctk q8_0 -ctv turbo3"
done
