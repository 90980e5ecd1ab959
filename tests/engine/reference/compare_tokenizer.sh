#!/usr/bin/env bash
# tests/engine/reference/compare_tokenizer.sh — strata-tokenize against llama.cpp's llama_tokenize on
# the vocabularies at hand (shared/data/vocab, stories260K, the cached SmolLM2 and Gemma 3
# models) and on wiki.test.raw, the llama.cpp vocab test strings and 6,000 random strings
# (special-token texts among them), with add_special/parse_special off and on.
#
#   bench/llamacpp.sh build                           # once: llama.cpp's static libraries
#   tests/engine/reference/compare_tokenizer.sh [BUILD_DIR]  # BUILD_DIR holds bin/strata-tokenize
#
# Known difference: Gemma 3's "</s>" (a user-defined HTML tag there) stays plain text in
# llama.cpp when parse_special is off, since llama.cpp marks every "</s>" token as an
# end-of-generation control token; strata cuts it out as the user-defined token it is.
set -euo pipefail
here=$(cd "$(dirname "$0")/../../.." && pwd)
build=${1:-$here/build}
cache=${STRATA_CACHE_DIR:-$HOME/.cache/strata}
data=${STRATA_DATA_DIR:-$here/../shared/data}
lcpp=$cache/llama.cpp
tok=$build/bin/strata-tokenize
ref=$lcpp/tokenize-ref
die() { echo "error: $* (compare_tokenizer.sh)" >&2; exit 1; }
[[ -x $tok ]] || die "no $tok; build the strata-tokenize target"
[[ -f $lcpp/build/src/libllama.a ]] || die "no llama.cpp build in $lcpp; run bench/llamacpp.sh build"

libs=("$lcpp/build/src/libllama.a" "$lcpp/build/ggml/src/libggml.a"
      "$lcpp/build/ggml/src/libggml-cpu.a" "$lcpp/build/ggml/src/libggml-base.a")
g++ -O2 -std=c++17 -I"$lcpp/src/include" -I"$lcpp/src/ggml/include" \
  "$here/tests/engine/reference/tokenize_llamacpp.cpp" "${libs[@]}" -lpthread -lgomp -ldl -o "$ref"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 - "$work" <<'PY'
import random, sys
specials = ["<|im_start|>", "<|im_end|>", "<s>", "</s>", "<start_of_turn>", "<end_of_turn>",
            "<unk>", "<table>", "  ", "\n\n", "<|endoftext|>", "<bos>", "<0x41>", "[multimodal]"]
base = list("aZs'tTreEvVmMlLdD 0123456789\r\n\t.,!?\"()-$+<=>^~|`_") + [
    '\u00a0', '\u3000', '\u00bd', '\u0301', '\u00e9', '\u4f60', '\U0001F600', '\u2028',
    '\u0660', '\u001c', '\u0085', '\u2581', '\ufffd', '\u200b']
for name, alphabet, seed in (("rand", base, 1), ("rand_special", base + specials, 2)):
    rng = random.Random(seed)
    with open("%s/%s.inp" % (sys.argv[1], name), "w") as f:
        for _ in range(3000):
            f.write("".join(rng.choice(alphabet) for _ in range(rng.randint(0, 25))))
            f.write("\n__ggml_vocab_test__\n")
PY

models=("$data/vocab/ggml-vocab-llama-spm.gguf" "$data/vocab/ggml-vocab-gpt-2.gguf"
        "$data/stories260K.gguf" "$cache/models/SmolLM2-135M-Instruct.Q4_1.gguf"
        "$cache/models/gemma-3-270m-q4_k_m.gguf")
inputs=("$data/wiki.test.raw" "$data/vocab/ggml-vocab-llama-spm.gguf.inp" "$work/rand.inp"
        "$work/rand_special.inp")
same=0 differ=0
for m in "${models[@]}"; do
  [[ -f $m ]] || { echo "skip $m (absent)"; continue; }
  for f in "${inputs[@]}"; do
    [[ -f $f ]] || continue
    mode=--ids
    grep -q __ggml_vocab_test__ "$f" && mode=--vocab-test
    for flags in "0 0" "0 1" "1 0" "1 1"; do
      read -r add parse <<< "$flags"
      opts=()
      [[ $add == 0 ]] && opts+=(--no-bos)
      [[ $parse == 0 ]] && opts+=(--no-parse-special)
      "$ref" "$m" "$f" "$add" "$parse" | awk '{$1=$1};1' > "$work/ref.txt"
      "$tok" -m "$m" -f "$f" "$mode" "${opts[@]}" | awk '{$1=$1};1' > "$work/mine.txt"
      if cmp -s "$work/ref.txt" "$work/mine.txt"; then
        same=$((same + 1))
        echo "same    $(basename "$m") $(basename "$f") add_special=$add parse_special=$parse" \
             "($(wc -w < "$work/mine.txt") tokens)"
      else
        differ=$((differ + 1))
        echo "DIFFERS $(basename "$m") $(basename "$f") add_special=$add parse_special=$parse:" \
             "$(diff "$work/ref.txt" "$work/mine.txt" | grep -c '^<') of $(wc -l < "$work/ref.txt") lines"
      fi
    done
  done
done
echo "$same runs identical, $differ differ"
