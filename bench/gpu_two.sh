#!/usr/bin/env bash
# Two-GPU node verification, run on a machine with two or more GPUs (prepared here, run there):
#  1. NVLink telemetry: one agent at its defaults with /metrics on loopback; a timed GPU0→GPU1
#     and GPU1→GPU0 peer copy of known size (scripts/nvlink_copy.py, ~COPY_SECONDS each); the
#     agent's NVLink byte counters (summed over active links) before and after, against the
#     bytes copied, per direction; `servescope watch` during the copy (its nvlink tx/rx rates
#     against the copy's rate); nvidia-smi topo -m and nvlink -s beside them.
#  2. Topology: `servescope nodes` (GPU–GPU link type, GPU–NIC affinity).
#  3. GPU-to-GPU probes, cuda:0 → cuda:1: bench/gpu_kv.sh (the wheel's UCX) and
#     bench/gpu_kv_nixl.sh (--transport nixl beside bench/nixl_ref.py), 1M–1G, verified.
#  4. The forced slow path (UCX_TLS=tcp,cuda_copy): the second half of both scripts.
# Needs: .gpu/bin/{servescope,servescope-agent}, .gpu/nixl.tar.xz, python3 with torch.
#   OUT=... bash bench/gpu_two.sh
# PROBE_SIZES (1M,16M,256M,1G), ROUNDS (2), COPY_GIB (4), COPY_SECONDS (6) tune it; SMOKE=1 with
# GPU_B=0 runs the plumbing on a one-GPU machine (no NVLink: its counters are not checked).
set -uo pipefail
cd "$(dirname "$0")/.."
BIN="${BIN:-.gpu/bin}"
RES="${OUT:-$(mktemp -d)}/two"
mkdir -p "$RES"
A="${GPU_A:-0}"; B="${GPU_B:-1}"
N=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU ')
echo "== $(date -u +%FT%TZ) $N GPU(s)"
nvidia-smi --query-gpu=index,name,driver_version,pci.bus_id --format=csv,noheader
[ "$N" -ge 2 ] || [ "${SMOKE:-0}" = 1 ] || { echo "gpu_two: needs two GPUs, this machine has $N"; exit 2; }

echo "== nvidia-smi topo -m"; nvidia-smi topo -m
echo "== nvidia-smi nvlink -s (GPU $A and $B)"; nvidia-smi nvlink -s -i "$A"; nvidia-smi nvlink -s -i "$B"

TOK="$RES/token"; echo "gpu-two" > "$TOK"; chmod 600 "$TOK"
"$BIN/servescope-agent" --listen 127.0.0.1:47921 --metrics-listen 127.0.0.1:47929 \
  --token-file "$TOK" >"$RES/agent.log" 2>&1 &
AGENT=$!
trap 'kill $AGENT 2>/dev/null; wait $AGENT 2>/dev/null' EXIT
for _ in $(seq 50); do (echo >/dev/tcp/127.0.0.1/47921) 2>/dev/null && break; sleep 0.2; done
sleep 3

echo "== 2. servescope nodes"
"$BIN/servescope" nodes --agent 127.0.0.1:47921 --token-file "$TOK" 2>&1 | tee "$RES/nodes.txt"

# The agent's NVLink counters as JSON {gpu: [tx, rx]} from its /metrics.
scrape() {
  python3 - "$TOK" <<'PY'
import json, re, sys, urllib.request
req = urllib.request.Request("http://127.0.0.1:47929/metrics",
                             headers={"Authorization": "Bearer " + open(sys.argv[1]).read().strip()})
out = {}
for line in urllib.request.urlopen(req, timeout=5).read().decode().splitlines():
    m = re.match(r'servescope_gpu_nvlink_(transmit|receive)_bytes_total\{[^}]*gpu="(\d+)"[^}]*\} (\S+)', line)
    if m:
        out.setdefault(m.group(2), [None, None])[0 if m.group(1) == "transmit" else 1] = float(m.group(3))
print(json.dumps(out))
PY
}

echo "== 1. NVLink counters against a timed peer copy (agent at its defaults)"
DIRS=("$A $B" "$B $A"); [ "$A" = "$B" ] && DIRS=("$A $B")
for dir in "${DIRS[@]}"; do
  set -- $dir; S=$1; D=$2
  # Let a previous copy's burst end and its counters settle.
  sleep 4
  BEFORE=$(scrape)
  timeout 40 "$BIN/servescope" watch --agent 127.0.0.1:47921 --token-file "$TOK" --duration 14s \
    >"$RES/watch-$S-$D.txt" 2>&1 &
  WATCH=$!
  sleep 3
  COPY=$(python3 scripts/nvlink_copy.py --src "$S" --dst "$D" --gib "${COPY_GIB:-4}" \
    --seconds "${COPY_SECONDS:-6}" | grep nvlink_copy)
  sleep 4   # the counters' next read (every 2 s at the normal cadence, every tick in a burst)
  AFTER=$(scrape)
  wait $WATCH
  echo "$COPY" > "$RES/copy-$S-$D.json"
  python3 - "$S" "$D" "$BEFORE" "$AFTER" "$COPY" <<'PY'
import json, sys
s, d = sys.argv[1], sys.argv[2]
before, after = json.loads(sys.argv[3]), json.loads(sys.argv[4])
c = json.loads(sys.argv[5])["nvlink_copy"]
def delta(g, i):
    if g not in before or g not in after or before[g][i] is None or after[g][i] is None:
        return None
    return after[g][i] - before[g][i]
print(f"copy GPU{s}→GPU{d}: {c['bytes'] / 2**30:.1f} GiB timed in {c['seconds']:.2f} s = {c['gbps']:.1f} GB/s "
      f"(+1 warm-up pass: {c['link_bytes'] / 2**30:.1f} GiB crossed), peer access {c['peer_access']}")
for label, g, i in (("GPU%s nvlink tx" % s, s, 0), ("GPU%s nvlink rx" % d, d, 1),
                    ("GPU%s nvlink tx (reverse)" % d, d, 0), ("GPU%s nvlink rx (reverse)" % s, s, 1)):
    v = delta(g, i)
    if v is None:
        print(f"  {label:<28} not reported by the agent")
        continue
    ratio = v / c["link_bytes"]
    verdict = "" if "reverse" in label else ("  ok (within 10 %)" if abs(ratio - 1) <= 0.10 else "  OUTSIDE 10 %")
    print(f"  {label:<28} {v / 2**30:10.2f} GiB  recorded/copied {ratio:6.3f}{verdict}")
PY
  echo "  servescope watch during the copy (its rows of GPU $S and $D at GB/s; 1 s rates):"
  grep -E "^(gpu |$S |$D )" "$RES/watch-$S-$D.txt" | grep -E "^gpu |GB/s" | awk '!seen[$0]++' \
    | head -n 14 | sed 's/^/    /'
done
kill $AGENT 2>/dev/null; wait $AGENT 2>/dev/null; trap - EXIT

echo "== 3+4. GPU-to-GPU probes cuda:$A → cuda:$B through the wheel's UCX, then forced tcp"
GPU_A=$A GPU_B=$B SIZES="${PROBE_SIZES:-1M,16M,256M,1G}" bash bench/gpu_kv.sh 2>&1 | tee "$RES/gpu_kv.txt" | grep -v "^  module:"
echo "== 3+4. GPU-to-GPU NIXL probes cuda:$A → cuda:$B beside the NIXL reference, then forced tcp"
MEM_DRIVER=cuda:$A MEM_RESPONDER=cuda:$B SIZES="${PROBE_SIZES:-1M,16M,256M,1G}" \
  RATIO_SIZES="${RATIO_SIZES:-16M,256M,1G}" \
  ROUNDS="${ROUNDS:-2}" OUT="$RES" bash bench/gpu_kv_nixl.sh 2>&1 | tee "$RES/gpu_kv_nixl.txt"
echo "results in $RES"
