#!/usr/bin/env python3
"""Reference splits for the BPE pre-tokenizers (examples/engine/src/text/pretokenize.cpp), made with
the `regex` module from the patterns as llama.cpp lists them: each pattern cuts the pieces the
previous one made, and the text between matches stays a piece of its own.

    pretokenize_ref.py OUT_DIR [INPUT.inp ...]

Writes OUT_DIR/pretok_<pre>.txt for pre in gpt-2, smollm, llama3, qwen2, default: one line per
string, "<hex of the UTF-8 text>\t<piece lengths in bytes>". The strings are those of the given
llama.cpp vocab test files (separated by the __ggml_vocab_test__ marker line) and 3000 random
strings over an alphabet of the cases that matter (contractions, digits, \\r\\n, Unicode
spaces, letters, marks, numbers, emoji). tests/engine/tokenizer_test.cpp compares against them.
"""
import os
import random
import sys

import regex

GPT2 = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"
PATTERNS = {
    'gpt-2': [GPT2],
    'smollm': [r"\p{N}", GPT2],
    'llama3': [r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"],
    'qwen2': [r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"],
    'default': [r"[\p{P}\$\+<=>\^~\|]+", GPT2, r"\p{N}+", r"[0-9][0-9][0-9]"],
}
MARKER = "\n__ggml_vocab_test__\n"
ALPHABET = list("aZs'tTreEvVmMlLdD 0123456789\r\n\t.,!?\"()-$+<=>^~|`_") + [
    '\u00a0', '\u3000', '\u00bd', '\u0301', '\u00e9', '\u4f60', '\U0001F600', '\u2028',
    '\u0660', '\u001c', '\u0085', '\u2581', '\ufffd', '\u200b', '\u0416', '\u2167']


def split(patterns, text):
    chunks = [text] if text else []
    for p in patterns:
        r = regex.compile(p)
        out = []
        for c in chunks:
            last = 0
            for m in r.finditer(c):
                if m.start() > last:
                    out.append(c[last:m.start()])
                if m.end() > m.start():
                    out.append(m.group())
                last = m.end()
            if last < len(c):
                out.append(c[last:])
        chunks = out
    return chunks


def main():
    out_dir = sys.argv[1]
    texts = []
    for path in sys.argv[2:]:
        if os.path.exists(path):
            with open(path, 'rb') as f:
                texts += f.read().decode('utf-8').split(MARKER)[:-1]
    rng = random.Random(1)
    for _ in range(3000):
        texts.append(''.join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 30))))
    os.makedirs(out_dir, exist_ok=True)
    for pre, patterns in PATTERNS.items():
        with open(os.path.join(out_dir, 'pretok_%s.txt' % pre), 'w') as f:
            for t in texts:
                lens = ' '.join(str(len(c.encode('utf-8'))) for c in split(patterns, t))
                f.write('%s\t%s\n' % (t.encode('utf-8').hex(), lens))


if __name__ == '__main__':
    main()
