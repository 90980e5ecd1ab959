#!/usr/bin/env bash
# bench/ladder.sh -- the quality and speed ladder of strata's KV cache policies on real models:
# for every configuration, perplexity, KL divergence and top-1 agreement against the
# f16-KV run (strata-perplexity), KV bytes and bits/value, pp/tg tokens/s at a context depth
# (strata-bench), tg tokens/s against depth for a few policies, and a needle-in-a-haystack check
# at three depths (strata-needle). Results go to OUT as TSV files and raw logs;
# bench/ladder/report.py turns them into markdown tables and PNG plots.
#
# usage: bench/ladder.sh [--smoke] [--model M] [--ctx 512,2048] [--chunks N] [--out DIR]
#                        [--stages quality,bench,sweep,needle,peer,peer-sweep] [--only NAME,NAME] [--threads N] [--jobs J]
#                        [--bin DIR] [--data DIR] [--needle-ctx N] [--needle-trials N] [--bench-depth N]
#                        [--sweep-depths LIST] [--q8-act] [--report]
#   --model       smollm2 (default), gemma3, stories260K, or a GGUF path
#   --ctx         context sizes of the quality runs (default 512)
#   --chunks      windows scored per quality run (default 20 at 512; scaled by 512/ctx above it)
#   --stages      which parts to run (default: the first four; peer runs only when named):
#                 peer = llama.cpp's KV types (its llama-perplexity, built by bench/llamacpp.sh,
#                 flash attention on, its Hadamard rotation of quantized KV on) on the same
#                 windows, KLD against its own f16-KV logits, into peer.tsv; it resumes:
#                 configurations with an ok row in OUT's peer.tsv are skipped;
#                 peer-sweep = llama.cpp's tg32 against depth (llama-bench -fa 1 -d, --sweep-depths)
#                 for f16, q8_0 and q4_0 KV into peer-sweep.json, drawn in the tg plot
#   --only        run only these configurations (names as in the table below; f16 always runs)
#   --threads     threads in all (default: all cores); --jobs J runs the quality and needle
#                 configurations J at a time with threads/J threads each (default 2 when
#                 there are 2+ threads: one process per core beats one process on two); the
#                 timed stages (bench, sweep) always run alone with every thread
#   --needle-ctx  needle prompt length (default 1024), --needle-trials keys per depth (default 1)
#   --bench-depth depth of the pp512/tg32 test (default 4096); --sweep-depths of the tg sweep
#   --q8-act      strata's runs with one int8 activation plane (`--q8-act`, the precision
#                 llama.cpp's CPU path uses) into OUT/<model>-q8act; report.py compares them
#                 with the llama.cpp points of OUT/<model> (its peer stage needs no rerun)
#   --report      run bench/ladder/report.py on OUT at the end (tables + plots into OUT)
#   --smoke       the CI version: stories260K (head dim 8: only f32/f16/bf16 fit, the block
#                 codecs are checked to be refused) and, when present, SmolLM2 at context 256
#                 on 3 windows; checks loose bounds, under 2 minutes on 2 cores.
# Exit status: 0 when every run worked (and, with --smoke, every bound held), 1 otherwise;
# 77 (--smoke only) when shared/data is missing.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$ROOT/build/bin
DATA=${STRATA_DATA_DIR:-$ROOT/../shared/data}
CACHE=${STRATA_CACHE_DIR:-$HOME/.cache/strata}
MODEL=smollm2
CTXS=512
CHUNKS=
OUT=
STAGES=quality,bench,sweep,needle
ONLY=
THREADS=$(nproc)
JOBS=
NEEDLE_CTX=1024
NEEDLE_TRIALS=1
BENCH_DEPTH=4096
SWEEP_DEPTHS=512,1024,2048,4096
SMOKE=0
REPORT=0
ACT_ARGS=()

die() { echo "error: $* (bench/ladder.sh)" >&2; exit 1; }

while [ $# -gt 0 ]; do
  case $1 in
    --smoke) SMOKE=1 ;;
    --model) MODEL=$2; shift ;;
    --ctx) CTXS=$2; shift ;;
    --chunks) CHUNKS=$2; shift ;;
    --out) OUT=$2; shift ;;
    --stages) STAGES=$2; shift ;;
    --only) ONLY=$2; shift ;;
    --threads|-t) THREADS=$2; shift ;;
    --jobs|-j) JOBS=$2; shift ;;
    --bin) BIN=$2; shift ;;
    --data) DATA=$2; shift ;;
    --needle-ctx) NEEDLE_CTX=$2; shift ;;
    --needle-trials) NEEDLE_TRIALS=$2; shift ;;
    --bench-depth) BENCH_DEPTH=$2; shift ;;
    --sweep-depths) SWEEP_DEPTHS=$2; shift ;;
    --report) REPORT=1 ;;
    --q8-act) ACT_ARGS=(--q8-act) ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d;s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (try --help)" ;;
  esac
  shift
done

if [ -z "$JOBS" ]; then JOBS=1; [ "$THREADS" -ge 2 ] && JOBS=2; fi
[ "$JOBS" -ge 1 ] 2>/dev/null || die "bad --jobs '$JOBS'"
JOB_THREADS=$(( THREADS / JOBS )); [ $JOB_THREADS -ge 1 ] || JOB_THREADS=1

for tool in strata-perplexity strata-bench strata-needle; do
  [ -x "$BIN/$tool" ] || die "no $BIN/$tool; build it (cmake --build build --target $tool) or give --bin DIR"
done
TEXT=$DATA/wiki.test.raw
if [ $SMOKE = 1 ] && { [ ! -f "$TEXT" ] || [ ! -f "$DATA/stories260K.gguf" ]; }; then
  echo "skipped: no $TEXT or $DATA/stories260K.gguf (shared/data); the smoke ladder needs both"
  exit 77  # ctest SKIP_RETURN_CODE
fi
[ -f "$TEXT" ] || die "no $TEXT (the WikiText-2 test set; give --data DIR)"

model_path() {
  case $1 in
    smollm2) echo "$CACHE/models/SmolLM2-135M-Instruct.Q4_1.gguf" ;;
    gemma3) echo "$CACHE/models/gemma-3-270m-q4_k_m.gguf" ;;
    stories260K) echo "$DATA/stories260K.gguf" ;;
    *) echo "$1" ;;
  esac
}
model_tag() {
  case $1 in
    smollm2|gemma3|stories260K) echo "$1" ;;
    *) basename "$1" .gguf ;;
  esac
}

# The configurations: name | policy string (strata's parser) | turbo codebook (lm: strata's
# Lloyd-Max tables; fork: the TurboQuant fork's tables, test-only, STRATA_TEST_CODEBOOK=fork).
# The auto rows are the automatic policy (strata-tune, docs/policies.md): the first one tunes
# the model once on the shipped calibration text (about 3 minutes here, counted in its
# seconds) and caches the result under ~/.cache/strata/tune. q8_0r and q4_0r are llama.cpp's
# q8_0 and q4_0 with its K/V rotation on (docs/policies.md); turbo4g32 fixes turbo's group.
CONFIGS_FULL='f16|-ctk f16 -ctv f16|lm
q8_0|-ctk q8_0 -ctv q8_0|lm
q4_0|-ctk q4_0 -ctv q4_0|lm
turbo4|-ctk turbo4 -ctv turbo4|lm
turbo3|-ctk turbo3 -ctv turbo3|lm
turbo2|-ctk turbo2 -ctv turbo2|lm
q8_0/turbo4|-ctk q8_0 -ctv turbo4|lm
q8_0/turbo3|-ctk q8_0 -ctv turbo3|lm
q8_0/turbo2|-ctk q8_0 -ctv turbo2|lm
turbo4/q8_0|-ctk turbo4 -ctv q8_0|lm
turbo3/q8_0|-ctk turbo3 -ctv q8_0|lm
bv2+2|boundary-v|lm
bv4+4|boundary-v-4-4|lm
bv3-2+2|v:first2,last2=q8_0;v=turbo3;k=q8_0|lm
la1|la1|lm
la2|la2|lm
la5|la5|lm
la6|la6|lm
turbo3 r64|-ctk turbo3 -ctv turbo3 recent=64|lm
q8_0/turbo2 r64|-ctk q8_0 -ctv turbo2 recent=64|lm
q4_0 kb|-ctk q4_0 -ctv q4_0 k-balance|lm
turbo4 kb|-ctk turbo4 -ctv turbo4 k-balance|lm
turbo3 kb|-ctk turbo3 -ctv turbo3 k-balance|lm
turbo2 kb|-ctk turbo2 -ctv turbo2 k-balance|lm
turbo4/turbo3 kb|-ctk turbo4 -ctv turbo3 k-balance|lm
vq2|-ctk vq2 -ctv vq2|lm
q8_0/vq2|-ctk q8_0 -ctv vq2|lm
bv2+2 vq2|v:first2,last2=q8_0;v=vq2;k=q8_0|lm
turbo4 fork|-ctk turbo4 -ctv turbo4|fork
turbo3 fork|-ctk turbo3 -ctv turbo3|fork
q8_0/turbo4 fork|-ctk q8_0 -ctv turbo4|fork
q8_0/turbo3 fork|-ctk q8_0 -ctv turbo3|fork
auto 4.5|auto:bits=4.5|lm
auto 5|auto:bits=5|lm
auto 5.5|auto:bits=5.5|lm
auto 6|auto:bits=6|lm
auto 6.5|auto:bits=6.5|lm
auto 7|auto:bits=7|lm
auto 7.25|auto:bits=7.25|lm
q8_0r|-ctk q8_0r -ctv q8_0r|lm
q4_0r|-ctk q4_0r -ctv q4_0r|lm
q8_0r/q4_0r|-ctk q8_0r -ctv q4_0r|lm
turbo5|-ctk turbo5 -ctv turbo5|lm
turbo4g32|-ctk turbo4g32 -ctv turbo4g32|lm
turbo5/turbo4|-ctk turbo5 -ctv turbo4|lm
q8_0r/turbo4|-ctk q8_0r -ctv turbo4|lm
q8_0r/turbo5|-ctk q8_0r -ctv turbo5|lm
q8_0r/turbo4g32|-ctk q8_0r -ctv turbo4g32|lm
turbo5/q4_0r|-ctk turbo5 -ctv q4_0r|lm
q4_0r kb|-ctk q4_0r -ctv q4_0r k-balance|lm'

# The tg-vs-depth sweep and the needle: a few policies / all of them.
SWEEP_NAMES='f16,q8_0,turbo4,q8_0/turbo3,bv2+2'

slug() { echo "$1" | sed 's#/#-#g; s# #-#g; s#+#p#g'; }

# Picks configurations by name (f16 always first).
select_configs() {
  local all=$1 only=$2
  if [ -z "$only" ]; then echo "$all"; return; fi
  echo "$all" | awk -F'|' -v only=",$only," 'NR == 1 || index(only, "," $1 ",") > 0'
}

# run_ppl MODEL CTX CHUNKS NAME POLICY CODEBOOK BASEFILE LOGDIR TSV
run_ppl() {
  local model=$1 ctx=$2 chunks=$3 name=$4 policy=$5 cb=$6 base=$7 logdir=$8 tsv=$9
  local log=$logdir/$(slug "$name").log kld_args=(--kl-divergence-base "$base")
  [ "$name" = f16 ] || kld_args+=(--kl-divergence)
  local env_cb=
  [ "$cb" = fork ] && env_cb=fork
  local t0 rc=0
  t0=$(date +%s.%N)
  STRATA_TEST_CODEBOOK=$env_cb "$BIN/strata-perplexity" -m "$model" -f "$TEXT" -c "$ctx" \
    --chunks "$chunks" -t "${PPL_THREADS:-$THREADS}" --no-progress "${ACT_ARGS[@]}" --kv-policy "$policy" "${kld_args[@]}" \
    > "$log" 2>&1 || rc=$?
  local secs
  secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  if [ $rc -ne 0 ]; then
    local why
    why=$(grep -m1 '^error:' "$log" || tail -n1 "$log")
    printf '%s\t%s\t%s\t%s\t%s\tFAILED\t\t\t\t\t\t\t\t%s\t%s\n' "$(basename "$model")" "$ctx" "$name" \
      "$policy" "$cb" "$secs" "$why" >> "$tsv"
    echo "  $name: FAILED ($why)"
    return 1
  fi
  # KV cache: <desc>, 2.99 MiB for 512 tokens (4.25 bits/value; f16 would take 11.25 MiB)
  awk -v m="$(basename "$model")" -v ctx="$ctx" -v name="$name" -v pol="$policy" -v cb="$cb" \
      -v secs="$secs" '
    /^KV cache:/ { s = $0; sub(/.*, /, "", s); split(s, w, " "); kv = w[1] " " w[2];
                   b = $0; sub(/.*\(/, "", b); sub(/ bits.*/, "", b); bits = b }
    /^Mean KLD:/ { kld = $3; kld_err = $5 }
    /^Same top p:/ { top = $4; top_err = $6 }
    /^Final estimate:/ { ppl = $5; ppl_err = $7 }
    END { printf "%s\t%s\t%s\t%s\t%s\tok\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", m, ctx, name, pol, cb,
                 bits, kv, ppl, ppl_err, kld, kld_err, top, top_err, secs }' "$log" >> "$tsv"
  tail -n1 "$tsv" | awk -F'\t' '{ printf "  %-18s PPL %s +/- %s  KLD %s +/- %s  top-1 %s %%  %s bits  (%s s)\n",
                                  $3, $9, $10, ($11 == "" ? "-" : $11), ($12 == "" ? "-" : $12),
                                  ($13 == "" ? "-" : $13), $7, $15 }'
}

QHEAD=$'model\tctx\tconfig\tpolicy\tcodebook\tstatus\tbits_per_value\tkv_size\tppl\tppl_err\tkld\tkld_err\ttop1\ttop1_err\tseconds\terror'

# quality MODEL CTXS CHUNKS CONFIGS OUTDIR: the PPL/KLD ladder; returns 1 if any run failed.
quality() {
  local model=$1 ctxs=$2 chunks0=$3 configs=$4 dir=$5 fail=0
  mkdir -p "$dir/logs"
  local tsv=$dir/quality.tsv
  [ -f "$tsv" ] || echo "$QHEAD" > "$tsv"
  local ctx
  for ctx in ${ctxs//,/ }; do
    local chunks=$chunks0
    if [ -z "$chunks" ]; then chunks=$(( 20 * 512 / ctx )); [ "$chunks" -ge 4 ] || chunks=4; fi
    local base=$dir/base-ctx$ctx.kld logdir=$dir/logs/ctx$ctx
    mkdir -p "$logdir"
    echo "quality: $(basename "$model"), context $ctx, $chunks windows, $JOBS at a time after f16"
    # f16 first (it writes the base the others are compared with), then the rest JOBS at a
    # time, each into its own part file; the parts are appended in configuration order.
    local i=0 parts=()
    while IFS='|' read -r name policy cb; do
      [ -n "$name" ] || continue
      if [ "$name" != f16 ] && [ ! -f "$base" ]; then
        echo "  $name: skipped (no f16 base)"; fail=1; continue
      fi
      local part=$dir/quality-ctx$ctx-$i.part
      : > "$part"
      parts+=("$part")
      i=$((i + 1))
      if [ "$name" = f16 ]; then
        run_ppl "$model" "$ctx" "$chunks" "$name" "$policy" "$cb" "$base" "$logdir" "$part" || fail=1
        continue
      fi
      while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n || true; done
      PPL_THREADS=$JOB_THREADS run_ppl "$model" "$ctx" "$chunks" "$name" "$policy" "$cb" "$base" "$logdir" "$part" &
    done <<< "$configs"
    wait || true
    local part
    for part in "${parts[@]}"; do
      cat "$part" >> "$tsv"
      awk -F'\t' '$6 != "ok" { bad = 1 } END { exit bad }' "$part" || fail=1
      [ -s "$part" ] || fail=1
      rm -f "$part"
    done
    rm -f "$base"  # hundreds of MB (n_vocab half floats per scored token)
  done
  return $fail
}

# policies_args CONFIGS CODEBOOK: --kv-policy flags for the configurations with that codebook.
policies_of() {
  echo "$1" | awk -F'|' -v cb="$2" '$3 == cb { print $2 }'
}

# bench MODEL CONFIGS OUTDIR DEPTHS NPROMPT NGEN REPS FILE: strata-bench JSON, per codebook.
bench() {
  local model=$1 configs=$2 dir=$3 depths=$4 np=$5 ng=$6 reps=$7 file=$8 fail=0 cb
  mkdir -p "$dir/logs"
  : > "$dir/$file"
  for cb in lm fork; do
    local args=()
    while IFS= read -r p; do [ -n "$p" ] && args+=(--kv-policy "$p"); done < <(policies_of "$configs" $cb)
    [ ${#args[@]} -gt 0 ] || continue
    local env_cb=
    [ $cb = fork ] && env_cb=fork
    echo "bench ($file, codebook $cb): depths $depths, pp$np tg$ng, $(( ${#args[@]} / 2 )) caches"
    STRATA_TEST_CODEBOOK=$env_cb "$BIN/strata-bench" -m "$model" -t "$THREADS" "${ACT_ARGS[@]}" -d "$depths" \
      -p "$np" -n "$ng" -r "$reps" -o json "${args[@]}" > "$dir/logs/${file%.json}-$cb.json" \
      2> "$dir/logs/${file%.json}-$cb.err" || { fail=1; cat "$dir/logs/${file%.json}-$cb.err" >&2; }
    # one JSON list per codebook: tag the fork rows
    sed "s/\"kv\": \"/\"codebook\": \"$cb\", \"kv\": \"/" "$dir/logs/${file%.json}-$cb.json" >> "$dir/$file"
  done
  return $fail
}

# needle_part MODEL CONFIGS OUTDIR CTX TAG THREADS: strata-needle tables per codebook into
# OUTDIR/needle-TAG.part (exit 2 = some key missed, not an error).
needle_part() {
  local model=$1 configs=$2 dir=$3 ctx=$4 tag=$5 threads=$6 fail=0 cb
  : > "$dir/needle-$tag.part"
  for cb in lm fork; do
    local args=()
    while IFS= read -r p; do [ -n "$p" ] && args+=(--kv-policy "$p"); done < <(policies_of "$configs" $cb)
    [ ${#args[@]} -gt 0 ] || continue
    local env_cb= rc=0 log=$dir/logs/needle-$tag-$cb
    [ $cb = fork ] && env_cb=fork
    echo "needle (part $tag, codebook $cb): context $ctx, depths 0.1,0.5,0.9, $NEEDLE_TRIALS keys each, $(( ${#args[@]} / 2 )) caches, $threads threads"
    STRATA_TEST_CODEBOOK=$env_cb "$BIN/strata-needle" -m "$model" -t "$threads" "${ACT_ARGS[@]}" -c "$ctx" \
      --depth 0.1,0.5,0.9 --trials "$NEEDLE_TRIALS" "${args[@]}" > "$log.md" 2> "$log.err" || rc=$?
    [ $rc -le 2 ] || { fail=1; cat "$log.err" >&2; }
    grep '^| ' "$log.md" | grep -v '^| kv \|^| ---' | sed "s/^| /| $cb | /" >> "$dir/needle-$tag.part" || true
    grep '^found' "$log.md" | sed "s/^/  part $tag, $cb: /" || true
  done
  return $fail
}

# needle MODEL CONFIGS OUTDIR CTX: the configurations split into JOBS consecutive parts run at
# the same time (JOB_THREADS threads each); needle.md keeps the configuration order.
needle() {
  local model=$1 configs=$2 dir=$3 ctx=$4 fail=0 k
  mkdir -p "$dir/logs"
  local n per
  n=$(echo "$configs" | grep -c .)
  per=$(( (n + JOBS - 1) / JOBS ))
  local pids=()
  for (( k = 0; k < JOBS; ++k )); do
    local sub
    sub=$(echo "$configs" | grep . | sed -n "$(( k * per + 1 )),$(( (k + 1) * per ))p")
    [ -n "$sub" ] || continue
    needle_part "$model" "$sub" "$dir" "$ctx" "$k" "$JOB_THREADS" &
    pids+=($!)
  done
  local p
  for p in "${pids[@]}"; do wait "$p" || fail=1; done
  : > "$dir/needle.md"
  for (( k = 0; k < JOBS; ++k )); do
    [ -f "$dir/needle-$k.part" ] && cat "$dir/needle-$k.part" >> "$dir/needle.md"
    rm -f "$dir/needle-$k.part"
  done
  return $fail
}

# llama.cpp's KV types (docs/results.md, "llama.cpp's rotated-KV front"): symmetric, and q8_0 K
# with each V type. name | -ctk | -ctv. Bits/value from ggml's block sizes (34, 24, 22, 20, 18,
# 18 bytes per 32 values).
PEER_CONFIGS='f16|f16|f16
q8_0|q8_0|q8_0
q5_1|q5_1|q5_1
q5_0|q5_0|q5_0
q4_1|q4_1|q4_1
iq4_nl|iq4_nl|iq4_nl
q4_0|q4_0|q4_0
q8_0/q5_1|q8_0|q5_1
q8_0/q5_0|q8_0|q5_0
q8_0/q4_1|q8_0|q4_1
q8_0/iq4_nl|q8_0|iq4_nl
q8_0/q4_0|q8_0|q4_0'
peer_bits() {
  case $1 in
    f16) echo 16 ;; q8_0) echo 8.5 ;; q5_1) echo 6 ;; q5_0) echo 5.5 ;; q4_1) echo 5 ;;
    iq4_nl|q4_0) echo 4.5 ;; *) echo 0 ;;
  esac
}

# peer MODEL CTXS CHUNKS OUTDIR: llama-perplexity for each PEER_CONFIGS row (one at a time, all
# threads: llama.cpp's own threading), rows into OUTDIR/peer.tsv in quality.tsv's columns.
peer() {
  local model=$1 ctxs=$2 chunks0=$3 dir=$4 fail=0
  local lbin=${LLAMA_CPP_BIN:-$CACHE/llama.cpp/build/bin}
  [ -x "$lbin/llama-perplexity" ] || die "no $lbin/llama-perplexity (bench/llamacpp.sh build)"
  mkdir -p "$dir/logs"
  local tsv=$dir/peer.tsv version
  version=$(cat "$CACHE/llama.cpp/VERSION" 2>/dev/null || echo unknown)
  [ -f "$tsv" ] || echo "$QHEAD" > "$tsv"
  echo "llama.cpp: $version" > "$dir/peer-version.txt"
  local ctx
  for ctx in ${ctxs//,/ }; do
    local chunks=$chunks0
    if [ -z "$chunks" ]; then chunks=$(( 20 * 512 / ctx )); [ "$chunks" -ge 4 ] || chunks=4; fi
    local base=$dir/peer-base-ctx$ctx.kld logdir=$dir/logs/peer-ctx$ctx
    mkdir -p "$logdir"
    echo "peer: llama.cpp ($version), $(basename "$model"), context $ctx, $chunks windows"
    local ctx_fail=0
    while IFS='|' read -r name ctk ctv; do
      [ -n "$name" ] || continue
      # Resumable: a configuration with an ok row for this model and context is not run again
      # (f16 only while its logits file is still there; when f16 runs again, its old rows go).
      if awk -F'\t' -v m="$(basename "$model")" -v c="$ctx" -v n="$name" \
           '$1 == m && $2 == c && $3 == n && $6 == "ok" { f = 1 } END { exit !f }' "$tsv"; then
        if [ "$name" != f16 ] || [ -f "$base" ]; then echo "  $name: in peer.tsv already, skipped"; continue; fi
        awk -F'\t' -v m="$(basename "$model")" -v c="$ctx" '!($1 == m && $2 == c && $3 == "f16")' "$tsv" \
          > "$tsv.tmp" && mv "$tsv.tmp" "$tsv"
      fi
      local log=$logdir/$(slug "$name").log args=(--kl-divergence-base "$base") rc=0 t0 secs
      [ "$name" = f16 ] || args+=(--kl-divergence)
      t0=$(date +%s.%N)
      "$lbin/llama-perplexity" -m "$model" -f "$TEXT" -c "$ctx" --chunks "$chunks" -t "$THREADS" \
        -fa on -ctk "$ctk" -ctv "$ctv" -lv 4 "${args[@]}" > "$log" 2>&1 || rc=$?
      secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
      local rot
      rot=$(grep -o 'attn_rot_k = [01]' "$log" | head -1 | sed 's/.*= //')
      if [ $rc -ne 0 ]; then
        printf '%s\t%s\t%s\t-ctk %s -ctv %s\tllama.cpp\tFAILED\t\t\t\t\t\t\t\t%s\t%s\n' "$(basename "$model")" \
          "$ctx" "$name" "$ctk" "$ctv" "$secs" "$(tail -n1 "$log")" >> "$tsv"
        echo "  $name: FAILED ($(tail -n1 "$log"))"; fail=1; ctx_fail=1; continue
      fi
      local bits
      bits=$(awk -v a="$(peer_bits "$ctk")" -v b="$(peer_bits "$ctv")" 'BEGIN { printf "%.3f", (a + b) / 2 }')
      awk -v m="$(basename "$model")" -v ctx="$ctx" -v name="$name" -v pol="-ctk $ctk -ctv $ctv (rot $rot)" \
          -v secs="$secs" -v bits="$bits" '
        { sub(/^[0-9.]+ [A-Z] /, "") }  # llama.cpp log lines start with a time stamp and a level
        /^Final estimate: PPL =/ { ppl = $5; ppl_err = $7 }
        /^Mean PPL\(Q\) +:/ { ppl = $4; ppl_err = $6 }
        /^Mean +KLD:/ { kld = $3; kld_err = $5 }
        /^Same top p:/ { top = $4; top_err = $6 }
        END { printf "%s\t%s\t%s\t%s\tllama.cpp\tok\t%s\t\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", m, ctx, name, pol,
                     bits, ppl, ppl_err, kld, kld_err, top, top_err, secs }' "$log" >> "$tsv"
      tail -n1 "$tsv" | awk -F'\t' '{ printf "  llama.cpp %-12s PPL %s +/- %s  KLD %s +/- %s  top-1 %s %%  %s bits  %s  (%s s)\n",
                                      $3, $9, $10, ($11 == "" ? "-" : $11), ($12 == "" ? "-" : $12),
                                      ($13 == "" ? "-" : $13), $7, $4, $15 }'
    done <<< "$PEER_CONFIGS"
    [ $ctx_fail -ne 0 ] || rm -f "$base"  # kept after a failure, so that a rerun resumes
  done
  return $fail
}

# peer_sweep MODEL OUTDIR DEPTHS: llama.cpp's tg32 against context depth (its llama-bench, flash
# attention on, -d DEPTHS) for f16, q8_0 and q4_0 KV, into OUTDIR/peer-sweep.json (one JSON list
# per type); report.py draws them beside strata's sweep.
PEER_SWEEP_TYPES='f16 q8_0 q4_0'
peer_sweep() {
  local model=$1 dir=$2 depths=$3 fail=0 t
  local lbin=${LLAMA_CPP_BIN:-$CACHE/llama.cpp/build/bin}
  [ -x "$lbin/llama-bench" ] || die "no $lbin/llama-bench (bench/llamacpp.sh build)"
  mkdir -p "$dir/logs"
  : > "$dir/peer-sweep.json"
  for t in $PEER_SWEEP_TYPES; do
    echo "peer-sweep: llama-bench -ctk $t -ctv $t, depths $depths, tg32, $THREADS threads"
    if "$lbin/llama-bench" -m "$model" -t "$THREADS" -fa 1 -ctk "$t" -ctv "$t" -p 0 -n 32 -r 2 \
         -d "$depths" -o json > "$dir/logs/peer-sweep-$t.json" 2> "$dir/logs/peer-sweep-$t.err"; then
      cat "$dir/logs/peer-sweep-$t.json" >> "$dir/peer-sweep.json"
    else
      fail=1; tail -n3 "$dir/logs/peer-sweep-$t.err" >&2
    fi
  done
  return $fail
}

write_meta() {
  local dir=$1
  {
    echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet HEAD -- include examples 2>/dev/null || echo ' (with uncommitted changes in include/ or examples/)')"
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //') ($(nproc) cores)"
    echo "threads: $THREADS"
    echo "jobs: $JOBS quality / needle runs at a time, $JOB_THREADS threads each (bench and sweep: one run, $THREADS threads)"
    echo "command: bench/ladder.sh $ARGS_STR"
  } > "$dir/meta.txt"
}
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

ARGS_STR="$*"

if [ $SMOKE = 1 ]; then
  OUT=${OUT:-$ROOT/build/ladder-smoke}
  rm -rf "$OUT"; mkdir -p "$OUT"
  ARGS_STR="--smoke"
  write_meta "$OUT"
  start=$(date +%s)
  ok=1
  check() {  # check DESCRIPTION AWK-CONDITION
    if awk "BEGIN { exit !($2) }"; then echo "  ok: $1"; else echo "  FAILED: $1 ($2)"; ok=0; fi
  }
  get() {  # get DIR CONFIG FIELD -> value from quality.tsv (header names)
    awk -F'\t' -v c="$2" -v f="$3" 'NR == 1 { for (i = 1; i <= NF; ++i) col[$i] = i; next }
                                   $3 == c { print $col[f] }' "$1/quality.tsv" | tail -n1
  }
  # 1. stories260K: head dim 8. Element codecs only; every block codec must be refused clearly.
  S=$OUT/stories260K
  mkdir -p "$S/logs"
  quality "$DATA/stories260K.gguf" 128 6 'f16|-ctk f16 -ctv f16|lm
f32|-ctk f32 -ctv f32|lm
bf16|-ctk bf16 -ctv bf16|lm
bf16/f16|-ctk bf16 -ctv f16|lm' "$S" || ok=0
  for c in q8_0 q4_0 turbo4 turbo2 q4_0r turbo4g32; do
    if "$BIN/strata-perplexity" -m "$DATA/stories260K.gguf" -f "$TEXT" -c 128 --chunks 1 \
         -ctk "$c" -ctv "$c" --no-progress > "$S/logs/refused-$c.log" 2>&1; then
      echo "  FAILED: $c accepted on head dim 8"; ok=0
    elif grep -q "^error: head dim 8 is not a multiple of $c's block" "$S/logs/refused-$c.log"; then
      echo "  ok: $c refused on head dim 8: $(grep -m1 '^error' "$S/logs/refused-$c.log")"
    else
      echo "  FAILED: $c: unexpected output: $(tail -n1 "$S/logs/refused-$c.log")"; ok=0
    fi
  done
  f16=$(get "$S" f16 ppl); f32=$(get "$S" f32 ppl); bf=$(get "$S" bf16 ppl)
  kf32=$(get "$S" f32 kld); kbf=$(get "$S" bf16 kld)
  check "stories260K f32 KV PPL $f32 within 0.1% of f16 $f16" "$f32 > 0 && $f16 > 0 && ($f32 / $f16 - 1)^2 < 1e-6"
  check "stories260K bf16 KV PPL $bf within 1% of f16" "$bf > 0 && ($bf / $f16 - 1)^2 < 1e-4"
  check "stories260K KLD f32 $kf32 < bf16 $kbf < 0.01" "$kf32 < $kbf && $kbf < 0.01"
  # 2. SmolLM2 (head dim 64) when present: the block codecs on a real model.
  M=$(model_path smollm2)
  if [ -f "$M" ]; then
    L=$OUT/smollm2
    quality "$M" 256 3 "$(select_configs "$CONFIGS_FULL" 'q8_0,q4_0,turbo4,q8_0/turbo3,q8_0/turbo2,bv2+2,turbo4 fork,q4_0r')" "$L" || ok=0
    f16=$(get "$L" f16 ppl); q8=$(get "$L" q8_0 ppl)
    kq8=$(get "$L" q8_0 kld); kq4=$(get "$L" q4_0 kld); kt4=$(get "$L" turbo4 kld)
    kt4f=$(get "$L" 'turbo4 fork' kld); kq3=$(get "$L" q8_0/turbo3 kld); kq2=$(get "$L" q8_0/turbo2 kld)
    kbv=$(get "$L" bv2+2 kld); kq4r=$(get "$L" q4_0r kld)
    check "SmolLM2 q8_0 PPL $q8 within 1% of f16 $f16" "$q8 > 0 && ($q8 / $f16 - 1)^2 < 1e-4"
    check "SmolLM2 KLD q8_0 $kq8 < turbo4 $kt4 < q4_0 $kq4" "$kq8 < $kt4 && $kt4 < $kq4"
    check "SmolLM2 KLD turbo4 (Lloyd-Max) $kt4 < turbo4 (fork table) $kt4f" "$kt4 < $kt4f"
    check "SmolLM2 KLD q8_0/turbo3 $kq3 < Boundary V 2+2 $kbv < q8_0/turbo2 $kq2" "$kq3 < $kbv && $kbv < $kq2"
    check "SmolLM2 KLD q4_0r (rotated) $kq4r < q4_0 $kq4" "$kq4r < $kq4"
    bench "$M" "$(select_configs "$CONFIGS_FULL" 'turbo4,bv2+2,turbo4 fork')" "$L" 0,256 32 4 1 bench.json || ok=0
    n=$(grep -c '"tokens_per_s"' "$L/bench.json" || true)
    check "strata-bench gave $n rows (4 caches x 2 depths x pp/tg = 16)" "$n == 16"
  else
    echo "  note: $M missing; the SmolLM2 part of the smoke ladder is skipped (cmake -P cmake/fetch_model.cmake)"
  fi
  secs=$(( $(date +%s) - start ))
  echo "smoke ladder: ${secs} s, load average $(loadavg); results in $OUT"
  [ $ok = 1 ] && echo "smoke ladder: all bounds held" && exit 0
  echo "smoke ladder: FAILED"; exit 1
fi

MPATH=$(model_path "$MODEL")
[ -f "$MPATH" ] || die "no model $MPATH (cmake -DMODEL=smollm2|gemma3 -P cmake/fetch_model.cmake)"
OUT=${OUT:-$ROOT/build/ladder}
DIR=$OUT/$(model_tag "$MODEL")
if [ ${#ACT_ARGS[@]} -gt 0 ]; then
  case ,$STAGES, in *,peer,*|*,peer-sweep,*) die "--q8-act with a peer stage: llama.cpp has one activation mode; run peer and peer-sweep without --q8-act" ;; esac
  DIR=$DIR-q8act
fi
mkdir -p "$DIR"
write_meta "$DIR"
CONFIGS=$(select_configs "$CONFIGS_FULL" "$ONLY")
fail=0
for stage in ${STAGES//,/ }; do
  t0=$(date +%s)
  echo "== $stage ($(model_tag "$MODEL")), load average $(loadavg)"
  case $stage in
    quality) quality "$MPATH" "$CTXS" "$CHUNKS" "$CONFIGS" "$DIR" || fail=1 ;;
    bench) bench "$MPATH" "$CONFIGS" "$DIR" "$BENCH_DEPTH" 512 32 1 bench.json || fail=1 ;;
    sweep) bench "$MPATH" "$(select_configs "$CONFIGS_FULL" "$SWEEP_NAMES")" "$DIR" "$SWEEP_DEPTHS" 0 32 2 sweep.json || fail=1 ;;
    needle) needle "$MPATH" "$CONFIGS" "$DIR" "$NEEDLE_CTX" || fail=1 ;;
    peer) peer "$MPATH" "$CTXS" "$CHUNKS" "$DIR" || fail=1 ;;
    peer-sweep) peer_sweep "$MPATH" "$DIR" "$SWEEP_DEPTHS" || fail=1 ;;
    *) die "unknown stage '$stage' (quality, bench, sweep, needle, peer, peer-sweep)" ;;
  esac
  echo "$stage $(( $(date +%s) - t0 )) s, load average after: $(loadavg)" | tee -a "$DIR/stages.txt"
done
if [ $REPORT = 1 ]; then
  PY=python3
  [ -x "$CACHE/venv/bin/python3" ] && PY=$CACHE/venv/bin/python3
  "$PY" "$ROOT/bench/ladder/report.py" "$OUT" || fail=1
fi
exit $fail
