#!/usr/bin/env python3
"""Independent NumPy forward pass of a GGUF model, the reference for strata's example engine.

Reads the file with the `gguf` package (PyPI) and dequantizes with `gguf.quants`; shares no code
with the engine. Architectures: llama, qwen2, qwen3, gemma3 (the graphs llama.cpp builds for
them: llama stores Q/K permuted for the adjacent-pair "normal" RoPE, the others use NEOX RoPE).

    ref_forward.py MODEL --tokens 1,2,3 [--steps 64] --out FILE

Runs the prompt in one causal batch, then greedy decoding for --steps tokens, and writes FILE:
    int32 n_prompt, int32 n_vocab, int32 n_steps,
    float32 logits[n_prompt][n_vocab]     (every prompt position)
    int32 greedy[n_steps]                 (argmax after the prompt, then after each new token)
    float32 step_logits[n_steps][n_vocab] (the logits each greedy token was taken from)
"""
import argparse
import struct
import sys

import numpy as np
from gguf import GGUFReader, GGMLQuantizationType
from gguf.quants import dequantize


class Model:
    def __init__(self, path):
        self.r = GGUFReader(path)
        self.fields = self.r.fields
        self.t = {t.name: t for t in self.r.tensors}
        self.arch = self.kv("general.architecture")
        if self.arch not in ("llama", "qwen2", "qwen3", "gemma3"):
            raise SystemExit(f"error: unsupported architecture {self.arch} (ref_forward.py)")
        a = self.arch
        self.n_layer = int(self.kv(f"{a}.block_count"))
        self.n_embd = int(self.kv(f"{a}.embedding_length"))
        self.n_head = int(self.kv(f"{a}.attention.head_count"))
        self.n_head_kv = int(self.kv(f"{a}.attention.head_count_kv", self.n_head))
        self.head_k = int(self.kv(f"{a}.attention.key_length", self.n_embd // self.n_head))
        self.head_v = int(self.kv(f"{a}.attention.value_length", self.head_k))
        self.n_rot = int(self.kv(f"{a}.rope.dimension_count", self.head_k))
        self.eps = float(self.kv(f"{a}.attention.layer_norm_rms_epsilon", 1e-5))
        self.base = float(self.kv(f"{a}.rope.freq_base", 10000.0))
        scaling = self.kv(f"{a}.rope.scaling.type", "none")
        factor = float(self.kv(f"{a}.rope.scaling.factor", 0.0))
        if scaling not in ("none", "linear"):
            raise SystemExit(f"error: rope scaling {scaling} not supported (ref_forward.py)")
        self.freq_scale = 1.0 / factor if (scaling == "linear" and factor > 0) else 1.0
        self.softcap = float(self.kv(f"{a}.final_logit_softcapping", 0.0))
        self.neox = a != "llama"
        self.swa = [False] * self.n_layer
        self.window = 0
        self.attn_scale = 1.0 / np.sqrt(self.head_k)
        self.layer_base = [self.base] * self.n_layer
        self.layer_scale = [self.freq_scale] * self.n_layer
        if a == "gemma3":
            self.window = int(self.kv(f"{a}.attention.sliding_window", 0))
            pattern = int(self.kv(f"{a}.attention.sliding_window_pattern", 6))
            if self.window > 0:
                self.swa = [(il % pattern) < pattern - 1 for il in range(self.n_layer)]
                swa_base = float(self.kv(f"{a}.rope.freq_base_swa", 10000.0))
                for il in range(self.n_layer):
                    if self.swa[il]:
                        self.layer_base[il] = swa_base
                        self.layer_scale[il] = 1.0
        self.rope_freqs = self.w("rope_freqs.weight") if "rope_freqs.weight" in self.t else None
        self.tok_embd = self.t["token_embd.weight"]
        self.n_vocab = int(self.tok_embd.shape[1])
        self.out_w = self.w("output.weight") if "output.weight" in self.t else None
        self.k_cache = [np.zeros((0, self.n_head_kv, self.head_k), np.float32)
                        for _ in range(self.n_layer)]
        self.v_cache = [np.zeros((0, self.n_head_kv, self.head_v), np.float32)
                        for _ in range(self.n_layer)]
        self.layers = [self._layer(il) for il in range(self.n_layer)]

    def kv(self, key, default=None):
        f = self.fields.get(key)
        if f is None:
            if default is None:
                raise SystemExit(f"error: missing key {key} (ref_forward.py)")
            return default
        return f.contents()

    def w(self, name):
        t = self.t[name]
        data = np.asarray(t.data)
        if t.tensor_type in (GGMLQuantizationType.F32,):
            out = data.astype(np.float32)
        else:
            out = dequantize(data, t.tensor_type).astype(np.float32)
        shape = [int(s) for s in reversed(t.shape)]  # numpy order: (ne[1], ne[0])
        return out.reshape(shape)

    def _layer(self, il):
        p = f"blk.{il}."
        get = lambda n: self.w(p + n) if (p + n) in self.t else None
        return {n: get(n + ".weight") for n in (
            "attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "attn_q_norm",
            "attn_k_norm", "post_attention_norm", "ffn_norm", "ffn_gate", "ffn_up", "ffn_down",
            "post_ffw_norm")} | {"bq": get("attn_q.bias"), "bk": get("attn_k.bias"),
                                 "bv": get("attn_v.bias")}

    def embed(self, tokens):
        data = np.asarray(self.tok_embd.data)
        rows = data[np.asarray(tokens)]
        if self.tok_embd.tensor_type == GGMLQuantizationType.F32:
            return rows.astype(np.float32).reshape(len(tokens), self.n_embd)
        return dequantize(rows, self.tok_embd.tensor_type).astype(np.float32).reshape(
            len(tokens), self.n_embd)

    def rmsnorm(self, x, w):
        x64 = x.astype(np.float64)
        y = x64 / np.sqrt(np.mean(x64 * x64, axis=-1, keepdims=True) + self.eps)
        return (y * w).astype(np.float32)

    def rope(self, x, pos, il):
        # x: (n, heads, d); rotates the first n_rot dims of each head.
        n_rot = self.n_rot
        half = n_rot // 2
        inv = self.layer_base[il] ** (-2.0 * np.arange(half, dtype=np.float64) / n_rot)
        if self.rope_freqs is not None:
            inv = inv / self.rope_freqs.reshape(-1)[:half].astype(np.float64)
        theta = (np.asarray(pos, np.float64)[:, None] * self.layer_scale[il]) * inv[None, :]
        c = np.cos(theta)[:, None, :]
        s = np.sin(theta)[:, None, :]
        y = x.astype(np.float64).copy()
        if self.neox:
            a, b = y[..., :half].copy(), y[..., half:n_rot].copy()
            y[..., :half] = a * c - b * s
            y[..., half:n_rot] = a * s + b * c
        else:
            a, b = y[..., 0:n_rot:2].copy(), y[..., 1:n_rot:2].copy()
            y[..., 0:n_rot:2] = a * c - b * s
            y[..., 1:n_rot:2] = a * s + b * c
        return y.astype(np.float32)

    def forward(self, tokens, pos0):
        n = len(tokens)
        pos = np.arange(pos0, pos0 + n)
        x = self.embed(tokens)
        if self.arch == "gemma3":
            x = x * np.float32(np.sqrt(self.n_embd))
        for il, L in enumerate(self.layers):
            h = self.rmsnorm(x, L["attn_norm"])
            q = h @ L["attn_q"].T
            k = h @ L["attn_k"].T
            v = h @ L["attn_v"].T
            if L["bq"] is not None:
                q = q + L["bq"]
                k = k + L["bk"]
                v = v + L["bv"]
            q = q.reshape(n, self.n_head, self.head_k)
            k = k.reshape(n, self.n_head_kv, self.head_k)
            v = v.reshape(n, self.n_head_kv, self.head_v)
            if L["attn_q_norm"] is not None:
                q = self.rmsnorm(q, L["attn_q_norm"])
                k = self.rmsnorm(k, L["attn_k_norm"])
            q = self.rope(q, pos, il)
            k = self.rope(k, pos, il)
            self.k_cache[il] = np.concatenate([self.k_cache[il], k])
            self.v_cache[il] = np.concatenate([self.v_cache[il], v])
            K = self.k_cache[il].astype(np.float64)
            V = self.v_cache[il].astype(np.float64)
            kpos = np.arange(K.shape[0])
            mask = kpos[None, :] > pos[:, None]
            if self.swa[il]:
                mask |= (pos[:, None] - kpos[None, :]) >= self.window
            group = self.n_head // self.n_head_kv
            att = np.zeros((n, self.n_head, self.head_v))
            for hh in range(self.n_head):
                kh = hh // group
                s = (q[:, hh, :].astype(np.float64) @ K[:, kh, :].T) * self.attn_scale
                s[mask] = -np.inf
                s = s - s.max(axis=1, keepdims=True)
                p = np.exp(s)
                p /= p.sum(axis=1, keepdims=True)
                att[:, hh, :] = p @ V[:, kh, :]
            att = att.astype(np.float32).reshape(n, self.n_head * self.head_v)
            o = att @ L["attn_output"].T
            if L["post_attention_norm"] is not None:
                o = self.rmsnorm(o, L["post_attention_norm"])
            x = x + o
            h = self.rmsnorm(x, L["ffn_norm"])
            g = h @ L["ffn_gate"].T
            u = h @ L["ffn_up"].T
            if self.arch == "gemma3":
                g64 = g.astype(np.float64)
                act = 0.5 * g64 * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (g64 + 0.044715 * g64 ** 3)))
            else:
                g64 = g.astype(np.float64)
                act = g64 / (1.0 + np.exp(-g64))
            f = (act * u).astype(np.float32) @ L["ffn_down"].T
            if L["post_ffw_norm"] is not None:
                f = self.rmsnorm(f, L["post_ffw_norm"])
            x = x + f
        x = self.rmsnorm(x, self.w("output_norm.weight"))
        if self.out_w is None:  # tied output: the token embedding, dequantized once
            self.out_w = self.embed(np.arange(self.n_vocab))
        out_w = self.out_w
        logits = (x @ out_w.T).astype(np.float32)
        if self.softcap > 0:
            logits = (np.tanh(logits / self.softcap) * self.softcap).astype(np.float32)
        return logits


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--tokens", required=True)
    ap.add_argument("--steps", type=int, default=64)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    m = Model(args.model)
    tokens = [int(s) for s in args.tokens.split(",") if s]
    logits = m.forward(tokens, 0)
    pos = len(tokens)
    greedy, step_logits = [], []
    last = logits[-1]
    for _ in range(args.steps):
        t = int(np.argmax(last))
        greedy.append(t)
        step_logits.append(last)
        last = m.forward([t], pos)[-1]
        pos += 1
    with open(args.out, "wb") as f:
        f.write(struct.pack("<3i", len(tokens), m.n_vocab, args.steps))
        f.write(np.ascontiguousarray(logits, np.float32).tobytes())
        f.write(np.asarray(greedy, np.int32).tobytes())
        if step_logits:
            f.write(np.ascontiguousarray(np.stack(step_logits), np.float32).tobytes())
    return 0


if __name__ == "__main__":
    sys.exit(main())
