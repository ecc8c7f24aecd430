#!/usr/bin/env python3
"""Compares a gpu_check.sh run: servescope's recorded GPU memory/utilization against
nvidia-smi --query-gpu readings taken in the same seconds, and the PCIe counters'
movement in each phase of gpu_load.py. Usage: scripts/gpu_compare.py OUT_DIR"""
import csv, datetime, json, sys
from collections import defaultdict

out = sys.argv[1]
rec = defaultdict(dict)  # (gpu, second) -> metric -> value
series = defaultdict(list)  # (gpu, metric) -> [(t_ns, value)]
with open(f"{out}/gpu.csv") as f:
    for r in csv.DictReader(f):
        if not r["metric"].startswith("servescope_gpu_") or "pid=" in r["labels"]:
            continue
        gpu = r["labels"].split("gpu=")[1].split(";")[0]
        t = int(r["t_ns"])
        v = float(r["value"])
        rec[(gpu, t // 10**9)][r["metric"]] = v
        series[(gpu, r["metric"])].append((t, v))

print("second (UTC)         gpu  smi mem MiB  servescope mem MiB   smi util %  servescope util %   smi W  servescope W")
rows = 0
with open(f"{out}/smi.csv") as f:
    rd = csv.reader(f)
    next(rd, None)
    seen = set()
    for row in rd:
        if len(row) < 5:
            continue
        ts = datetime.datetime.strptime(row[0].strip(), "%Y/%m/%d %H:%M:%S.%f").replace(tzinfo=datetime.timezone.utc)
        sec = int(ts.timestamp())
        gpu = row[1].strip()
        if (gpu, sec) in seen or (gpu, sec) not in rec:
            continue
        seen.add((gpu, sec))
        m = rec[(gpu, sec)]
        if sec % 3 == 0:
            print(f"{ts:%H:%M:%S}             {gpu:>3}  {row[2].strip():>11}  {m.get('servescope_gpu_memory_used_bytes', 0) / 2**20:>18.0f}"
                  f"   {row[3].strip():>10}  {m.get('servescope_gpu_utilization_ratio', -0.01) * 100:>17.0f}"
                  f"   {row[4].strip():>5}  {m.get('servescope_gpu_power_watts', 0):>12.0f}")
            rows += 1

print("\nphase            bytes copied (workload)   PCIe tx delta   PCIe rx delta   (servescope counters, GPU 0)")
marks = [json.loads(l) for l in open(f"{out}/markers.jsonl") if l.startswith("{")]
begins = {m["marker"]: m for m in marks if m["edge"] == "begin"}
def at(metric, t):
    s = series.get(("0", metric), [])
    best = None
    for tt, v in s:
        if tt <= t:
            best = v
    return best
for m in marks:
    if m["edge"] != "end":
        continue
    b = begins[m["marker"]]
    # Widen by one sample period on each side: counters are read every 100 ms.
    t0, t1 = b["t_ns"] - 150_000_000, m["t_ns"] + 150_000_000
    tx0, tx1 = at("servescope_gpu_pcie_transmit_bytes_total", t0), at("servescope_gpu_pcie_transmit_bytes_total", t1)
    rx0, rx1 = at("servescope_gpu_pcie_receive_bytes_total", t0), at("servescope_gpu_pcie_receive_bytes_total", t1)
    d = lambda a, b: "-" if a is None or b is None else f"{(b - a) / 1e9:.2f} GB"
    copied = f"{m['bytes'] / 1e9:.2f} GB" if "bytes" in m else ""
    print(f"{m['marker']:<16} {copied:>24}   {d(tx0, tx1):>13}   {d(rx0, rx1):>13}")
