"""A bounded load test of strata-server on loopback.

For each KV policy and each client count it starts strata-server (pinned with taskset to the
CPUs given), sends REQUESTS streamed /v1/completions requests (distinct prompts of about
PROMPT_TOKENS tokens, greedy, at most GEN tokens; the model may end earlier, and the tokens
counted are the usage the server reports) from N concurrent clients, and reports requests/s,
time to first token p50/p95, the aggregate generated tokens/s (wall time), the tokens/s of the
server's generation steps alone (prefill excluded, from /metrics) and the server's peak RSS, as a
Markdown table and JSON lines.

Usage: python3 bench/server_load.py [--bin build/bin] [--model FILE] [--clients 1,4]
       [--requests 16] [--gen 128] [--prompt-tokens 128] [--np 4] [--ctx 2048]
       [--policies "-ctk f16 -ctv f16,-ctk q8_0 -ctv turbo3"] [--cpus 0,1] [--threads 2]
(--ctx is per slot; the server gets -c ctx*np; --np 0 gives each client count as many slots.)
"""
import argparse
import http.client
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time


def start(args, policy, n_slots):
    cmd = [os.path.join(args.bin, "strata-server"), "-m", args.model, "--port", "0",
           "-np", str(n_slots), "-c", str(args.ctx * n_slots), "-t", str(args.threads),
           "--kv-policy", policy, "--queue", str(max(64, args.requests))]
    if args.cpus:
        cmd = ["taskset", "-c", args.cpus] + cmd
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    for line in p.stderr:
        m = re.search(r"listening on http://[^:]+:(\d+)", line)
        if m:
            threading.Thread(target=lambda: [None for _ in p.stderr], daemon=True).start()
            return p, int(m.group(1))
    raise SystemExit("server did not start")


def one_request(port, prompt, gen, out):
    body = json.dumps({"prompt": prompt, "max_tokens": gen, "temperature": 0, "stream": True,
                       "stream_options": {"include_usage": True}})
    t0 = time.perf_counter()
    for attempt in range(100):
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
            conn.request("POST", "/v1/completions", body, {"Content-Type": "application/json"})
            r = conn.getresponse()
            break
        except (ConnectionRefusedError, ConnectionResetError):
            time.sleep(0.05)
    first = None
    tokens = 0
    for raw in r:
        line = raw.decode().strip()
        if not line.startswith("data: ") or line == "data: [DONE]":
            continue
        chunk = json.loads(line[6:])
        if chunk.get("usage"):
            tokens = chunk["usage"]["completion_tokens"]
        elif first is None and chunk["choices"] and chunk["choices"][0]["text"]:
            first = time.perf_counter() - t0
    conn.close()
    out.append((first or 0.0, time.perf_counter() - t0, tokens))


def metric(port, name):
    conn = http.client.HTTPConnection("127.0.0.1", port)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    m = re.search(r"^%s (\S+)$" % name, text, re.M)
    return float(m.group(1)) if m else 0.0


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * (len(xs) - 1) + 0.5))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="build/bin")
    ap.add_argument("--model", default=os.path.expanduser(
        "~/.cache/strata/models/SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("--clients", default="1,4")
    ap.add_argument("--requests", type=int, default=16)
    ap.add_argument("--gen", type=int, default=128)
    ap.add_argument("--prompt-tokens", type=int, default=128)
    ap.add_argument("--np", type=int, default=4, help="slots; 0: as many as clients")
    ap.add_argument("--ctx", type=int, default=2048)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cpus", default="")
    ap.add_argument("--policies", default="-ctk f16 -ctv f16,-ctk q8_0 -ctv turbo3,-ctk turbo4 -ctv turbo4")
    args = ap.parse_args()
    # Distinct prompts (no shared prefix beyond BOS) of about prompt_tokens tokens each.
    words = "the cat sat on a warm mat while rain fell over quiet hills and old trees".split()
    rows = []
    print("| KV | clients | requests/s | TTFT p50 (s) | TTFT p95 (s) | generated tok/s "
          "| generation-step tok/s | peak RSS (MiB) |")
    print("|---|---|---|---|---|---|---|---|")
    for policy in args.policies.split(","):
        for n in [int(c) for c in args.clients.split(",")]:
            p, port = start(args, policy, args.np if args.np > 0 else n)
            results = []
            jobs = [("Story %d: " % i) + " ".join(words[(i + k) % len(words)]
                                                  for k in range(int(args.prompt_tokens * 0.9)))
                    for i in range(args.requests)]
            lock = threading.Lock()

            def client():
                while True:
                    with lock:
                        if not jobs:
                            return
                        prompt = jobs.pop()
                    one_request(port, prompt, args.gen, results)

            t0 = time.perf_counter()
            ts = [threading.Thread(target=client) for _ in range(n)]
            for t in ts:
                t.start()
            for t in ts:
                t.join()
            wall = time.perf_counter() - t0
            rss = metric(port, "strata_process_resident_peak_bytes") / 2**20
            # Tokens per second of the generation steps alone (prefill excluded), as the server
            # measures them.
            step_tps = metric(port, "strata_generated_tokens_per_second")
            p.terminate()
            p.wait()
            ttft = [r[0] for r in results]
            tokens = sum(r[2] for r in results)
            row = {"policy": policy, "clients": n, "requests": len(results),
                   "requests_per_s": len(results) / wall, "ttft_p50_s": statistics.median(ttft),
                   "ttft_p95_s": pct(ttft, 0.95), "gen_tokens_per_s": tokens / wall,
                   "step_tokens_per_s": step_tps, "rss_peak_mib": rss, "wall_s": wall}
            rows.append(row)
            print("| %s | %d | %.2f | %.3f | %.3f | %.1f | %.1f | %.0f |" % (
                policy, n, row["requests_per_s"], row["ttft_p50_s"], row["ttft_p95_s"],
                row["gen_tokens_per_s"], step_tps, rss), flush=True)
    for r in rows:
        print(json.dumps(r))


if __name__ == "__main__":
    sys.exit(main())
