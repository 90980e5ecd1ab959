#!/usr/bin/env python3
"""Markdown tables from strata_kernels_bench JSON output (medians of --benchmark_repetitions).

usage: kernels_report.py bench.json
Per kernel and size: CPU time (median), compressed GB/s, values/s, and the ratio of the
codec's time to f16's time in the same run (< 1: faster than f16).
"""
import json
import re
import sys


def main(path):
    runs = json.load(open(path))["benchmarks"]
    rows = {}
    for r in runs:
        if r.get("aggregate_name") != "median":
            continue
        m = re.match(r"BM_(\w+)<(.+)>/(\d+)(?:/(\d+))?_median", r["name"])
        kernel, codec, n, q = m.group(1), m.group(2), int(m.group(3)), m.group(4)
        rows[(kernel, n, q, codec)] = r
    codecs = []
    for (_, _, _, c) in rows:
        if c not in codecs:
            codecs.append(c)
    for kernel in ["dot", "axpy", "decode", "encode"]:
        shapes = sorted({(n, q) for (k, n, q, _) in rows if k == kernel},
                        key=lambda s: (s[0], int(s[1] or 0)))
        for n, q in shapes:
            title = f"{kernel}, {n} rows of 128" + (f", {q} queries" if q else "")
            print(f"\n**{title}**\n")
            print("| codec | CPU time (us) | compressed GB/s | Gvalues/s | time / f16 |")
            print("|---|---|---|---|---|")
            base = rows.get((kernel, n, q, "f16"))
            for c in codecs:
                r = rows.get((kernel, n, q, c))
                if r is None:
                    continue
                t = r["cpu_time"] / 1000.0 if r["time_unit"] == "ns" else r["cpu_time"]
                ratio = r["cpu_time"] / base["cpu_time"] if base else float("nan")
                print(f"| {c} | {t:.1f} | {r['bytes_per_second'] / 1e9:.2f} | "
                      f"{r['items_per_second'] / 1e9:.2f} | {ratio:.2f} |")


if __name__ == "__main__":
    main(sys.argv[1])
