#!/usr/bin/env python3
"""Proves the instruction gate can fail: compiles the fixtures (fixture_x86.cpp or
fixture_arm.cpp) into tiny objects and checks the gate's verdict and message on each.

usage: gate_selftest.py --arch x86|arm --cxx COMPILER --workdir DIR
"""

import argparse
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
GATE = os.path.join(HERE, "isa_gate.py")

# (name, defines, allow-list line or None, expected exit status, text the output must hold)
X86_CASES = [
    ("vex-vnni-in-avx3dl", {"ISA_FIXTURE_NS": "N_AVX3_DL", "ISA_FIXTURE_VEX": "1"}, None, 1,
     "dot_u8_i8(long long __vector(4), long long __vector(4), long long __vector(4)) [AVX3_DL]"),
    ("vex-vnni-names-feature", {"ISA_FIXTURE_NS": "N_AVX3_DL", "ISA_FIXTURE_VEX": "1"}, None, 1,
     "needs AVX_VNNI"),
    ("evex-vnni-in-avx3dl", {"ISA_FIXTURE_NS": "N_AVX3_DL", "ISA_FIXTURE_VEX": "0"}, None, 0,
     "isa_gate: 1 files"),
    ("evex-vnni-in-avx3", {"ISA_FIXTURE_NS": "N_AVX3", "ISA_FIXTURE_VEX": "0"}, None, 1,
     "needs AVX512_VNNI"),
    ("vex-vnni-allow-listed", {"ISA_FIXTURE_NS": "N_AVX3_DL", "ISA_FIXTURE_VEX": "1"},
     r"strata_isa_fixture::N_AVX3_DL::dot_u8_i8 AVX_VNNI", 0, "isa_gate: 1 files"),
]
ARM_CASES = [
    ("sdot-in-neon", {"ISA_FIXTURE_NS": "N_NEON", "ISA_FIXTURE_DOTPROD": "1"}, None, 1,
     "[NEON]"),
    ("plain-neon", {"ISA_FIXTURE_NS": "N_NEON", "ISA_FIXTURE_DOTPROD": "0"}, None, 0,
     "isa_gate: 1 files"),
    ("sdot-in-sve2", {"ISA_FIXTURE_NS": "N_SVE2", "ISA_FIXTURE_DOTPROD": "1"}, None, 1,
     "sdot"),
    ("sdot-allow-listed", {"ISA_FIXTURE_NS": "N_NEON", "ISA_FIXTURE_DOTPROD": "1"},
     r"strata_isa_fixture::N_NEON::dot_i8 dotprod", 0, "isa_gate: 1 files"),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", choices=["x86", "arm"], required=True)
    ap.add_argument("--cxx", required=True)
    ap.add_argument("--workdir", required=True)
    args = ap.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    src = os.path.join(HERE, "fixture_x86.cpp" if args.arch == "x86" else "fixture_arm.cpp")
    failures = 0
    for name, defines, allow, want_rc, want_text in (X86_CASES if args.arch == "x86"
                                                      else ARM_CASES):
        obj = os.path.join(args.workdir, name + ".o")
        cmd = [args.cxx, "-std=c++20", "-O2", "-Wno-psabi", "-c", src, "-o", obj]
        cmd += [f"-D{k}={v}" for k, v in defines.items()]
        subprocess.run(cmd, check=True)
        gate = [sys.executable, GATE, obj]
        if allow:
            allow_file = os.path.join(args.workdir, name + ".allow")
            with open(allow_file, "w") as f:
                f.write(allow + "  # fixture\n")
            gate += ["--allow", allow_file]
        res = subprocess.run(gate, capture_output=True, text=True)
        out = res.stdout + res.stderr
        ok = res.returncode == want_rc and want_text in out
        print(f"{'ok  ' if ok else 'FAIL'} {name}: exit {res.returncode} (want {want_rc}), "
              f"output {'holds' if want_text in out else 'lacks'} {want_text!r}")
        if not ok:
            print("     " + out.strip().replace("\n", "\n     "))
            failures += 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
