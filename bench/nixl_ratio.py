#!/usr/bin/env python3
"""Ours / reference NIXL rates per (size, op): `servescope fabric probe --transport nixl`
output (its table: size, op, descriptors, GB/s, ...) against bench/nixl_ref.py's JSON lines
(gbps: bytes over the average transfer time, the same definition as ours).

  python3 bench/nixl_ratio.py OURS.txt REF.txt [--sizes 16M,256M] [--goal 0.95]

A file may hold several rounds: each (size, op) takes its best verified rate, so that
the order in which ours and the reference ran (GPU clocks, caches) does not decide.

Exits 1 when a compared row is missing, unverified, or below the goal."""

import argparse
import json
import re
import sys

UNITS = {"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "B": 1}
ROW = re.compile(r"^\s*(\d+) (KiB|MiB|GiB|B)\s+(WRITE|READ)\s+(\d+) × \S+ \S+\s+([\d.]+)\s.*\s(yes|no)\s*$")


def size_arg(text):
    m = re.fullmatch(r"(\d+)([KMG])", text.strip())
    return int(m.group(1)) * {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}[m.group(2)]


def ours(path):
    out = {}
    for line in open(path, encoding="utf-8", errors="replace"):
        m = ROW.match(line)
        if m:
            size = int(m.group(1)) * UNITS[m.group(2)]
            key, row = (size, m.group(3)), (float(m.group(5)), m.group(6) == "yes")
            # Several rounds in one file: the best verified row stands for the size.
            if key not in out or row > out[key]:
                out[key] = row
    return out


def reference(path):
    out = {}
    for line in open(path, encoding="utf-8", errors="replace"):
        if line.startswith('{"nixl_ref"'):
            r = json.loads(line)["nixl_ref"]
            key, row = (r["size"], r["op"]), (r["gbps"], r["verified"])
            if key not in out or row > out[key]:
                out[key] = row
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("ours")
    ap.add_argument("ref")
    ap.add_argument("--sizes", default="16M,256M")
    ap.add_argument("--goal", type=float, default=0.95)
    a = ap.parse_args()
    o, r = ours(a.ours), reference(a.ref)
    ok = True
    print(f"{'size':>9} {'op':<5} {'ours GB/s':>10} {'ref GB/s':>10} {'ratio':>7}  verdict")
    for size in map(size_arg, a.sizes.split(",")):
        for op in ("WRITE", "READ"):
            if (size, op) not in o or (size, op) not in r:
                print(f"{size >> 20:>5} MiB {op:<5} missing (ours: {(size, op) in o}, ref: {(size, op) in r})")
                ok = False
                continue
            (g1, v1), (g2, v2) = o[(size, op)], r[(size, op)]
            ratio = g1 / g2 if g2 > 0 else float("inf")
            good = ratio >= a.goal and v1 and v2
            ok &= good
            verdict = "ok" if good else ("UNVERIFIED" if not (v1 and v2) else f"BELOW {a.goal}")
            print(f"{size >> 20:>5} MiB {op:<5} {g1:>10.2f} {g2:>10.2f} {ratio:>7.3f}  {verdict}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
