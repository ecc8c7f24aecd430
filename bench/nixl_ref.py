#!/usr/bin/env python3
"""Reference NIXL rates: the NIXL wheel's own Python API (nixl_agent) moving data between
two processes, one NIXL agent each. Shares no code with servescope's driver.

This process is the initiator; it starts itself again as the target (`--serve`), whose
stdin/stdout carry the agent metadata and the verification requests. Each side registers
one buffer of the largest size once; each size uses a prefix of it, cut into --block-size
descriptors. Descriptor lists are prepared once per size (prep_xfer_dlist), each transfer
is made from them (make_prepped_xfer), posted (transfer) and timed until check_xfer_state()
says DONE (busy poll, NIXL progress thread off): --warmup untimed, then --iters timed.
After each (size, op) the contents are checked: WRITE: the target compares its region
with the initiator's pattern; READ: the initiator compares what it read with the target's.

  python3 bench/nixl_ref.py [--mem host|cuda:N] [--mem-peer host|cuda:N] [--sizes 1M,16M,256M]
      [--block-size 64K] [--iters N] [--ops WRITE,READ]

--mem-peer puts the target's buffer elsewhere (cuda:1 for GPU 0 → GPU 1 on a two-GPU node).

Prints one JSON line per (size, op): {"nixl_ref": {size, op, blocks, gbps (bytes over the
average transfer time, 1e9 B/s), gbps_median, transfer_avg_us, post_avg_us, verified}}.
Needs NIXL (nixl_cu13 / nixl_cu12 / nixl) and numpy; torch for --mem cuda.
"""

import argparse
import base64
import json
import os
import re
import select
import subprocess
import sys
import time

UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
MUL = 2654435761


def parse_size(text):
    m = re.fullmatch(r"(\d+)([KMG]?)(i?B)?", text.strip(), re.IGNORECASE)
    if not m:
        raise argparse.ArgumentTypeError(f"not a size: {text!r}")
    return int(m.group(1)) * UNITS[m.group(2).upper()]


def nixl_api():
    for name in ("nixl_cu13", "nixl_cu12", "nixl._api"):
        try:
            mod = __import__(name, fromlist=["nixl_agent"])
            return mod.nixl_agent, mod.nixl_agent_config
        except ImportError:
            continue
    sys.exit("nixl_ref: no NIXL package importable")


class Buffer:
    """int32 words on host (numpy) or GPU (torch); pattern word i = i * MUL + seed (mod 2^32)."""

    def __init__(self, mem, nbytes):
        self.words = nbytes // 4
        if mem == "host":
            import numpy as np

            self.np, self.t = np, None
            self.buf = np.zeros(self.words, dtype=np.int32)
            self.addr, self.dev, self.kind = self.buf.ctypes.data, 0, "DRAM"
        else:
            import torch

            self.np, self.t = None, torch
            dev = int(mem.split(":")[1]) if ":" in mem else 0
            self.buf = torch.zeros(self.words, dtype=torch.int32, device=f"cuda:{dev}")
            self.addr, self.dev, self.kind = self.buf.data_ptr(), dev, "VRAM"

    def pattern(self, n, seed):
        if self.t is None:
            i = self.np.arange(n, dtype=self.np.uint64)
            return ((i * MUL + seed) & 0xFFFFFFFF).astype(self.np.uint32).view(self.np.int32)
        i = self.t.arange(n, dtype=self.t.int64, device=self.buf.device)
        v = (i * MUL + seed) & 0xFFFFFFFF
        return (v - ((v >> 31) << 32)).to(self.t.int32)

    def fill(self, nbytes, seed):
        self.buf[: nbytes // 4] = self.pattern(nbytes // 4, seed)
        if self.t is not None:
            self.t.cuda.synchronize()

    def first_mismatch(self, nbytes, seed):
        n = nbytes // 4
        if self.t is not None:
            self.t.cuda.synchronize()
            bad = (self.buf[:n] != self.pattern(n, seed)).nonzero()
            return int(bad[0]) * 4 if len(bad) else None
        bad = self.np.flatnonzero(self.buf[:n] != self.pattern(n, seed))
        return int(bad[0]) * 4 if len(bad) else None


def make_agent(name):
    nixl_agent, nixl_agent_config = nixl_api()
    cfg = nixl_agent_config(enable_prog_thread=False, enable_listen_thread=False, backends=["UCX"])
    return nixl_agent(name, cfg)


def blocks_of(addr, dev, size, block):
    return [(addr + off, block, dev) for off in range(0, size, block)]


def serve(args):
    """The target: registers its buffer, answers fill/check requests, progresses NIXL."""
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # what NIXL/UCX print goes to stderr, the pipe stays JSON
    agent = make_agent(f"ref-target-{os.getpid()}")
    buf = Buffer(args.mem, args.max_bytes)
    agent.register_memory([(buf.addr, args.max_bytes, buf.dev, "")], buf.kind)
    out.write(json.dumps({"md": base64.b64encode(agent.get_agent_metadata()).decode(), "addr": buf.addr,
                          "dev": buf.dev, "kind": buf.kind}) + "\n")
    out.flush()
    pending = b""
    while True:
        if select.select([0], [], [], 0)[0]:
            chunk = os.read(0, 65536)
            if not chunk:
                os._exit(0)
            pending += chunk
        else:
            agent.get_new_notifs()  # progress the worker (emulated protocols need it)
            continue
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            req = json.loads(line)
            if req["cmd"] == "fill":
                buf.fill(req["size"], req["seed"])
                out.write('{"ok": true}\n')
            elif req["cmd"] == "check":
                out.write(json.dumps({"offset": buf.first_mismatch(req["size"], req["seed"])}) + "\n")
            out.flush()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mem", default="host", help="host or cuda:N (both processes, unless --mem-peer)")
    ap.add_argument("--mem-peer", default=None, help="the target process's memory (default: --mem)")
    ap.add_argument("--sizes", default="1M,16M,256M")
    ap.add_argument("--block-size", type=parse_size, default=None, help="bytes per descriptor (default: whole size)")
    ap.add_argument("--iters", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--ops", default="WRITE,READ")
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--max-bytes", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        return serve(args)
    sizes = [parse_size(s) for s in args.sizes.split(",")]
    top = max(sizes)
    child = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--serve", "--mem", args.mem_peer or args.mem,
                              "--max-bytes", str(top)], stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def ask(req):
        child.stdin.write((json.dumps(req) + "\n").encode())
        child.stdin.flush()
        return json.loads(child.stdout.readline())

    peer = json.loads(child.stdout.readline())
    agent = make_agent(f"ref-initiator-{os.getpid()}")
    buf = Buffer(args.mem, top)
    agent.register_memory([(buf.addr, top, buf.dev, "")], buf.kind)
    name = agent.add_remote_agent(base64.b64decode(peer["md"]))
    failed = False
    for size in sizes:
        block = args.block_size or size
        local = blocks_of(buf.addr, buf.dev, size, block)
        remote = blocks_of(peer["addr"], peer["dev"], size, block)
        lh = agent.prep_xfer_dlist("NIXL_INIT_AGENT", local, buf.kind)
        rh = agent.prep_xfer_dlist(name, remote, peer["kind"])
        idx = list(range(len(local)))
        for op in args.ops.split(","):
            seed = (size * 31 + len(op)) & 0xFFFFFFFF
            if op == "WRITE":
                buf.fill(size, seed)
            else:
                buf.fill(size, seed ^ 0x5A5A5A5A)
                ask({"cmd": "fill", "size": size, "seed": seed})
            xfer, post = [], []
            for i in range(args.warmup + args.iters):
                h = agent.make_prepped_xfer(op, lh, idx, rh, idx)
                t1 = time.perf_counter_ns()
                state = agent.transfer(h)
                t2 = time.perf_counter_ns()
                while state == "PROC":
                    state = agent.check_xfer_state(h)
                t3 = time.perf_counter_ns()
                agent.release_xfer_handle(h)
                if state != "DONE":
                    sys.exit(f"nixl_ref: {op} {size}: NIXL state {state}")
                if i >= args.warmup:
                    xfer.append((t3 - t1) / 1e3)
                    post.append((t2 - t1) / 1e3)
            if op == "WRITE":
                offset = ask({"cmd": "check", "size": size, "seed": seed})["offset"]
            else:
                offset = buf.first_mismatch(size, seed)
            avg = sum(xfer) / len(xfer)
            med = sorted(xfer)[len(xfer) // 2]
            row = {"size": size, "op": op, "blocks": len(local), "gbps": size / (avg * 1e3),
                   "gbps_median": size / (med * 1e3), "transfer_avg_us": avg,
                   "post_avg_us": sum(post) / len(post), "verified": offset is None}
            print(json.dumps({"nixl_ref": row}), flush=True)
            if offset is not None:
                print(f"nixl_ref: {op} of {size} bytes: contents differ at byte offset {offset}", file=sys.stderr)
                failed = True
        agent.release_dlist_handle(lh)
        agent.release_dlist_handle(rh)
    child.stdin.close()
    child.wait(timeout=30)
    sys.stdout.flush()
    os._exit(1 if failed else 0)


if __name__ == "__main__":
    main()
