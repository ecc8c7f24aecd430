#!/usr/bin/env bash
# Cold-start attribution and agent overhead with the agent at its DEFAULT settings,
# on a GPU machine (~4 min on one H100; needs root for --drop-caches).
#
# Usage: bench/gpu_startup.sh BIN_DIR OUT_DIR WORKLOAD_PY
#   BIN_DIR      stripped release binaries: servescope-agent, servescope, agent_overhead
#   OUT_DIR      where the summary (summary.txt) and one tar.gz of raw files go
#   WORKLOAD_PY  the ground-truth workload, phase_workload.py (prints phase markers)
# The integrator carries .gpu/bin/ (the three binaries) and .gpu/phase_workload.py:
#   bench/gpu_startup.sh .gpu/bin "$OUT" .gpu/phase_workload.py
#
# 1. Two checkpoints are written (8 GiB and 3 GiB, random bytes, outside the runs).
# 2. Disk-bound run: an agent (only --listen/--metrics-listen/--token-file), a
#    `servescope record` beside it, phase_workload.py --drop-caches --weights-gib 8;
#    then `servescope startup infer --markers`: every marker boundary's error
#    (goal ±250 ms) and each phase > 2 s within 10 %.
# 3. The same with --weights-gib 3 read from the page cache (warm-up read first).
# 4. bench/agent_overhead over a window holding one cold start (3 GiB, page cache):
#    the agent's CPU, the GPU collector's cost per GPU, the cadence changes, and the
#    projection for 8 GPUs + 32 EFA ports against ≤ 0.5 % of one core.
# 5. bench/agent_overhead over a steady serving window (a process already holding
#    GPU memory and keeping the GPU busy before the agent starts; the warm-up lets
#    the agent's burst over it end): the GPU collector's steady cost per GPU, which
#    is what a p5 pays between cold starts, and the projection from it.
# Output is compact (for a note); raw files are in OUT_DIR/gpu_startup_raw.tar.gz.
set -u
BIN=$(cd "$1" && pwd); OUT=$(mkdir -p "$2" && cd "$2" && pwd); WL=$(cd "$(dirname "$3")" && pwd)/$(basename "$3")
RAW=$(mktemp -d /tmp/gpu_startup.XXXX)
T=$RAW/token; echo "gpu-startup-token" > "$T"; chmod 600 "$T"
CK8=/tmp/gpu_startup_w8.safetensors; CK3=/tmp/gpu_startup_w3.safetensors
S=$OUT/summary.txt; : > "$S"
say() { echo "$*" | tee -a "$S"; }

# Checkpoints as phase_workload.py writes them (8192x8192 bf16 tensors, 128 MiB each).
python3 - "$CK8" 8 "$CK3" 3 > "$RAW/ckpt.log" 2>&1 <<'PY'
import os, sys, numpy as np, torch
from safetensors.torch import save_file
for path, gib in zip(sys.argv[1::2], sys.argv[2::2]):
    n = int(gib) * 8
    if os.path.exists(path) and os.path.getsize(path) >= n * (128 << 20):
        continue
    rng = np.random.default_rng(0)
    save_file({f"w{i}": torch.from_numpy(rng.integers(0, 2**15, size=(8192, 8192), dtype=np.int16)).view(torch.bfloat16)
               for i in range(n)}, path)
PY
[ -w /proc/sys/vm/drop_caches ] || say "WARNING: /proc/sys/vm/drop_caches not writable (not root): the disk-bound run will fail"
say "== gpu_startup $(date -u +%FT%TZ) $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -1)"

# One cold start recorded by an agent at its defaults. $1 name, $2 record seconds, rest: workload args.
cold_start() {
  local name=$1 secs=$2; shift 2
  local port=$((7790 + RANDOM % 100))
  "$BIN/servescope-agent" --listen 127.0.0.1:$port --metrics-listen off --token-file "$T" \
      > "$RAW/$name.agent.out" 2> "$RAW/$name.agent.err" &
  local ag=$!
  sleep 2
  "$BIN/servescope" record --agent 127.0.0.1:$port --token-file "$T" --duration ${secs}s \
      --db "$RAW/$name.db" --label "$name" --quiet > "$RAW/$name.record.out" 2> "$RAW/$name.record.err" &
  local rec=$!
  sleep 3
  timeout $((secs - 8)) python3 "$WL" "$@" > "$RAW/$name.markers.jsonl" 2> "$RAW/$name.workload.err"
  say "-- $name: workload $* exited $? ($(grep -c marker "$RAW/$name.markers.jsonl") marker lines)"
  wait $rec
  kill $ag 2>/dev/null; wait $ag 2>/dev/null
  local run; run=$(tail -1 "$RAW/$name.record.out")
  grep -h "collector_cadence\|burst cadence\|normal cadence" "$RAW/$name.agent.err" | sed 's/^.*gpu /  agent: gpu /' | head -6 | tee -a "$S"
  "$BIN/servescope" startup infer "$run" --db "$RAW/$name.db" --markers "$RAW/$name.markers.jsonl" \
      > "$RAW/$name.infer.txt" 2>&1
  # The comparison table (from its header on), then the waterfall's first lines.
  sed -n '/^marker /,$p' "$RAW/$name.infer.txt" | tee -a "$S"
  local bad; bad=$(sed -n '/^marker /,$p' "$RAW/$name.infer.txt" | awk 'NR>1 && $NF=="NO"' | wc -l)
  say "   $name: $bad marker row(s) outside ±250 ms / 10 %"
}

cold_start diskbound 80 --drop-caches --weights-gib 8 --kv-gib 20 --ckpt "$CK8"
cat "$CK3" > /dev/null   # page-cache warm-up
cold_start pagecache 55 --weights-gib 3 --kv-gib 20 --ckpt "$CK3"

cat "$CK3" > /dev/null
say "-- agent_overhead, window = one cold start (3 GiB from page cache), agent at defaults"
"$BIN/agent_overhead" --agent-bin "$BIN/servescope-agent" --seconds 20 \
    --window-cmd "python3 '$WL' --weights-gib 3 --kv-gib 20 --ckpt '$CK3'" \
    --window-cmd-log "$RAW/overhead.workload.txt" > "$RAW/overhead.txt" 2> "$RAW/overhead.err"
say "   agent_overhead exited $?"
grep -v "^  thread" "$RAW/overhead.txt" | tee -a "$S"
grep "^  thread" "$RAW/overhead.txt" | sort -k4 -rn | head -6 | tee -a "$S"
tail -3 "$RAW/overhead.err" | tee -a "$S"

say "-- agent_overhead, window = steady serving (a busy GPU, memory held, no process change), agent at defaults"
python3 - > "$RAW/steady.workload.txt" 2>&1 <<'PY' &
import time, torch
hold = torch.empty(8 << 30, dtype=torch.uint8, device="cuda")
a = torch.randn(4096, 4096, device="cuda")
t = time.time()
while time.time() - t < 75:
    a = (a @ a).clamp(-1, 1)
    torch.cuda.synchronize()
PY
SERVE=$!
sleep 12
"$BIN/agent_overhead" --agent-bin "$BIN/servescope-agent" --seconds 30 --warmup-seconds 12 \
    > "$RAW/steady.txt" 2> "$RAW/steady.err"
say "   agent_overhead exited $?"
kill $SERVE 2>/dev/null; wait $SERVE 2>/dev/null
grep -v "^  thread" "$RAW/steady.txt" | tee -a "$S"
grep "^  thread" "$RAW/steady.txt" | sort -k4 -rn | head -6 | tee -a "$S"

cp "$S" "$RAW/"
tar -C "$RAW" -czf "$OUT/gpu_startup_raw.tar.gz" . && rm -rf "$RAW"
