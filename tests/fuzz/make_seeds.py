#!/usr/bin/env python3
"""Writes small valid GGUF files (seeds for the libFuzzer target) with the `gguf` package:
every metadata value type, nested arrays, and tiny tensors of every supported type.

  python3 tests/fuzz/make_seeds.py tests/fuzz/seeds
"""
import os
import sys

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import GGUFValueType as V
from gguf import GGUFWriter
from gguf.constants import GGML_QUANT_SIZES


def write(path, build, alignment=None):
    w = GGUFWriter(path, "llama")
    if alignment:
        w.add_custom_alignment(alignment)
    build(w)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def metadata(w):
    w.add_uint8("u8", 200)
    w.add_int8("i8", -5)
    w.add_uint16("u16", 60000)
    w.add_int16("i16", -30000)
    w.add_uint32("u32", 4000000000)
    w.add_int32("i32", -2000000000)
    w.add_float32("f32", 1.5)
    w.add_bool("b", True)
    w.add_string("s", "hello")
    w.add_uint64("u64", 1 << 40)
    w.add_int64("i64", -(1 << 40))
    w.add_float64("f64", -0.25)
    w.add_array("strings", ["a", "bc", ""])
    w.add_array("floats", [1.0, 2.0])
    w.add_key_value("nested", [[1, 2], [3]], V.ARRAY, sub_type=V.ARRAY)


def tensors(types, rows=2):
    def build(w):
        rng = np.random.default_rng(0)
        w.add_uint32("llama.block_count", 1)
        for k, t in enumerate(types):
            name = f"t{k}.{t.name}"
            if t == T.F32:
                w.add_tensor(name, rng.standard_normal((rows, 8)).astype(np.float32))
            elif t == T.F16:
                w.add_tensor(name, rng.standard_normal((rows, 8)).astype(np.float16))
            else:
                values, nbytes = GGML_QUANT_SIZES[t]
                cols = max(values, 8)
                raw = rng.integers(0, 256, (rows, cols // values * nbytes), dtype=np.uint8)
                w.add_tensor(name, raw, raw_dtype=t)
    return build


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    write(os.path.join(out, "metadata.gguf"), metadata)
    write(os.path.join(out, "legacy.gguf"), tensors([T.F32, T.F16, T.BF16, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0]))
    write(os.path.join(out, "kquants.gguf"), tensors([T.Q2_K, T.Q3_K, T.Q4_K, T.Q5_K, T.Q6_K], rows=1))
    write(os.path.join(out, "aligned64.gguf"), tensors([T.F32, T.Q8_0]), alignment=64)


if __name__ == "__main__":
    main()
