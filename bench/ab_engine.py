#!/usr/bin/env python3
"""Two builds of strata-bench run in turn: per test row (kv, depth, test), the median tokens/s
of each, their ratio (new / old), and the median of the per-round ratios (each round's old and
new ran back to back, so that ratio is the least touched by a VM whose speed drifts).

usage: bench/ab_engine.py OLD_BINARY NEW_BINARY [--rounds N] -- STRATA_BENCH_ARGS...

Each round runs OLD then NEW (the order flips every round) with the STRATA_BENCH_ARGS and
`-o json`. Example (SmolLM2, the weight-bound end):
  bench/ab_engine.py OLD/strata-bench build/bin/strata-bench --rounds 10 -- \\
      -t 2 -p 0 -n 64 -r 5 -d 256 --kv-policy f16
"""
import json
import statistics
import subprocess
import sys


def run(binary, args):
    cmd = [binary] + args + ["-o", "json"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return {(r["kv"], r["depth"], r["test"]): r["tokens_per_s"] for r in json.loads(out)}


def main(argv):
    rounds, rest = 5, []
    if "--" in argv:
        rest = argv[argv.index("--") + 1:]
        argv = argv[:argv.index("--")]
    if len(argv) < 2:
        sys.exit(__doc__)
    old, new = argv[0], argv[1]
    if "--rounds" in argv:
        rounds = int(argv[argv.index("--rounds") + 1])
    res = {old: [], new: []}
    for r in range(rounds):
        for b in ([old, new] if r % 2 == 0 else [new, old]):
            res[b].append(run(b, rest))
    print(f"{'kv':8} {'depth':>6} {'test':6} {'old t/s':>9} {'new t/s':>9} {'new/old':>8} "
          f"{'paired':>7}  per-round new/old")
    for key in res[old][0]:
        o = [x[key] for x in res[old]]
        n = [x[key] for x in res[new]]
        pairs = sorted(b / a for a, b in zip(o, n))
        mo, mn = statistics.median(o), statistics.median(n)
        print(f"{key[0]:8} {key[1]:>6} {key[2]:6} {mo:9.2f} {mn:9.2f} {mn / mo:8.3f} "
              f"{statistics.median(pairs):7.3f}  {' '.join(f'{p:.2f}' for p in pairs)}")


if __name__ == "__main__":
    main(sys.argv[1:])
