#!/usr/bin/env python3
"""Reference dequantization for tests/engine/quant_test.cpp, from the `gguf` package (PyPI).

  quant_ref.py random OUT SEED      random blocks of every supported type
  quant_ref.py model GGUF OUT ROWS  the first ROWS rows of every quantized tensor type in GGUF

OUT is a sequence of records: u32 name length, name, u32 ggml type, u64 values, u64 bytes,
the raw block bytes, then the reference values as float32 (little-endian).
"""
import struct
import sys

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import GGUFReader
from gguf.constants import GGML_QUANT_SIZES
from gguf.quants import dequantize

# Byte offsets of the fp16 scale fields of each block type (ggml-common.h).
HALF_FIELDS = {
    T.Q4_0: [0], T.Q4_1: [0, 2], T.Q5_0: [0], T.Q5_1: [0, 2], T.Q8_0: [0],
    T.Q2_K: [80, 82], T.Q3_K: [108], T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208],
}


def record(out, name, qtype, raw, values):
    raw = np.ascontiguousarray(raw, dtype=np.uint8).tobytes()
    values = np.ascontiguousarray(values, dtype="<f4").reshape(-1)
    name = name.encode()
    out.write(struct.pack("<I", len(name)) + name)
    out.write(struct.pack("<IQQ", int(qtype), values.size, len(raw)))
    out.write(raw)
    out.write(values.tobytes())


def random_scales(rng, n):
    # Mostly ordinary magnitudes of both signs, some zeros, subnormals and large values.
    s = rng.uniform(-2.0, 2.0, n) * 10.0 ** rng.integers(-4, 1, n)
    special = rng.integers(0, 16, n)
    s[special == 0] = 0.0
    s[special == 1] = 6.0e-8 * rng.integers(1, 1000, (special == 1).sum())  # subnormal halves
    s[special == 2] = rng.uniform(-1000, 1000, (special == 2).sum())
    return s.astype(np.float16)


def random_blocks(out, seed):
    rng = np.random.default_rng(seed)
    n_blocks = 64
    for qtype, fields in HALF_FIELDS.items():
        block_values, block_bytes = GGML_QUANT_SIZES[qtype]
        raw = rng.integers(0, 256, (n_blocks, block_bytes), dtype=np.uint8)
        for off in fields:
            raw[:, off:off + 2] = random_scales(rng, n_blocks).view(np.uint8).reshape(n_blocks, 2)
        record(out, f"random {qtype.name}", qtype, raw, dequantize(raw, qtype))
    n = 1024
    f32 = (rng.standard_normal(n) * 10.0 ** rng.integers(-6, 6, n)).astype(np.float32)
    record(out, "random F32", T.F32, f32.view(np.uint8), f32)
    with np.errstate(over="ignore"):
        f16 = f32.astype(np.float16)
    f16[:4] = [np.inf, -np.inf, 6.0e-8, -0.0]
    record(out, "random F16", T.F16, f16.view(np.uint8), dequantize(f16.view(np.uint8), T.F16))
    bf16 = (f32.view(np.uint32) >> 16).astype(np.uint16)
    record(out, "random BF16", T.BF16, bf16.view(np.uint8), dequantize(bf16.view(np.uint8), T.BF16))


def model_rows(out, path, rows):
    reader = GGUFReader(path)
    seen = set()
    for t in reader.tensors:
        if t.tensor_type in seen or len(t.data.shape) < 2:
            continue
        seen.add(t.tensor_type)
        raw = np.asarray(t.data[:rows])
        values = dequantize(raw, t.tensor_type)
        record(out, t.name, t.tensor_type, raw.view(np.uint8), values)


def main():
    mode, *args = sys.argv[1:]
    if mode == "random":
        with open(args[0], "wb") as out:
            random_blocks(out, int(args[1]))
    elif mode == "model":
        with open(args[1], "wb") as out:
            model_rows(out, args[0], int(args[2]))
    else:
        sys.exit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
