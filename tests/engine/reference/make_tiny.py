#!/usr/bin/env python3
"""Writes a small random-weight GGUF of one architecture, for the engine's reference tests.

    make_tiny.py ARCH OUT [--seed N] [--poison]      ARCH: llama, qwen2, qwen3, gemma3

Tiny dimensions (fast in NumPy and C++) that still exercise what each architecture does
differently: GQA, head sizes that differ from n_embd / n_head (qwen3, gemma3), QKV biases
(qwen2), QK-norm (qwen3, gemma3), pre/post norms, GELU, scaled embeddings and interleaved
sliding-window layers (gemma3: window 5, layer 5 global), tied or separate output weights, and
several weight types (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1).
"""
import argparse
import sys

import numpy as np
from gguf import GGUFWriter, GGMLQuantizationType as Q
from gguf.quants import quantize

SPECS = {
    #          layers embd ff  heads kv head vocab  weight type  tied output
    "llama": dict(n_layer=3, n_embd=64, n_ff=96, n_head=4, n_kv=2, head=16, n_vocab=160,
                  wtype=Q.Q8_0, tied=False, otype=Q.F16),
    "qwen2": dict(n_layer=3, n_embd=64, n_ff=128, n_head=4, n_kv=1, head=16, n_vocab=160,
                  wtype=Q.Q4_1, tied=True, otype=None),
    "qwen3": dict(n_layer=3, n_embd=64, n_ff=96, n_head=4, n_kv=2, head=32, n_vocab=160,
                  wtype=Q.Q5_0, tied=False, otype=Q.BF16),
    "gemma3": dict(n_layer=7, n_embd=64, n_ff=128, n_head=4, n_kv=1, head=32, n_vocab=160,
                   wtype=Q.Q4_0, tied=True, otype=None),
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("arch", choices=sorted(SPECS))
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--poison", action="store_true", help="a NaN in blk.1.ffn_norm.weight")
    args = ap.parse_args()
    s = SPECS[args.arch]
    rng = np.random.default_rng(args.seed)
    a = args.arch
    w = GGUFWriter(args.out, a)
    w.add_name(f"tiny-{a}")
    w.add_block_count(s["n_layer"])
    w.add_context_length(256)
    w.add_embedding_length(s["n_embd"])
    w.add_feed_forward_length(s["n_ff"])
    w.add_head_count(s["n_head"])
    w.add_head_count_kv(s["n_kv"])
    w.add_layer_norm_rms_eps(1e-6 if a == "gemma3" else 1e-5)
    if s["head"] * s["n_head"] != s["n_embd"] or a == "gemma3":
        w.add_key_length(s["head"])
        w.add_value_length(s["head"])
    if a == "gemma3":
        w.add_rope_freq_base(1000000.0)
        w.add_sliding_window(5)
    elif a == "llama":
        w.add_rope_freq_base(500000.0)
    else:
        w.add_rope_freq_base(1000000.0)
    w.add_tokenizer_model("none")

    def put(name, arr, qtype):
        arr = np.ascontiguousarray(arr, dtype=np.float32)
        if qtype == Q.F32:
            w.add_tensor(name, arr)
        elif qtype == Q.F16:
            w.add_tensor(name, arr.astype(np.float16))
        else:
            w.add_tensor(name, quantize(arr, qtype), raw_shape=quantize(arr, qtype).shape,
                         raw_dtype=qtype)

    def mat(n_out, n_in, scale=1.0):
        return rng.standard_normal((n_out, n_in)) * (scale / np.sqrt(n_in))

    def norm(n):
        return 1.0 + 0.2 * rng.standard_normal(n)

    E, F, H, K, D, V = s["n_embd"], s["n_ff"], s["n_head"], s["n_kv"], s["head"], s["n_vocab"]
    wt = s["wtype"]
    # Tied models: small embeddings and strong blocks, so a token does not just predict itself.
    tied = s["tied"]
    embd_scale = (0.05 if a == "gemma3" else 0.2) if tied else 1.0
    out_scale = 3.0 if tied else 1.0
    put("token_embd.weight", rng.standard_normal((V, E)) * embd_scale, Q.Q8_0)
    put("output_norm.weight", norm(E), Q.F32)
    if not s["tied"]:
        put("output.weight", mat(V, E, 2.0), s["otype"])
    for il in range(s["n_layer"]):
        p = f"blk.{il}."
        put(p + "attn_norm.weight", norm(E), Q.F32)
        put(p + "attn_q.weight", mat(H * D, E, 2.0), wt)
        put(p + "attn_k.weight", mat(K * D, E, 2.0), wt)
        put(p + "attn_v.weight", mat(K * D, E), wt)
        put(p + "attn_output.weight", mat(E, H * D, out_scale), wt)
        if a == "qwen2":
            put(p + "attn_q.bias", 0.5 * rng.standard_normal(H * D), Q.F32)
            put(p + "attn_k.bias", 0.5 * rng.standard_normal(K * D), Q.F32)
            put(p + "attn_v.bias", 0.5 * rng.standard_normal(K * D), Q.F32)
        if a in ("qwen3", "gemma3"):
            put(p + "attn_q_norm.weight", norm(D), Q.F32)
            put(p + "attn_k_norm.weight", norm(D), Q.F32)
        if a == "gemma3":
            put(p + "post_attention_norm.weight", 0.5 * norm(E), Q.F32)
            put(p + "post_ffw_norm.weight", 0.5 * norm(E), Q.F32)
        ffn_norm = norm(E)
        if args.poison and il == 1:
            ffn_norm[3] = np.nan
        put(p + "ffn_norm.weight", ffn_norm, Q.F32)
        put(p + "ffn_gate.weight", mat(F, E), wt)
        put(p + "ffn_up.weight", mat(F, E), Q.F16 if il == 0 else wt)
        put(p + "ffn_down.weight", mat(E, F, out_scale), Q.Q8_0 if il == 1 else wt)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
