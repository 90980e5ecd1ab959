#!/usr/bin/env python3
"""Two builds of one Google Benchmark binary, run alternately on one core: per row, the median
CPU time of each and their ratio (new / old).

usage: bench/ab.py OLD_BINARY NEW_BINARY [--rounds N] [--cpu C] [--limit PCT] [-- BENCH_ARGS...]

Each round runs OLD then NEW (then the order flips every round), each with --benchmark_format=
json and the BENCH_ARGS (e.g. --benchmark_filter=..., --benchmark_min_time=0.1); the
environment (STRATA_TARGET, ...) passes through. A row's median is over all its runs and
repetitions. Rows whose ratio is outside 1 +- LIMIT % are marked; the exit status is 0 either
way (noise on a shared VM is for a person to judge: rerun the marked rows with a filter).
"""
import json
import statistics
import subprocess
import sys


def run(binary, cpu, args):
    cmd = ["taskset", "-c", str(cpu), binary, "--benchmark_format=json"] + args
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    times = {}
    for b in json.loads(out)["benchmarks"]:
        if b.get("run_type", "iteration") != "iteration":
            continue
        times.setdefault(b["run_name"] if "run_name" in b else b["name"], []).append(
            b["cpu_time"] * {"ns": 1e-3, "us": 1.0, "ms": 1e3, "s": 1e6}[b["time_unit"]])
    return times


def main(argv):
    rounds, cpu, limit, rest = 3, 1, 3.0, []
    if "--" in argv:
        rest = argv[argv.index("--") + 1:]
        argv = argv[:argv.index("--")]
    old, new = argv[0], argv[1]
    i = 2
    while i < len(argv):
        if argv[i] == "--rounds":
            rounds = int(argv[i + 1])
        elif argv[i] == "--cpu":
            cpu = argv[i + 1]  # a core or a taskset list (0-1)
        elif argv[i] == "--limit":
            limit = float(argv[i + 1])
        else:
            sys.exit(f"error: unknown option {argv[i]} (ab.py)")
        i += 2
    acc = {"old": {}, "new": {}}
    order = []
    for r in range(rounds):
        pair = [("old", old), ("new", new)] if r % 2 == 0 else [("new", new), ("old", old)]
        for tag, binary in pair:
            for name, ts in run(binary, cpu, rest).items():
                if name not in order:
                    order.append(name)
                acc[tag].setdefault(name, []).extend(ts)
    marked = 0
    print(f"{'benchmark':48} {'old us':>10} {'new us':>10} {'new/old':>8}")
    ratios = []
    for name in order:
        if name not in acc["old"] or name not in acc["new"]:
            continue
        o, n = statistics.median(acc["old"][name]), statistics.median(acc["new"][name])
        ratio = n / o
        ratios.append(ratio)
        flag = "" if abs(ratio - 1) * 100 <= limit else "  <-- outside"
        marked += bool(flag)
        print(f"{name:48} {o:10.2f} {n:10.2f} {ratio:8.3f}{flag}")
    print(f"{len(ratios)} rows, {rounds} rounds; median ratio {statistics.median(ratios):.3f}; "
          f"{marked} outside +-{limit:g} %")


if __name__ == "__main__":
    main(sys.argv[1:])
