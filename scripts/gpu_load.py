#!/usr/bin/env python3
"""GPU ground-truth load for checking the agent on a GPU machine (not used by tests).

Phases, each bracketed by JSON markers on stdout ({"marker", "edge", "t_ns", "bytes"}):
idle, h2d_pageable (host->device copies from pageable memory), h2d_pinned (from pinned
memory), alloc (one 20 GiB buffer), matmul (bf16 GEMMs, full utilisation), d2h, free, idle.
"""
import json, os, time

def mark(name, edge, **kw):
    print(json.dumps({"marker": name, "edge": edge, "t_ns": time.time_ns(), "pid": os.getpid(), **kw}), flush=True)

def copy_for(seconds, src, dst):
    import torch
    n, t = 0, time.time()
    while time.time() - t < seconds:
        dst.copy_(src, non_blocking=False)
        n += src.numel() * src.element_size()
    torch.cuda.synchronize()
    return n

def main():
    import torch
    mark("idle", "begin"); time.sleep(5); mark("idle", "end")
    torch.zeros(1, device="cuda"); torch.cuda.synchronize()
    host = torch.empty(1 << 30, dtype=torch.uint8)
    host.fill_(7)
    dev = torch.empty(1 << 30, dtype=torch.uint8, device="cuda")
    mark("h2d_pageable", "begin"); b = copy_for(6, host, dev); mark("h2d_pageable", "end", bytes=b)
    time.sleep(2)
    pinned = host.pin_memory()
    mark("h2d_pinned", "begin"); b = copy_for(6, pinned, dev); mark("h2d_pinned", "end", bytes=b)
    time.sleep(2)
    mark("alloc", "begin"); kv = torch.empty(20 << 30, dtype=torch.uint8, device="cuda"); kv.zero_(); torch.cuda.synchronize(); mark("alloc", "end", bytes=20 << 30)
    time.sleep(3)
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    mark("matmul", "begin")
    t = time.time()
    while time.time() - t < 15:
        for _ in range(20):
            a = (a @ a).clamp_(-1, 1)
        torch.cuda.synchronize()
    mark("matmul", "end")
    mark("d2h", "begin"); b = copy_for(4, dev, pinned); mark("d2h", "end", bytes=b)
    del kv, dev, a
    torch.cuda.empty_cache()
    mark("idle2", "begin"); time.sleep(5); mark("idle2", "end")

if __name__ == "__main__":
    main()
