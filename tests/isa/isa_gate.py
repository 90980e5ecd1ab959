#!/usr/bin/env python3
"""Instruction gate: no dispatched Highway target may execute an instruction its run-time check
does not prove.

Every function in the given ELF files (executables, shared objects, object files) is assigned
to a Highway target by the `N_<TARGET>` namespace of its own qualified name (template arguments,
parameters and return types do not count: `hwy::FunctionCache<...>::ChooseAndCall<&N_AVX3::f>`
is baseline code that only names an AVX3 function). Functions in no target namespace are
baseline code and may use only the baseline ISA (x86-64 = SSE2; AArch64 = Armv8.0-A with
Advanced SIMD). Every instruction of every function is then checked against the features the
target's run-time check proves:

- x86-64: each instruction is decoded with iced-x86 (PyPI), whose `cpuid_features()` lists the
  CPUID features it needs (a VEX `vpdpbusd` needs AVX_VNNI, its EVEX form AVX512_VNNI +
  AVX512VL). The sets below are what Highway 1.0.3's `hwy/targets.cc` tests before it enables a
  target (kGroupSSSE3 ... kGroupAVX3_DL), not what its target strings compile for: the AVX3_DL
  string also names `avxvnni`, which no check proves (Zen 4 has AVX-512 VNNI but not AVX-VNNI).
- AArch64: each function is disassembled by objdump and its instructions are assembled again by
  GNU as with only the target's features enabled (`-march=armv8-a+...`); whatever the assembler
  refuses is an instruction the target cannot prove (e.g. `sdot` without the dotprod feature,
  which Highway's NEON check does not test and a Raspberry Pi 4's Cortex-A72 lacks).

An instruction outside its target's set is allowed only inside a function listed in the
allow-list file (one `regex FEATURE[,FEATURE...]  # the guard that proves them` per line): such
a function must sit behind its own CPUID/HWCAP check, tested with the feature masked.

Exit status: 0 when every instruction is proven, 1 with one line per offending instruction
(binary, function, target, address, instruction, missing features), 2 on usage errors.
"""

import argparse
import collections
import hashlib
import os
import re
import subprocess
import sys
import tempfile

from elftools.elf.elffile import ELFFile

# ---- x86-64 ---------------------------------------------------------------------------------
# Features of the x86-64 baseline (what any x86-64 CPU runs) as iced-x86 names them.
X86_BASELINE = {
    "INTEL8086", "INTEL8086_ONLY", "INTEL186", "INTEL286", "INTEL386", "INTEL486", "X64",
    "CMOV", "CX8", "FPU", "FPU287", "FPU387", "MMX", "SSE", "SSE2", "FXSR", "SYSCALL", "TSC",
    "CPUID", "MULTIBYTENOP", "PAUSE", "CLFSH",
}
# Highway 1.0.3, hwy/targets.cc: the CPUID bits each target's group requires (cumulative).
_SSSE3 = X86_BASELINE | {"SSE3", "SSSE3"}
_SSE4 = _SSSE3 | {"SSE4_1", "SSE4_2", "PCLMULQDQ", "AES"}
_AVX2 = _SSE4 | {"AVX", "AVX2", "LZCNT", "BMI1", "BMI2", "FMA", "F16C"}
_AVX3 = _AVX2 | {"AVX512F", "AVX512VL", "AVX512DQ", "AVX512BW"}
_AVX3_DL = _AVX3 | {"AVX512_VNNI", "VPCLMULQDQ", "AVX512_VBMI", "AVX512_VBMI2", "VAES",
                    "AVX512_VPOPCNTDQ", "AVX512_BITALG"}
X86_TARGETS = {
    "baseline": X86_BASELINE, "SCALAR": X86_BASELINE, "EMU128": X86_BASELINE,
    "SSE2": X86_BASELINE, "SSSE3": _SSSE3, "SSE4": _SSE4, "AVX2": _AVX2, "AVX3": _AVX3,
    "AVX3_DL": _AVX3_DL,
}

# ---- AArch64 --------------------------------------------------------------------------------
# GNU as -march per target: Highway 1.0.3 enables NEON when HWCAP_AES is set ("+crypto" in its
# target string also names SHA, which no check proves: only AES/PMULL are enabled here), SVE
# on HWCAP_SVE, SVE2 on HWCAP2_SVE2 and HWCAP2_SVEAES. The baseline is Armv8.0-A (+simd).
ARM_TARGETS = {
    "baseline": "armv8-a", "SCALAR": "armv8-a", "EMU128": "armv8-a",
    "NEON": "armv8-a+aes",
    "SVE": "armv8-a+aes+sve", "SVE_256": "armv8-a+aes+sve",
    "SVE2": "armv8-a+aes+sve2+sve2-aes", "SVE2_128": "armv8-a+aes+sve2+sve2-aes",
}

TARGET_NAMES = sorted(set(X86_TARGETS) | set(ARM_TARGETS) - {"baseline"}, key=len, reverse=True)
NS_RE = re.compile(r"\bN_(" + "|".join(TARGET_NAMES) + r")::")


def strip_groups(name):
    """Removes balanced <...> and (...) groups (template arguments, parameters) from a
    demangled name, leaving the qualified name of the function itself (and a return type)."""
    name = name.replace("operator<<", "operator_shl").replace("operator>>", "operator_shr")
    name = re.sub(r"operator(<=|>=|<|>|\(\)|\[\])", "operator_op", name)
    out, depth = [], 0
    for ch in name:
        if ch in "<(":
            depth += 1
        elif ch in ">)":
            depth = max(0, depth - 1)
        elif depth == 0:
            out.append(ch)
    return "".join(out)


def target_of(demangled):
    found = set(NS_RE.findall(strip_groups(demangled)))
    if not found:
        return ["baseline"]
    return sorted(found)


def demangle(names):
    if not names:
        return {}
    res = subprocess.run(["c++filt"], input="\n".join(names), capture_output=True, text=True,
                         check=True)
    return dict(zip(names, res.stdout.split("\n")))


def functions(path):
    """(mangled name, address, bytes) of every defined function symbol with a size."""
    with open(path, "rb") as f:
        elf = ELFFile(f)
        machine = elf["e_machine"]
        symtab = elf.get_section_by_name(".symtab") or elf.get_section_by_name(".dynsym")
        if symtab is None:
            return machine, []
        sections = list(elf.iter_sections())
        relocatable = elf["e_type"] == "ET_REL"
        out = []
        data_of = {}  # section index -> its bytes (read once: Section.data() reads every call)
        for sym in symtab.iter_symbols():
            if sym["st_info"]["type"] != "STT_FUNC" or sym["st_size"] == 0:
                continue
            shndx = sym["st_shndx"]
            if not isinstance(shndx, int) or shndx >= len(sections):
                continue
            sec = sections[shndx]
            if sec["sh_type"] == "SHT_NOBITS":
                continue
            offset = sym["st_value"] if relocatable else sym["st_value"] - sec["sh_addr"]
            if shndx not in data_of:
                data_of[shndx] = sec.data()
            data = data_of[shndx][offset:offset + sym["st_size"]]
            out.append((sym.name, sym["st_value"], data))
        return machine, out


def load_allow(path):
    rules = []
    if not path:
        return rules
    with open(path) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            pattern, feats = line.rsplit(None, 1)
            rules.append((re.compile(pattern), set(feats.split(","))))
    return rules


def allowed_extra(rules, demangled):
    extra = set()
    for pattern, feats in rules:
        if pattern.search(demangled):
            extra |= feats
    return extra


# Instruction code -> the CPUID features it needs (computed once per code).
X86_NEED = {}


def check_x86(funcs, names, rules, seen, problems, stats, binary):
    import iced_x86 as ix
    feature_name = {v: k for k, v in vars(ix.CpuidFeature).items() if isinstance(v, int)}
    for mangled, addr, data in funcs:
        demangled = names.get(mangled, mangled)
        key = (mangled, hashlib.sha1(data).digest())
        if key in seen:
            continue
        seen.add(key)
        targets = target_of(demangled)
        allowed = set.intersection(*(X86_TARGETS.get(t, X86_BASELINE) for t in targets))
        allowed |= allowed_extra(rules, demangled)
        label = "+".join(targets)
        stats[label] += 1
        decoder = ix.Decoder(64, data, ip=addr)
        formatter = ix.Formatter(ix.FormatterSyntax.GAS)
        for instr in decoder:
            stats["instructions"] += 1
            if instr.code == ix.Code.INVALID:
                continue  # data in text (jump tables, padding) decodes as garbage
            if instr.mnemonic == ix.Mnemonic.TZCNT and "BMI1" not in allowed:
                # g++ writes `rep bsf` for __builtin_ctz where the input is known non-zero: a
                # CPU without BMI1 ignores the prefix and runs BSF, which gives the same result.
                continue
            need = X86_NEED.get(instr.code)
            if need is None:
                need = X86_NEED[instr.code] = frozenset(
                    feature_name.get(f, str(f)) for f in instr.cpuid_features())
            missing = need - allowed
            if missing:
                problems.append(f"{binary}: {demangled} [{label}] at {instr.ip:#x}: "
                                f"{formatter.format(instr)} needs {','.join(sorted(missing))}")


def arm_tools():
    prefix = os.environ.get("STRATA_ISA_GATE_CROSS", "aarch64-linux-gnu-")
    return prefix + "objdump", prefix + "as"


ARM_LINE = re.compile(r"^\s*([0-9a-f]+):\s+([0-9a-f]{8})\s+(.*)$")
ARM_FUNC = re.compile(r"^([0-9a-f]+) <(.*)>:$")
ARM_INSN = re.compile(r"^\s*([0-9a-f]+):\s+(.*)$")
ARM_TARGET_REF = re.compile(r"\b[0-9a-f]+ <[^>]*>")


def check_arm(path, funcs, names, rules, seen, problems, stats, binary):
    objdump, assembler = arm_tools()
    wanted = {}
    for mangled, addr, data in funcs:
        key = (mangled, hashlib.sha1(data).digest())
        if key in seen:
            continue
        seen.add(key)
        wanted[mangled] = addr
    if not wanted:
        return
    dis = subprocess.run([objdump, "-d", "--no-show-raw-insn", "-w", path],
                         capture_output=True, text=True, check=True).stdout
    # Collect each wanted function's instructions: (address, text).
    per_func, current = collections.defaultdict(list), None
    for line in dis.splitlines():
        m = ARM_FUNC.match(line)
        if m:
            current = m.group(2) if m.group(2) in wanted else None
            continue
        if current is None:
            continue
        m = ARM_INSN.match(line)
        if not m:
            continue
        text = m.group(2).split("//", 1)[0].split(";", 1)[0].strip()
        # Branch and literal targets ("b.ne 4a3c <f+0x1c>") become "." so the line assembles.
        if "<" in text:
            text = ARM_TARGET_REF.sub(".", text)
        if text:
            per_func[current].append((int(m.group(1), 16), text))
    # One assembly file per target set of functions, each distinct line once; a refused line
    # maps back to every function that holds it.
    groups = collections.defaultdict(dict)
    for mangled, instrs in per_func.items():
        demangled = names.get(mangled, mangled)
        targets = target_of(demangled)
        label = "+".join(targets)
        stats[label] += 1
        # The most restrictive -march of the namespaces named (all of them are prefixes).
        march = min((ARM_TARGETS.get(t, "armv8-a") for t in targets), key=len)
        extra = allowed_extra(rules, demangled)
        if extra:  # GNU as 2.40 takes extensions such as dotprod only from Armv8.2-A on
            march = march.replace("armv8-a", "armv8.2-a", 1)
            march += "".join("+" + f.lower() for f in sorted(extra))
        for addr, text in instrs:
            stats["instructions"] += 1
            if text.startswith(".inst") or text.startswith("udf"):
                continue  # literal pools and padding
            groups[march].setdefault(text, []).append((demangled, label, addr))
    for march, uses in groups.items():
        lines = list(uses.items())
        with tempfile.TemporaryDirectory() as tmp:
            src = os.path.join(tmp, "f.s")
            with open(src, "w") as f:
                f.write("".join(text + "\n" for text, _ in lines))
            res = subprocess.run([assembler, f"-march={march}", "-o", os.path.join(tmp, "f.o"),
                                  src], capture_output=True, text=True)
        for err in res.stderr.splitlines():
            m = re.match(r".*f\.s:(\d+): Error: (.*)$", err)
            if not m:
                continue
            text, refs = lines[int(m.group(1)) - 1]
            for demangled, label, addr in refs:
                problems.append(f"{binary}: {demangled} [{label}] at {addr:#x}: {text}: "
                                f"{m.group(2)} (-march={march})")


def is_elf(path):
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("paths", nargs="+", help="ELF files, or directories searched for them")
    ap.add_argument("--allow", help="allow-list file (regex FEATURES per line)")
    ap.add_argument("--exclude", action="append", default=[],
                    help="regex of paths to skip (e.g. a known-bad fixture)")
    ap.add_argument("--objects", action="store_true",
                    help="in directories, read only object files (*.o): every function the "
                         "build compiled, before linking; a template or inline function that many "
                         "programs link is then decoded once instead of once per program (linking "
                         "moves call targets, so its bytes differ between programs)")
    args = ap.parse_args()

    files = []
    for p in args.paths:
        if os.path.isdir(p):
            for root, _, names in os.walk(p):
                for n in sorted(names):
                    full = os.path.join(root, n)
                    wanted = n.endswith(".o") if args.objects else (
                        os.access(full, os.X_OK) or n.endswith((".so", ".o")))
                    if wanted and is_elf(full):
                        files.append(full)
        elif is_elf(p):
            files.append(p)
        else:
            print(f"error: {p} is not an ELF file or a directory", file=sys.stderr)
            return 2
    files = [f for f in files if not any(re.search(x, f) for x in args.exclude)]
    if not files:
        print("error: no ELF files to check in " + " ".join(args.paths), file=sys.stderr)
        return 2

    rules = load_allow(args.allow)
    problems, seen = [], set()
    stats = collections.Counter()
    for path in files:
        machine, funcs = functions(path)
        names = demangle([m for m, _, _ in funcs])
        if machine == "EM_X86_64":
            check_x86(funcs, names, rules, seen, problems, stats, path)
        elif machine == "EM_AARCH64":
            check_arm(path, funcs, names, rules, seen, problems, stats, path)
        else:
            print(f"error: {path}: machine {machine} is not x86-64 or AArch64", file=sys.stderr)
            return 2
    per_target = ", ".join(f"{k} {v}" for k, v in sorted(stats.items()) if k != "instructions")
    print(f"isa_gate: {len(files)} files, {stats['instructions']} instructions in distinct "
          f"functions ({per_target})")
    for p in problems:
        print("error: " + p)
    if problems:
        print(f"isa_gate: {len(problems)} instructions need features their target's run-time "
              "check does not prove", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
