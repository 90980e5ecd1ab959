#!/usr/bin/env python3
"""strata-server's capacity in a fixed memory budget, with every slot's context really full.

For each KV policy it starts `strata-server -c auto --mem GiB -np N` (the per-slot context the
whole-process plan allows), then fills every slot at once: N concurrent /v1/completions
requests, each a distinct slice of wiki.test.raw sized to the slot's context less a few tokens,
greedy, with max_tokens past the end so that generation stops only when the context is full
(finish_reason "length"). Then it reads /slots (tokens held, KV bytes) and the server's peak
resident set (/proc/PID/status VmHWM) and compares it with --mem.

usage: bench/server_capacity.py [--bin build/bin] [--mem 0.25] [-np 8] [-t 2] [--text FILE]
"""
import argparse
import http.client
import json
import os
import re
import subprocess
import threading
import time

POLICIES = [("f16", "-ctk f16 -ctv f16"), ("q8_0", "-ctk q8_0 -ctv q8_0"),
            ("q8_0/turbo3", "-ctk q8_0 -ctv turbo3"), ("turbo4", "-ctk turbo4 -ctv turbo4")]


def start(a, policy):
    cmd = [os.path.join(a.bin, "strata-server"), "--port", "0", "-c", "auto", "--mem", str(a.mem),
           "-np", str(a.np), "-t", str(a.threads), "--kv-policy", policy]
    if a.model:
        cmd += ["-m", a.model]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    log = []
    for line in p.stderr:
        log.append(line)
        m = re.search(r"listening on http://[^:]+:(\d+)", line)
        if m:
            threading.Thread(target=lambda: [None for _ in p.stderr], daemon=True).start()
            return p, int(m.group(1)), "".join(log)
    raise SystemExit("server did not start:\n" + "".join(log))


def call(port, method, path, body=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=3600)
    for _ in range(200):
        try:
            conn.request(method, path, json.dumps(body) if body is not None else None,
                         {"Content-Type": "application/json"})
            break
        except (ConnectionRefusedError, ConnectionResetError):
            time.sleep(0.05)
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=3600)
    r = conn.getresponse()
    data = r.read().decode()
    conn.close()
    return r.status, json.loads(data) if data else None


def vm_hwm(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def fill(port, text, start_char, n_ctx, chars_per_token, out):
    """One slot: a prompt of n_ctx - 16 tokens (shrunk until it fits), then generation to the end."""
    want = n_ctx - 16
    n_chars = int(want * chars_per_token)
    while True:
        prompt = text[start_char:start_char + n_chars]
        st, r = call(port, "POST", "/v1/completions",
                     {"prompt": prompt, "max_tokens": n_ctx, "temperature": 0})
        if st == 200:
            out.append(r)
            return
        n_chars = int(n_chars * 0.95)  # the prompt was longer than the context: 400


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="build/bin")
    ap.add_argument("--model", default="")
    ap.add_argument("--mem", type=float, default=0.25)
    ap.add_argument("-np", type=int, default=8)
    ap.add_argument("-t", "--threads", type=int, default=2)
    ap.add_argument("--text", default=os.path.join(
        os.environ.get("STRATA_DATA_DIR", "/work/shared/data"), "wiki.test.raw"))
    ap.add_argument("--policies", default=",".join(n for n, _ in POLICIES))
    a = ap.parse_args()
    text = open(a.text, encoding="utf-8").read()
    budget = a.mem * 2**30
    rows = []
    for name, policy in POLICIES:
        if name not in a.policies.split(","):
            continue
        p, port, log = start(a, policy)
        try:
            _, slots = call(port, "GET", "/slots")
            n_ctx = slots[0]["n_ctx"]
            # Characters per token of this text, from one probe.
            st, r = call(port, "POST", "/v1/completions",
                         {"prompt": text[:1000], "max_tokens": 1, "temperature": 0})
            assert st == 200, r
            cpt = 1000 / r["usage"]["prompt_tokens"]
            call(port, "POST", "/slots/0?action=erase")
            out, threads = [], []
            for i in range(a.np):
                t = threading.Thread(target=fill,
                                     args=(port, text, 20000 + i * 50000, n_ctx, cpt, out))
                t.start()
                threads.append(t)
            for t in threads:
                t.join()
            _, slots = call(port, "GET", "/slots")
            held = sum(s["n_cached"] for s in slots)
            kv = sum(s["kv_bytes"] for s in slots)
            full = sum(1 for s in slots if s["n_cached"] >= s["n_ctx"] - 1)
            finish = sorted({r["choices"][0]["finish_reason"] for r in out})
            peak = vm_hwm(p.pid)
            rows.append((name, n_ctx, held, full, kv, peak, finish))
            print(f"{name}: {a.np} x {n_ctx} tokens, held {held} ({full} slots full, finish "
                  f"{finish}), KV {kv / 2**20:.2f} MiB, peak RSS {peak / 2**20:.2f} MiB "
                  f"({100 * peak / budget:.2f} % of --mem)", flush=True)
        finally:
            p.terminate()
            p.wait()
    f16 = next((r[2] for r in rows if r[0] == "f16"), 0)
    print(f"\n`strata-server -c auto --mem {a.mem:g} -np {a.np} -t {a.threads}`, every slot filled:\n")
    print("| KV | tokens per slot | tokens held | vs f16 | KV in total (MiB) | peak RSS (MiB) | "
          "peak / --mem |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, n_ctx, held, full, kv, peak, _ in rows:
        print(f"| {name} | {n_ctx:,} | {held:,} | {held / f16 if f16 else 0:.2f}x | "
              f"{kv / 2**20:.2f} | {peak / 2**20:.2f} | {100 * peak / budget:.2f} % |")


if __name__ == "__main__":
    main()
