#!/usr/bin/env python3
"""A GPU-to-GPU peer copy of known size, timed: the ground truth for NVLink byte counters.

  python3 scripts/nvlink_copy.py [--src 0] [--dst 1] [--gib 4] [--passes 4 | --seconds 5]

Copies one --gib buffer from GPU --src to GPU --dst --passes times (torch copy_ with peer
access enabled where the driver allows it; --seconds: as many passes as fill that long,
from the timed warm-up copy) and prints one JSON line:
  {"nvlink_copy": {src, dst, peer_access, bytes, link_bytes, seconds, gbps, t_start_ns, t_end_ns}}
bytes = gib × 2^30 × passes (the timed copies: what the application moved, protocol overhead
excluded); link_bytes adds the one untimed warm-up copy, so it is what crossed from --src to
--dst while the script ran (and nothing crossed back: the check compares sums computed on
each GPU). seconds from the first timed copy's start to the last one's end (CUDA events),
t_*_ns the wall clock (ns since the Unix epoch) around them, for lining up with the agent's
samples.
"""

import argparse
import json
import math
import sys
import time


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--src", type=int, default=0)
    ap.add_argument("--dst", type=int, default=1)
    ap.add_argument("--gib", type=float, default=4.0)
    ap.add_argument("--passes", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=None, help="copy for about this long instead of --passes")
    args = ap.parse_args()
    import torch

    n = torch.cuda.device_count()
    for g in (args.src, args.dst):
        if g >= n:
            sys.exit(f"nvlink_copy: GPU {g} does not exist ({n} visible)")
    if args.gib <= 0 or args.passes <= 0:
        sys.exit("nvlink_copy: --gib and --passes must be positive")
    peer = args.src != args.dst and torch.cuda.can_device_access_peer(args.src, args.dst)
    nbytes = int(args.gib * (1 << 30)) // 4 * 4
    src = torch.randint(-(1 << 31), (1 << 31) - 1, (nbytes // 4,), dtype=torch.int32,
                        device=f"cuda:{args.src}")
    dst = torch.empty_like(src, device=f"cuda:{args.dst}")
    with torch.cuda.device(args.src):
        w0, w1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        w0.record()
        dst.copy_(src)  # warm-up: peer mappings; counted in link_bytes, not in bytes
        w1.record()
        w1.synchronize()
    torch.cuda.synchronize(args.dst)
    if args.seconds:
        per_pass = max(w0.elapsed_time(w1) / 1e3, 1e-6)
        args.passes = max(1, math.ceil(args.seconds / per_pass))
    with torch.cuda.device(args.src):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        t0 = time.time_ns()
        start.record()
        for _ in range(args.passes):
            dst.copy_(src, non_blocking=True)
        end.record()
        end.synchronize()
        t1 = time.time_ns()
    torch.cuda.synchronize(args.dst)
    seconds = start.elapsed_time(end) / 1e3
    # Sums on each GPU: checking by copying back would cross the link the other way.
    if int(src.sum(dtype=torch.int64)) != int(dst.sum(dtype=torch.int64)):
        sys.exit("nvlink_copy: destination differs from the source")
    moved = nbytes * args.passes
    print(json.dumps({"nvlink_copy": {
        "src": args.src, "dst": args.dst, "peer_access": peer, "bytes": moved,
        "link_bytes": moved + nbytes,
        "seconds": seconds, "gbps": moved / seconds / 1e9, "t_start_ns": t0, "t_end_ns": t1,
    }}), flush=True)


if __name__ == "__main__":
    main()
