#!/usr/bin/env bash
# The NIXL half of the GPU-machine run (prepared here, run there): two agents on loopback
# on one GPU, `servescope fabric probe --transport nixl --mem cuda` at 1 MiB, 16 MiB and
# 256 MiB through the wheel's NIXL and its bundled UCX, then the reference
# (bench/nixl_ref.py: the wheel's own Python API, two processes) at the same sizes, and
# ours/reference at 16 MiB and 256 MiB per op; then the same with UCX_TLS=tcp,cuda_copy
# forced in both agents (and the reference), where the probe must show the emulated lanes.
#
# Needs: .gpu/nixl.tar.xz (scripts/gpu_bundle.sh), the stripped release binaries in
# .gpu/bin/ (servescope, servescope-agent), the machine's python3 with numpy and torch.
#   bash bench/gpu_kv_nixl.sh            (output also under $OUT when set)
# ROUNDS=N alternates ours and the reference N times (the ratio takes each side's best
# verified row, 'paired' the median of the per-round ratios); HEALTHY_ONLY=1 skips the
# forced fallback; AGENTS_UP_REF=1 also runs the reference once while two idle agents
# sample the GPU, as they do during our probe (what the agents' own sampling costs).
# MEM_DRIVER / MEM_RESPONDER (default cuda:0 each) place the two ends, e.g. cuda:0 and
# cuda:1 on a two-GPU node (bench/gpu_two.sh); SIZES overrides 1M,16M,256M and RATIO_SIZES
# the sizes of the ratio (16M,256M).
set -uo pipefail
cd "$(dirname "$0")/.."
BIN="${BIN:-.gpu/bin}"
RES="${OUT:-$(mktemp -d)}/kv-nixl"
mkdir -p "$RES"
SITE="$(mktemp -d /tmp/nixl-site.XXXXXX)"
tar -xJf .gpu/nixl.tar.xz -C "$SITE" || { echo "no .gpu/nixl.tar.xz (scripts/gpu_bundle.sh)"; exit 1; }
export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
PY="$(command -v python3)"
SIZES="${SIZES:-1M,16M,256M}"
MEM_DRIVER="${MEM_DRIVER:-cuda:0}"
MEM_RESPONDER="${MEM_RESPONDER:-cuda:0}"
echo "driver memory $MEM_DRIVER, responder memory $MEM_RESPONDER, sizes $SIZES"
TOK="$RES/token"; echo "gpu-kv-nixl" > "$TOK"; chmod 600 "$TOK"
# Both sides (our agents with their NIXL children, and the reference) run on the
# cores local to the GPU, so that neither wins by where the scheduler put it: the
# emulated READ path (tcp over lo) is CPU-bound and moves ±10 % with placement.
PIN=()
BUS=$(nvidia-smi --query-gpu=pci.bus_id --format=csv,noheader -i 0 2>/dev/null | tr 'A-F' 'a-f')
CPUS=$(cat "/sys/bus/pci/devices/${BUS: -12}/local_cpulist" 2>/dev/null)
if [ -n "$CPUS" ] && command -v taskset >/dev/null; then PIN=(taskset -c "$CPUS"); echo "pinned to the GPU's local cores $CPUS"; fi
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
"$PY" -c 'import torch, nixl_cu13; print("torch", torch.__version__, "cuda", torch.cuda.is_available())'

AGENTS=()
start_agents() { # env assignments for both agents, e.g. UCX_TLS=tcp,cuda_copy
  for port in 47911 47912; do
    env "$@" "${PIN[@]}" "$BIN/servescope-agent" --listen "127.0.0.1:$port" --metrics-listen off \
      --token-file "$TOK" ${AGENT_EXTRA:-} >"$RES/agent-$port.log" 2>&1 &
    AGENTS+=($!)
  done
  for port in 47911 47912; do
    for _ in $(seq 50); do (echo >/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.2; done
  done
}
stop_agents() { for p in "${AGENTS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; AGENTS=(); }
trap stop_agents EXIT

probe() { # label, extra flags
  local label="$1"; shift
  echo "== ours ($label)"
  "$BIN/servescope" fabric probe --from 127.0.0.1:47911 --to 127.0.0.1:47912 --token-file "$TOK" \
    --no-store --transport nixl --mem-driver "$MEM_DRIVER" --mem-responder "$MEM_RESPONDER" --sizes "$SIZES" --python "$PY" --window 1 \
    --max-duration 300s "$@" 2>&1 | tee -a "$RES/ours-$label.txt"
}
reference() { # label, env assignments
  local label="$1"; shift
  echo "== reference ($label): bench/nixl_ref.py"
  env "$@" "${PIN[@]}" "$PY" bench/nixl_ref.py --mem "$MEM_DRIVER" --mem-peer "$MEM_RESPONDER" --sizes "$SIZES" "${REF_ARGS[@]}" \
    2>>"$RES/ref-$label.stderr" | tee -a "$RES/ref-$label.txt"
}

echo "### healthy: default UCX_TLS (ROUNDS=${ROUNDS:-1}, ours and the reference alternate who goes first)"
REF_ARGS=(--iters 50)
for round in $(seq "${ROUNDS:-1}"); do
  if [ $((round % 2)) = 0 ]; then reference healthy; fi
  start_agents
  probe healthy --iterations 50
  stop_agents
  if [ $((round % 2)) = 1 ]; then reference healthy; fi
done
echo "== ours / reference (goal ≥ 0.95 at 16 MiB and 256 MiB)"
"$PY" bench/nixl_ratio.py "$RES/ours-healthy.txt" "$RES/ref-healthy.txt" --sizes "${RATIO_SIZES:-16M,256M}"
if [ "${AGENTS_UP_REF:-0}" = 1 ]; then
  echo "### the reference while two idle agents run (not the verdict: what their sampling costs)"
  start_agents
  reference agents-up
  stop_agents
  "$PY" bench/nixl_ratio.py "$RES/ours-healthy.txt" "$RES/ref-agents-up.txt" || true
fi

echo "### UCX's own protocol tables for this transfer (raw, for the parser's fixtures)"
UCX_PROTO_INFO=y "$PY" bench/nixl_ref.py --mem cuda:0 --sizes 1M --iters 3 >"$RES/proto-info-cuda.txt" 2>&1
grep -c "ucp_put\|ucp_get" "$RES/proto-info-cuda.txt"

[ "${HEALTHY_ONLY:-0}" = 1 ] && { echo "results in $RES"; exit 0; }
echo "### forced fallback: UCX_TLS=tcp,cuda_copy in both agents"
start_agents UCX_TLS=tcp,cuda_copy
probe forced --iterations 5
stop_agents
REF_ARGS=(--iters 5)
reference forced UCX_TLS=tcp,cuda_copy
"$PY" bench/nixl_ratio.py "$RES/ours-forced.txt" "$RES/ref-forced.txt" || true
grep -h "rma=" "$RES/ours-forced.txt" | grep -q EMULATED \
  && echo "forced fallback: emulation visible in the probe's transport truth" \
  || echo "forced fallback: EMULATION NOT SHOWN"
echo "results in $RES"
