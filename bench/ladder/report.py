#!/usr/bin/env python3
"""Collects bench/ladder.sh results into markdown tables and PNG plots.

usage: report.py OUT [--plots DIR] [--results-md FILE]

OUT holds one folder per model (<model>-q8act: strata with --q8-act, compared with the llama.cpp
points of <model>/peer.tsv) (quality.tsv, bench.json, sweep.json, needle.md, meta.txt,
stages.txt, and peer.tsv from the ladder's peer stage: llama.cpp's KV types). Writes
OUT/ladder.md; with matplotlib, DIR/ladder_kld_<model>.png (KLD, log scale, against bits/value),
DIR/ladder_tg_<model>.png (tg tokens/s against context depth) and, when peer.tsv exists,
DIR/fronts_<model>_<ctx>.png (strata's and llama.cpp's fronts);
with --results-md, replaces the text between the markers
  <!-- ladder:tables:begin --> ... <!-- ladder:tables:end -->
of FILE with the tables (nothing else in FILE changes).
"""
import csv
import json
import math
import os
import re
import sys

BEGIN, END = "<!-- ladder:tables:begin -->", "<!-- ladder:tables:end -->"
PRETTY = {"smollm2": "SmolLM2-135M-Instruct (Q4_1)", "gemma3": "Gemma 3 270M (Q4_K_M)"}
PRETTY.update({k + "-q8act": v + ", `--q8-act` (one int8 activation plane)" for k, v in list(PRETTY.items())})
Q8ACT = "-q8act"  # ladder.sh --q8-act: strata's runs in that mode, llama.cpp's from the plain folder
# Pairs measured with strata's Lloyd-Max tables and with the TurboQuant fork's.
FORK_PAIRS = ["turbo4", "turbo3", "q8_0/turbo4", "q8_0/turbo3"]


def fnum(s):
    try:
        return float(s)
    except (TypeError, ValueError):
        return None


def read_quality(d, name="quality.tsv"):
    p = os.path.join(d, name)
    if not os.path.exists(p):
        return []
    with open(p, newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def read_json_lists(paths):
    rows = []
    for p in paths:
        if not os.path.exists(p):
            continue
        text = open(p).read()
        for m in re.finditer(r"\[.*?\n\]", text, re.S):
            rows += json.loads(m.group(0))
    return rows


def bench_rows(d, stem):
    rows = []
    for cb in ("lm", "fork"):
        for r in read_json_lists([os.path.join(d, "logs", f"{stem}-{cb}.json")]):
            r["codebook"] = cb
            rows.append(r)
    return rows


def read_meta(d):
    meta = {}
    p = os.path.join(d, "meta.txt")
    if os.path.exists(p):
        for line in open(p):
            k, _, v = line.partition(": ")
            meta[k.strip()] = v.strip()
    return meta


def pareto(points):
    """Names of the points not dominated in (bits, kld): no other point has <= bits and <= kld
    with one of them strictly smaller."""
    front = set()
    for n, b, k in points:
        if not any((b2 <= b and k2 <= k) and (b2 < b or k2 < k) for n2, b2, k2 in points if n2 != n):
            front.add(n)
    return front


def fmt_err(v, e, digits):
    if v is None:
        return "—"
    return f"{v:.{digits}f} ± {e:.{digits}f}" if e is not None else f"{v:.{digits}f}"


def kld_fmt(v, e):
    if v is None:
        return "—"
    d = max(2, 2 - int(math.floor(math.log10(abs(e))))) if e else 4
    d = min(d, 6)
    return f"{v:.{d}f} ± {e:.{d}f}"


def config_key(r):
    return (r["config"], r["codebook"])


def quality_tables(model, rows, out):
    by_ctx = {}
    for r in rows:
        by_ctx.setdefault(r["ctx"], []).append(r)
    summary = {}
    for ctx, rs in sorted(by_ctx.items(), key=lambda kv: int(kv[0])):
        ok = [r for r in rs if r["status"] == "ok"]
        base = next((r for r in ok if r["config"] == "f16"), None)
        pts = [(r["config"], fnum(r["bits_per_value"]), fnum(r["kld"])) for r in ok
               if fnum(r["kld"]) is not None and r["codebook"] == "lm"]
        front = pareto(pts + ([("f16", 16.0, 0.0)] if base else []))
        out.append(f"\n#### {PRETTY.get(model, model)}, context {ctx}\n")
        out.append("| configuration | policy string | bits/value | KV for the context | PPL | ΔPPL | mean KLD | same top-1 | Pareto | run s |")
        out.append("|---|---|---:|---:|---:|---:|---:|---:|:---:|---:|")
        bppl = fnum(base["ppl"]) if base else None
        for r in rs:
            name = r["config"] + (" (fork table)" if r["codebook"] == "fork" and "fork" not in r["config"] else "")
            if r["status"] != "ok":
                out.append(f"| {name} | `{r['policy']}` | — | — | FAILED: {r['error']} | | | | | {r['seconds']} |")
                continue
            ppl, pe = fnum(r["ppl"]), fnum(r["ppl_err"])
            d = f"{100 * (ppl / bppl - 1):+.2f} %" if bppl and ppl and r["config"] != "f16" else "—"
            k = kld_fmt(fnum(r["kld"]), fnum(r["kld_err"])) if r["kld"] else "— (base)"
            t = f"{fnum(r['top1']):.1f} %" if r["top1"] else "—"
            par = "★" if r["codebook"] == "lm" and r["config"] in front else ""
            out.append(f"| {name} | `{r['policy']}` | {fnum(r['bits_per_value']):.2f} | {r['kv_size']} | "
                       f"{fmt_err(ppl, pe, 3)} | {d} | {k} | {t} | {par} | {r['seconds']} |")
        summary[ctx] = {config_key(r): r for r in ok}
        # Fork table vs Lloyd-Max.
        q = summary[ctx]
        pairs = [(c, q.get((c, "lm")), q.get((c + " fork", "fork"))) for c in FORK_PAIRS]
        pairs = [p for p in pairs if p[1] and p[2]]
        if pairs:
            out.append(f"\nTurbo codebooks, {PRETTY.get(model, model)}, context {ctx}: strata's Lloyd-Max tables against the "
                       "TurboQuant fork's (same blocks, same norm correction; only the centroids differ):\n")
            out.append("| configuration | KLD, Lloyd-Max | KLD, fork table | fork / Lloyd-Max | PPL, Lloyd-Max | PPL, fork table | top-1, Lloyd-Max | top-1, fork |")
            out.append("|---|---:|---:|---:|---:|---:|---:|---:|")
            for c, a, b in pairs:
                ka, kb = fnum(a["kld"]), fnum(b["kld"])
                out.append(f"| {c} | {kld_fmt(ka, fnum(a['kld_err']))} | {kld_fmt(kb, fnum(b['kld_err']))} | "
                           f"{kb / ka:.2f}× | {fnum(a['ppl']):.3f} | {fnum(b['ppl']):.3f} | "
                           f"{fnum(a['top1']):.1f} % | {fnum(b['top1']):.1f} % |")
        # Boundary V: gap closed between q8_0/turbo2 and q8_0/turbo3.
        lo, hi = q.get(("q8_0/turbo2", "lm")), q.get(("q8_0/turbo3", "lm"))
        bvs = [(n, q.get((n, "lm"))) for n in ("bv2+2", "bv4+4", "la5", "la6")]
        bvs = [b for b in bvs if b[1]]
        if lo and hi and bvs:
            out.append(f"\nBoundary V, {PRETTY.get(model, model)}, context {ctx}: share of the q8_0/turbo2 → q8_0/turbo3 gap "
                       "closed, by PPL and by KLD (0 % = q8_0/turbo2, 100 % = q8_0/turbo3):\n")
            out.append("| configuration | bits/value | PPL | gap closed (PPL) | KLD | gap closed (KLD) |")
            out.append("|---|---:|---:|---:|---:|---:|")
            for n, r in [("q8_0/turbo2", lo)] + bvs + [("q8_0/turbo3", hi)]:
                pg = (fnum(lo["ppl"]) - fnum(r["ppl"])) / (fnum(lo["ppl"]) - fnum(hi["ppl"]))
                kg = (fnum(lo["kld"]) - fnum(r["kld"])) / (fnum(lo["kld"]) - fnum(hi["kld"]))
                out.append(f"| {n} | {fnum(r['bits_per_value']):.2f} | {fnum(r['ppl']):.3f} | {100 * pg:.0f} % | "
                           f"{kld_fmt(fnum(r['kld']), fnum(r['kld_err']))} | {100 * kg:.0f} % |")
    return summary


# The issue-21 goal: for each llama.cpp point, a strata configuration with no more bits/value
# and at most this fraction of its KLD, the difference at least Z_GOAL standard errors.
KLD_RATIO_GOAL, Z_GOAL = 0.8, 3.0


def fronts(model, rows, peer_rows, out):
    """Per context: llama.cpp's points against strata's best configuration at no more bits.
    Returns {ctx: (strata points, peer points)} for the plot; points are (name, bits, kld, se)."""
    res = {}
    for ctx in sorted({r["ctx"] for r in peer_rows}, key=int):
        pp = [(r["config"], fnum(r["bits_per_value"]), fnum(r["kld"]), fnum(r["kld_err"]) or 0.0)
              for r in peer_rows if r["ctx"] == ctx and r["status"] == "ok" and fnum(r["kld"]) is not None]
        sp = [(r["config"], fnum(r["bits_per_value"]), fnum(r["kld"]), fnum(r["kld_err"]) or 0.0)
              for r in rows if r["ctx"] == ctx and r["status"] == "ok" and r["codebook"] == "lm"
              and fnum(r["kld"]) is not None]
        if not pp or not sp:
            continue
        res[ctx] = (sp, pp)
        out.append(f"\n#### {PRETTY.get(model, model)}, context {ctx}: strata against llama.cpp's rotated KV\n")
        out.append(f"For each llama.cpp KV configuration (its `llama-perplexity`, flash attention and its Hadamard "
                   f"rotation on, KLD against its own f16-KV logits on the same windows), the strata "
                   f"configuration with the lowest KLD at no more bits/value (KLD against strata's f16-KV "
                   f"logits). Goal: ratio ≤ {KLD_RATIO_GOAL} and the difference ≥ {Z_GOAL:g} standard errors "
                   f"(z = difference / √(SE₁² + SE₂²)).\n")
        out.append("| llama.cpp | bits/value | KLD | strata | bits/value | KLD | strata / llama.cpp | z | goal |")
        out.append("|---|---:|---:|---|---:|---:|---:|---:|:---:|")
        for n, b, k, e in sorted(pp, key=lambda p: -p[1]):
            cand = [p for p in sp if p[1] <= b + 1e-9]
            if not cand:
                out.append(f"| {n} | {b:.2f} | {kld_fmt(k, e)} | — | | | | | no |")
                continue
            sn, sb, sk, se = min(cand, key=lambda p: p[2])
            z = (k - sk) / math.sqrt(e * e + se * se) if (e or se) else float("inf")
            ok = sk <= KLD_RATIO_GOAL * k and z >= Z_GOAL
            out.append(f"| {n} | {b:.2f} | {kld_fmt(k, e)} | {sn} | {sb:.2f} | {kld_fmt(sk, se)} | "
                       f"{sk / k:.2f} | {z:.1f} | {'yes' if ok else 'no'} |")
    return res


def finish_log_plot(fig, ax, xlabel, ylabel, title, path, written):
    """Log-scale y axis, labels, grid and legend; saves the figure to path."""
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="both", lw=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt
    plt.close(fig)
    written.append(path)


def fronts_plot(model, res, plot_dir, written):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    for ctx, (sp, pp) in res.items():
        fig, ax = plt.subplots(figsize=(8, 5.5))
        for pts, fmt, lab in ((sp, "o", "strata"), (pp, "s", "llama.cpp (rotated KV)")):
            pts = [p for p in pts if p[2] > 0]
            line = ax.errorbar([p[1] for p in pts], [p[2] for p in pts], yerr=[p[3] for p in pts], fmt=fmt,
                               capsize=2, label=lab)
            front = pareto([(p[0], p[1], p[2]) for p in pts])
            fr = sorted([p for p in pts if p[0] in front], key=lambda p: p[1])
            ax.plot([p[1] for p in fr], [p[2] for p in fr], "-", lw=1.0, color=line[0].get_color())
            for p in fr:
                ax.annotate(p[0], (p[1], p[2]), fontsize=7, xytext=(4, 2), textcoords="offset points")
        finish_log_plot(fig, ax, "KV bits per value", "mean KL divergence vs own f16 KV (log)",
                        f"{PRETTY.get(model, model)}, context {ctx}: strata and llama.cpp fronts",
                        os.path.join(plot_dir, f"fronts_{model}_{ctx}.png"), written)


def bench_table(model, rows, out):
    if not rows:
        return
    f16 = {(r["depth"], r["test"]): r["tokens_per_s"] for r in rows if r["kv"] == "-ctk f16 -ctv f16" and r["codebook"] == "lm"}
    tests = sorted({r["test"] for r in rows})
    out.append(f"\n#### {PRETTY.get(model, model)}: speed, {' and '.join(tests)} after a context depth "
               f"({rows[0]['threads']} threads; median of the timed repetitions, min..max)\n")
    out.append("| KV policy | codebook | depth | bits/value | KV bytes (depth + test) | pp t/s | pp vs f16 | tg t/s | tg vs f16 |")
    out.append("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    keys = []
    for r in rows:
        k = (r["kv"], r["codebook"], r["depth"])
        if k not in keys:
            keys.append(k)
    for kv, cb, depth in keys:
        rs = {r["test"][:2]: r for r in rows if (r["kv"], r["codebook"], r["depth"]) == (kv, cb, depth)}
        cells = []
        for t in ("pp", "tg"):
            r = rs.get(t)
            if not r:
                cells += ["—", "—"]
                continue
            base = f16.get((depth, r["test"]))
            cells.append(f"{r['tokens_per_s']:.1f} ({r['tokens_per_s_min']:.1f}..{r['tokens_per_s_max']:.1f})")
            cells.append(f"{r['tokens_per_s'] / base:.2f}×" if base else "—")
        any_r = next(iter(rs.values()))
        out.append(f"| `{kv}` | {cb} | {depth} | {any_r['kv_bits_per_value']:.2f} | {any_r['kv_bytes'] / 2**20:.2f} MiB | "
                   + " | ".join(cells) + " |")


def sweep_table(model, rows, peer_rows, out):
    """strata's tg against depth, and llama.cpp's (llama-bench, peer-sweep.json) in the same columns."""
    peer_rows = [r for r in peer_rows if r.get("n_gen", 0) > 0 and r.get("n_prompt", 0) == 0]
    if not rows:
        return
    depths = sorted({r["depth"] for r in rows})
    out.append(f"\n#### {PRETTY.get(model, model)}: tg tokens/s against context depth ({rows[0]['threads']} threads, "
               f"{rows[0]['n_tokens']} tokens, median)\n")
    out.append("| KV policy | " + " | ".join(str(d) for d in depths) + " |")
    out.append("|---|" + "---:|" * len(depths))
    names = []
    for r in rows:
        if r["kv"] not in names:
            names.append(r["kv"])
    for n in names:
        v = {r["depth"]: r["tokens_per_s"] for r in rows if r["kv"] == n and r["test"].startswith("tg")}
        out.append(f"| `{n}` | " + " | ".join(f"{v[d]:.1f}" if d in v else "—" for d in depths) + " |")
    for t in sorted({r["type_k"] for r in peer_rows}):
        v = {r["n_depth"]: r["avg_ts"] for r in peer_rows if r["type_k"] == t}
        out.append(f"| llama.cpp `-ctk {t} -ctv {t}` | " + " | ".join(f"{v[d]:.1f}" if d in v else "—" for d in depths)
                   + " |")


def needle_table(model, d, out):
    p = os.path.join(d, "needle.md")
    if not os.path.exists(p):
        return
    rows = []
    for line in open(p):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 8:
            rows.append(cells)
    if not rows:
        return
    depths = sorted({c[2] for c in rows}, key=float)
    out.append(f"\n#### {PRETTY.get(model, model)}: needle in a haystack ({rows[0][3]} prompt tokens; "
               "found = the pass key appears in the greedy answer; keys found / keys tried per depth)\n")
    out.append("| KV policy | codebook | " + " | ".join(f"depth {x}" for x in depths) + " | all |")
    out.append("|---|---|" + ":---:|" * len(depths) + ":---:|")
    keys = []
    for c in rows:
        if (c[1], c[0]) not in keys:
            keys.append((c[1], c[0]))
    for kv, cb in keys:
        cells, tot, hit = [], 0, 0
        for x in depths:
            v = [c for c in rows if (c[1], c[0], c[2]) == (kv, cb, x)]
            h = sum(c[-2] == "yes" for c in v)  # found: second to last column
            tot += len(v)
            hit += h
            cells.append(f"{h}/{len(v)}" if v else "—")
        out.append(f"| `{kv}` | {cb} | " + " | ".join(cells) + f" | {hit}/{tot} |")


def plots(model, summary, sweep, peer_sweep, plot_dir, written):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("report.py: no matplotlib; plots skipped (pip install matplotlib)", file=sys.stderr)
        return
    if summary:
        fig, ax = plt.subplots(figsize=(8, 5.5))
        markers = ["o", "s", "^", "D"]
        for i, (ctx, q) in enumerate(sorted(summary.items(), key=lambda kv: int(kv[0]))):
            pts = [(n, cb, fnum(r["bits_per_value"]), fnum(r["kld"]), fnum(r["kld_err"])) for (n, cb), r in q.items()
                   if fnum(r["kld"])]
            lm = [p for p in pts if p[1] == "lm"]
            fk = [p for p in pts if p[1] == "fork"]
            ax.errorbar([p[2] for p in lm], [p[3] for p in lm], yerr=[p[4] for p in lm], fmt=markers[i % 4],
                        label=f"strata, context {ctx}", capsize=2)
            if fk:
                ax.errorbar([p[2] for p in fk], [p[3] for p in fk], yerr=[p[4] for p in fk], fmt=markers[i % 4],
                            mfc="none", label=f"fork codebook, context {ctx}", capsize=2)
            front = pareto([(p[0], p[2], p[3]) for p in lm])
            fr = sorted([p for p in lm if p[0] in front], key=lambda p: p[2])
            ax.plot([p[2] for p in fr], [p[3] for p in fr], "--", lw=0.8, color="gray")
            if i == 0:
                for p in pts:
                    ax.annotate(p[0], (p[2], p[3]), fontsize=7, xytext=(4, 2), textcoords="offset points")
        finish_log_plot(fig, ax, "KV bits per value (policy report)", "mean KL divergence vs f16 KV (log)",
                        f"{PRETTY.get(model, model)}: KLD against bits/value (wiki.test.raw)",
                        os.path.join(plot_dir, f"ladder_kld_{model}.png"), written)
    tg = [r for r in sweep if r["test"].startswith("tg")]
    peer_tg = [r for r in peer_sweep if r.get("n_gen", 0) > 0 and r.get("n_prompt", 0) == 0]
    if tg or peer_tg:
        fig, ax = plt.subplots(figsize=(7, 4.5))
        names = []
        for r in tg:
            if r["kv"] not in names:
                names.append(r["kv"])
        for n in names:
            rs = sorted([r for r in tg if r["kv"] == n], key=lambda r: r["depth"])
            ax.errorbar([r["depth"] for r in rs], [r["tokens_per_s"] for r in rs],
                        yerr=[[r["tokens_per_s"] - r["tokens_per_s_min"] for r in rs],
                              [r["tokens_per_s_max"] - r["tokens_per_s"] for r in rs]],
                        marker="o", capsize=2, label=n)
        for t in sorted({r["type_k"] for r in peer_tg}):
            rs = sorted([r for r in peer_tg if r["type_k"] == t], key=lambda r: r["n_depth"])
            ax.errorbar([r["n_depth"] for r in rs], [r["avg_ts"] for r in rs], yerr=[r["stddev_ts"] for r in rs],
                        marker="s", mfc="none", ls="--", capsize=2, label=f"llama.cpp {t} (llama-bench -fa 1)")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("context depth (tokens in the cache)")
        ax.set_ylabel("tg tokens/s (median)")
        ax.set_title(f"{PRETTY.get(model, model)}: generation speed against context")
        ax.grid(True, which="both", lw=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        p = os.path.join(plot_dir, f"ladder_tg_{model}.png")
        fig.savefig(p, dpi=110)
        plt.close(fig)
        written.append(p)


def main(argv):
    if len(argv) < 2 or argv[1] in ("-h", "--help"):
        print(__doc__)
        return 0 if len(argv) >= 2 else 1
    out_dir = argv[1]
    plot_dir, results_md = out_dir, None
    i = 2
    while i < len(argv):
        if argv[i] == "--plots":
            plot_dir = argv[i + 1]
            i += 2
        elif argv[i] == "--results-md":
            results_md = argv[i + 1]
            i += 2
        else:
            print(f"error: unknown argument '{argv[i]}' (report.py)", file=sys.stderr)
            return 1
    out, written = [], []
    models = sorted(m for m in os.listdir(out_dir) if os.path.isdir(os.path.join(out_dir, m)))
    for model in models:
        d = os.path.join(out_dir, model)
        meta = read_meta(d)
        q = read_quality(d)
        if not (q or os.path.exists(os.path.join(d, "logs"))):
            continue
        out.append(f"\n### {PRETTY.get(model, model)}\n")
        if meta:
            out.append(f"Measured {meta.get('date', '?')} at commit `{meta.get('commit', '?')}`, {meta.get('cpu', '?')}, "
                       f"{meta.get('threads', '?')} threads" +
                       (f" ({meta['jobs']})." if meta.get("jobs") else "."))
        st = os.path.join(d, "stages.txt")
        if os.path.exists(st):
            out.append("Stage times and load average (1, 5, 15 min) after each: " +
                       "; ".join(l.strip() for l in open(st)) + ".")
        summary = quality_tables(model, q, out)
        peer_dir = d
        if model.endswith(Q8ACT) and not os.path.exists(os.path.join(d, "peer.tsv")):
            peer_dir = os.path.join(out_dir, model[:-len(Q8ACT)])  # llama.cpp has one mode
        peer = read_quality(peer_dir, "peer.tsv") if os.path.isdir(peer_dir) else []
        if peer:
            vf = os.path.join(peer_dir, "peer-version.txt")
            if os.path.exists(vf):
                out.append("\n" + open(vf).read().strip() + ".")
            fronts_plot(model, fronts(model, q, peer, out), plot_dir, written)
        bench_table(model, bench_rows(d, "bench"), out)
        sweep = bench_rows(d, "sweep")
        peer_sweep = read_json_lists([os.path.join(d, "peer-sweep.json")])
        sweep_table(model, sweep, peer_sweep, out)
        needle_table(model, d, out)
        plots(model, summary, sweep, peer_sweep, plot_dir, written)
    text = "\n".join(out).strip() + "\n"
    with open(os.path.join(out_dir, "ladder.md"), "w") as f:
        f.write(text)
    if results_md:
        doc = open(results_md).read()
        a, b = doc.find(BEGIN), doc.find(END)
        if a < 0 or b < a:
            print(f"error: no {BEGIN} ... {END} markers ({results_md})", file=sys.stderr)
            return 1
        doc = doc[:a + len(BEGIN)] + "\n" + text + doc[b:]
        with open(results_md, "w") as f:
            f.write(doc)
    print(f"wrote {os.path.join(out_dir, 'ladder.md')}" + "".join(f", {p}" for p in written))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
