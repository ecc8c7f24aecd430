#!/usr/bin/env python3
"""Reference NIXL rates: NIXL's own Python API moving data between two processes, one NIXL
agent each, measured the way the agent's `--transport nixl` probe measures.

The two processes are fabric/py/nixl_driver.py (the driver the agent supervises), started
here with this Python; metadata goes between them through this script's pipes. Each side
registers one buffer of the largest size once; each size uses a prefix of it. WRITE and
READ are measured separately: 3 warm-ups, then --iters transfers, each timed from post
until check_xfer_state() is DONE (busy poll, NIXL progress thread off); request creation
(prepare) and the post call are timed too. After each (size, op) the receiving side checks
the contents (a mismatch fails the run, naming size and offset).

  python3 bench/nixl_ref.py [--mem host|cuda:N] [--peer-mem cuda:M] [--sizes 1M,16M,256M]
      [--iters N] [--blocks N | --block-size SIZE] [--backend UCX|LIBFABRIC] [--proto-info]

Prints a table (GB/s = 1e9 B/s over the transfer time; median and best) and one JSON line
per (size, op). Needs numpy and NIXL (nixl_cu13 ...) importable; torch for --mem cuda.
"""

import argparse
import json
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fabric", "py"))
from nixl_pair import DriverError, Pair  # noqa: E402

UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
UCX_LINE = re.compile(r"^(\[\d+\.\d+\] \[[^\]]+\])\s?(.*)$")


def parse_size(text):
    m = re.fullmatch(r"(\d+)([KMG]?)(i?B)?", text.strip(), re.IGNORECASE)
    if not m:
        raise argparse.ArgumentTypeError(f"not a size: {text!r}")
    return int(m.group(1)) * UNITS[m.group(2).upper()]


def human(n):
    for unit in ("G", "M", "K"):
        if n >= UNITS[unit] and n % UNITS[unit] == 0:
            return f"{n // UNITS[unit]} {unit}iB"
    return f"{n} B"


def proto_lines(stderr):
    """UCX's lane configuration lines and its protocol tables for remote memory access,
    without the timestamp prefix. A table's lines share one timestamp."""
    out, tables, order = [], {}, []
    for raw in stderr.splitlines():
        m = UCX_LINE.match(raw)
        if not m:
            continue
        line = m.group(2).rstrip()
        if line.lstrip().startswith(("+", "|")):
            if m.group(1) not in tables:
                tables[m.group(1)] = []
                order.append(("table", m.group(1)))
            tables[m.group(1)].append(line)
        elif "UCX  INFO" in line and ("cfg#" in line or "Version" in line):
            order.append(("line", line.split("UCX  INFO", 1)[1].strip()))
    for kind, value in order:
        if kind == "line":
            out.append(value)
        elif any("remote memory" in l for l in tables[value]):
            out.extend(tables[value])
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mem", default="host", help="host or cuda:N (initiator)")
    ap.add_argument("--peer-mem", default=None, help="target memory (default: --mem)")
    ap.add_argument("--sizes", default="1M,16M,256M", help="comma-separated sizes (K/M/G = KiB/MiB/GiB)")
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--ops", default="WRITE,READ")
    ap.add_argument("--blocks", type=int, default=1, help="descriptors per transfer")
    ap.add_argument("--block-size", type=parse_size, default=None,
                    help="bytes per descriptor (overrides --blocks: blocks = size / block size)")
    ap.add_argument("--backend", default="UCX", choices=["UCX", "LIBFABRIC"])
    ap.add_argument("--prep", default="dlist", choices=["dlist", "xfer"],
                    help="dlist: prep_xfer_dlist once + make_prepped_xfer per transfer (vLLM); xfer: initialize_xfer")
    ap.add_argument("--no-verify", action="store_true")
    ap.add_argument("--proto-info", action="store_true",
                    help="UCX_PROTO_INFO=y UCX_LOG_LEVEL=info in both processes; print UCX's RMA protocol choice")
    ap.add_argument("--ucx-log", default=None, help="write both processes' raw stderr (UCX output) to this file")
    ap.add_argument("--python", default=sys.executable, help="Python of the two NIXL processes")
    args = ap.parse_args()

    sizes = [parse_size(s) for s in args.sizes.split(",") if s.strip()]
    ops = [o.strip().upper() for o in args.ops.split(",") if o.strip()]
    blocks = {s: s // args.block_size if args.block_size else args.blocks for s in sizes}
    env = {"UCX_PROTO_INFO": "y", "UCX_LOG_LEVEL": "info"} if args.proto_info else {}
    if any(b <= 0 or s % b or (s // b) % 4 for s, b in blocks.items()):
        sys.exit("nixl_ref: every size must split into blocks of a multiple of 4 bytes")

    pair = Pair(max(sizes), max(sizes) // blocks[max(sizes)], mem=args.mem, peer_mem=args.peer_mem, backend=args.backend,
                python=args.python, env=env)
    results, failure = [], None
    try:
        h = pair.hello["initiator"]
        print(f"# NIXL {h['nixl_module']} {h['nixl_version']}, Python {h['python']}, backend {args.backend}, "
              f"UCX {h['ucx'].get('version')} from {h['ucx'].get('libucp')}")
        print(f"# mem {args.mem} -> {args.peer_mem or args.mem}, prep {args.prep}, iters {args.iters}, "
              f"warm-up {args.warmup}, verify {not args.no_verify}")
        for size in sizes:
            for op in ops:
                r = pair.run(op, size, blocks=blocks[size], iters=args.iters, warmup=args.warmup,
                             verify=not args.no_verify, prep=args.prep)
                r = {k: v for k, v in r.items() if k not in ("ok", "cmd")}
                r.update({"mem": args.mem, "peer_mem": args.peer_mem or args.mem, "backend": args.backend,
                          "ucx": h["ucx"].get("version"), "nixl": h["nixl_version"]})
                results.append(r)
        summary = pair.finish()
    except DriverError as e:
        failure = e
    finally:
        pair.close()

    print(f"\n{'size':>9} {'op':>5} {'blocks':>7} {'GB/s med':>9} {'GB/s best':>9} {'lat us':>9} "
          f"{'prep us':>8} {'prep p99':>8} {'post us':>8} {'post p99':>8} {'xfer p99':>9}  verified")
    for r in results:
        print(f"{human(r['size']):>9} {r['op']:>5} {r['blocks']:>7} {r['gbps']['median']:>9.2f} "
              f"{r['gbps']['best']:>9.2f} {r['transfer_us']['avg']:>9.1f} {r['prepare_us']['avg']:>8.1f} "
              f"{r['prepare_us']['p99']:>8.1f} {r['post_us']['avg']:>8.1f} {r['post_us']['p99']:>8.1f} "
              f"{r['transfer_us']['p99']:>9.1f}  {'yes' if r['verified'] else 'no'}")
    for r in results:
        print(json.dumps({"nixl_ref": r}, sort_keys=True))
    if failure is None:
        print(f"# target: {summary['writes_verified']} WRITE checks passed, {summary['reads_prepared']} READ "
              f"sources prepared, {summary['mismatches']} mismatches")
    if args.proto_info:
        for side in (pair.initiator, pair.target):
            print(f"\n# UCX protocol selection, {side.name}:")
            for line in proto_lines(side.stderr()):
                print(f"  {line}")
    if args.ucx_log:
        with open(args.ucx_log, "w") as f:
            for side in (pair.initiator, pair.target):
                f.write(side.stderr())
    if failure is not None:
        print(f"nixl_ref: FAILED: {failure}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
