#!/usr/bin/env python3
"""strata-bench's machine-readable output parses whatever the model's metadata holds.

Writes a copy of stories260K whose general.name holds quotes, backslashes, commas, line
breaks, control characters, '|' and non-ASCII text (gguf-new-metadata from PyPI's gguf), runs
strata-bench -o json and -o csv on it with a policy string that has commas and semicolons, and
parses both with Python's json and csv modules: every field must come back unchanged.

usage: bench_output_test.py BIN_DIR DATA_DIR WORK_DIR
"""
import csv
import io
import json
import os
import subprocess
import sys

HOSTILE = 'a "quoted", back\\slash\tname\nsecond line | pipe \x01\x1f </script> é✓'
POLICY = "v:first2,last2=f32;v=bf16;k=f16"


def main():
    bin_dir, data_dir, work = sys.argv[1:4]
    src = os.path.join(data_dir, "stories260K.gguf")
    if not os.path.exists(src):
        print(f"skipped: {src} missing")
        return 0
    os.makedirs(work, exist_ok=True)
    model = os.path.join(work, "hostile.gguf")
    if os.path.exists(model):
        os.remove(model)
    tool = os.path.join(os.path.dirname(sys.executable), "gguf-new-metadata")
    subprocess.run([tool, "--general-name", HOSTILE, "--force", src, model], check=True,
                   capture_output=True)
    common = [os.path.join(bin_dir, "strata-bench"), "-m", model, "-p", "16", "-n", "4", "-r", "1",
              "-d", "0", "--kv-policy", POLICY]
    js = subprocess.run(common + ["-o", "json"], check=True, capture_output=True, text=True).stdout
    rows = json.loads(js)
    assert len(rows) == 2, rows
    for r in rows:
        assert r["model"] == HOSTILE, repr(r["model"])
        assert POLICY in r["kv"] or r["kv"] == POLICY or "q8_0" in r["kv"], r["kv"]
        assert r["test"] in ("pp16", "tg4"), r["test"]
        assert r["tokens_per_s"] > 0
    csv_text = subprocess.run(common + ["-o", "csv"], check=True,
                              capture_output=True).stdout.decode("utf-8")
    table = list(csv.reader(io.StringIO(csv_text, newline="")))
    assert table[0][0] == "model" and len(table) == 3, table
    for row in table[1:]:
        assert len(row) == len(table[0]), row
        assert row[0] == HOSTILE, repr(row[0])
        assert row[2] == rows[0]["kv"], (row[2], rows[0]["kv"])
        assert float(row[5]) > 0
    print("ok: json and csv parse; the hostile name and the policy string survive")
    return 0


if __name__ == "__main__":
    sys.exit(main())
