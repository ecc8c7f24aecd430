#!/usr/bin/env python3
"""Ours / reference NIXL rates per (size, op): `servescope fabric probe --transport nixl`
output (its table: size, op, descriptors, GB/s, ...) against bench/nixl_ref.py's JSON lines
(gbps: bytes over the average transfer time, the same definition as ours).

  python3 bench/nixl_ratio.py OURS.txt REF.txt [--sizes 16M,256M] [--goal 0.95]

A file may hold several rounds: each (size, op) takes its best verified rate, so that
the order in which ours and the reference ran (GPU clocks, caches) does not decide.
The spread of each side over its rounds (worst/best) is printed beside the ratio: a
ratio below the goal inside the reference's own spread is noise, not a slower probe.
'paired' is the median over rounds of ours / the reference run of the same round (the
n-th row of each file), shown beside the verdict, which stays on the best rates.

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
            out.setdefault(key, []).append(row)
    return out


def reference(path):
    out = {}
    for line in open(path, encoding="utf-8", errors="replace"):
        if line.startswith('{"nixl_ref"'):
            r = json.loads(line)["nixl_ref"]
            key, row = (r["size"], r["op"]), (r["gbps"], r["verified"])
            out.setdefault(key, []).append(row)
    return out


def paired(ours_rows, ref_rows):
    """Median of ours / reference over the rounds both files hold, in file order."""
    r = sorted(a / b for (a, _), (b, _) in zip(ours_rows, ref_rows) if b > 0)
    if not r:
        return float("nan")
    mid = len(r) // 2
    return r[mid] if len(r) % 2 else (r[mid - 1] + r[mid]) / 2


def best(rows):
    """The best verified rate of the rounds (else the best), and worst/best over them."""
    verified = [g for g, v in rows if v]
    pool = verified or [g for g, _ in rows]
    top = max(pool)
    return (top, bool(verified)), (min(pool) / top if top > 0 else 0.0), len(rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("ours")
    ap.add_argument("ref")
    ap.add_argument("--sizes", default="16M,256M")
    ap.add_argument("--goal", type=float, default=0.95)
    a = ap.parse_args()
    o, r = ours(a.ours), reference(a.ref)
    ok = True
    print(f"{'size':>9} {'op':<5} {'ours GB/s':>10} {'ref GB/s':>10} {'ratio':>7}  {'spread ours/ref':>15}  "
          f"{'paired':>6}  verdict")
    for size in map(size_arg, a.sizes.split(",")):
        for op in ("WRITE", "READ"):
            if (size, op) not in o or (size, op) not in r:
                print(f"{size >> 20:>5} MiB {op:<5} missing (ours: {(size, op) in o}, ref: {(size, op) in r})")
                ok = False
                continue
            ((g1, v1), s1, n1), ((g2, v2), s2, n2) = best(o[(size, op)]), best(r[(size, op)])
            spread = f"{s1:.2f}/{s2:.2f} ({n1}/{n2})"
            ratio = g1 / g2 if g2 > 0 else float("inf")
            good = ratio >= a.goal and v1 and v2
            ok &= good
            verdict = "ok" if good else ("UNVERIFIED" if not (v1 and v2) else f"BELOW {a.goal}")
            pr = paired(o[(size, op)], r[(size, op)])
            print(f"{size >> 20:>5} MiB {op:<5} {g1:>10.2f} {g2:>10.2f} {ratio:>7.3f}  {spread:>15}  {pr:>6.3f}  "
                  f"{verdict}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
