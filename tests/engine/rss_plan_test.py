#!/usr/bin/env python3
"""The whole-process memory plan (--mem-plan, engine::process_plan) against the peak RSS.

Each run fills its context (strata-perplexity: one full window), in its own process; its peak
resident set comes from wait4's rusage. The plan's total must be within TOLERANCE of the peak
(a real model), or within SMALL_SLACK bytes of it (stories260K, whose whole run is about
10 MiB, so the fixed estimates of the plan weigh more). SmolLM2 runs only when it is present.
bench/rss_plan.sh is the full comparison (more models, policies, contexts, strata-chat).

usage: rss_plan_test.py BIN_DIR DATA_DIR CACHE_DIR
"""
import os
import subprocess
import sys

TOLERANCE = 0.03          # |plan / peak - 1| for SmolLM2
SMALL_SLACK = 1 << 20     # |plan - peak| in bytes for stories260K


def plan_total(cmd):
    out = subprocess.run(cmd + ["--mem-plan"], check=True, capture_output=True, text=True).stdout
    totals = [int(l.split()[0]) for l in out.splitlines() if l.split()[-1:] == ["total"]]
    assert len(totals) == 1, out
    return totals[0]


def peak_rss(cmd):
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(p.pid, 0)
    err = p.stderr.read().decode(errors="replace")
    p.stderr.close()
    p.returncode = os.waitstatus_to_exitcode(status)
    assert p.returncode == 0, (cmd, err)
    return usage.ru_maxrss * 1024  # KiB on Linux


def main():
    bin_dir, data_dir, cache_dir = sys.argv[1:4]
    wiki = os.path.join(data_dir, "wiki.test.raw")
    stories = os.path.join(data_dir, "stories260K.gguf")
    smol = os.path.join(cache_dir, "models", "SmolLM2-135M-Instruct.Q4_1.gguf")
    ppl = os.path.join(bin_dir, "strata-perplexity")
    if not os.path.exists(stories) or not os.path.exists(wiki):
        print("skipped: stories260K or wiki.test.raw missing")
        return 0
    runs = [(stories, "256", "-ctk f16 -ctv f16")]
    if os.path.exists(smol):
        runs += [(smol, "512", "-ctk f16 -ctv f16"), (smol, "512", "-ctk q8_0 -ctv turbo3")]
    else:
        print(f"SmolLM2 not found ({smol}): stories260K only")
    failed = 0
    for model, ctx, pol in runs:
        cmd = [ppl, "-m", model, "-f", wiki, "-c", ctx, "--chunks", "1", "-t", "2",
               "--kv-policy", pol, "--no-progress"]
        plan, peak = plan_total(cmd), peak_rss(cmd)
        small = model == stories
        ok = abs(plan - peak) <= SMALL_SLACK if small else abs(plan / peak - 1) <= TOLERANCE
        print(f"{os.path.basename(model)} -c {ctx} {pol}: plan {plan / 2**20:.2f} MiB, "
              f"peak RSS {peak / 2**20:.2f} MiB ({100 * plan / peak:.2f} %) {'ok' if ok else 'FAIL'}")
        failed += not ok
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
