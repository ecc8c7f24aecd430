#!/usr/bin/env bash
# GPU-memory UCX probes through the NIXL wheel's bundled UCX, run on the GPU machine.
# Needs: stripped release binaries in .gpu/bin/ (servescope, servescope-agent) and the
# bundle .gpu/nixl.tar.xz (scripts/gpu_bundle.sh 3.12). Two agents on loopback, both on
# GPU 0: VRAM↔VRAM (cuda_ipc; RMA and tag), VRAM→host and host→VRAM (cuda_copy), host↔host as a
# reference, then the forced fallback with UCX_TLS=tcp,cuda_copy in the responder's environment
# (expect the emulation finding). Every row's last column says whether the receiving side checked
# the contents ("verified"; on by default for GPU memory, --verify for the host reference); a
# mismatch fails the probe with the size, op and first differing offset.
# Usage: bench/gpu_kv.sh [REPO_ROOT]
# GPU_A / GPU_B (default 0 and 0) choose the GPUs of the first (VRAM → VRAM) probe, e.g. 0 and 1
# on a two-GPU node; SIZES overrides 1M,16M,256M.
set -euo pipefail
ROOT="${1:-$(cd "$(dirname "$0")/.." && pwd)}"
BIN="$ROOT/.gpu/bin"
[ -x "$BIN/servescope" ] && [ -x "$BIN/servescope-agent" ] || { echo "no binaries in $BIN" >&2; exit 2; }
[ -f "$ROOT/.gpu/nixl.tar.xz" ] || { echo "no $ROOT/.gpu/nixl.tar.xz (scripts/gpu_bundle.sh 3.12)" >&2; exit 2; }

WORK="$(mktemp -d /tmp/gpu_kv.XXXXXX)"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

mkdir -p "$WORK/site"
tar -xJf "$ROOT/.gpu/nixl.tar.xz" -C "$WORK/site"
export PYTHONPATH="$WORK/site${PYTHONPATH:+:$PYTHONPATH}"
UCP="$(ls "$WORK"/site/nixl_cu*.libs/libucp-*.so* | head -n 1)"
echo "bundle UCX: $UCP"
ls "$(dirname "$UCP")/ucx/" | sed 's/^/  module: /'
nvidia-smi --query-gpu=index,name,driver_version --format=csv,noheader || true

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "agent on port $1 did not start" >&2; return 1
}
start_agent() { # PORT [ENV=VALUE ...]
  local port="$1"; shift
  env "$@" "$BIN/servescope-agent" --listen "127.0.0.1:$port" --metrics-listen off \
    --insecure-no-auth >"$WORK/agent-$port.log" 2>&1 &
  PIDS+=("$!")
  wait_port "$port"
}

PA="$(free_port)"; PB="$(free_port)"
start_agent "$PA"
start_agent "$PB"

SUMMARY="$WORK/summary.txt"
probe() { # FROM_PORT TO_PORT TITLE ARGS...
  local a="$1" b="$2" title="$3" out="$WORK/probe.out" rc=0; shift 3
  echo
  echo "=== $title ==="
  "$BIN/servescope" fabric probe --from "127.0.0.1:$a" --to "127.0.0.1:$b" --no-store \
    --transport ucx --ucx-lib "$UCP" --sizes "${SIZES:-1M,16M,256M}" \
    --window 4 --iterations 20 --latency-iterations 20 --peer-timeout 60s "$@" 2>&1 | tee "$out" || rc=$?
  [ "$rc" = 0 ] || echo "(probe failed: rc $rc)"
  # Rows end in the contents column: verified, unverified: WHY, or - (not checked).
  printf '%-72s verified %s, unverified %s, unchecked %s, mismatch %s\n' "$title" \
    "$(grep -c '  verified$' "$out" || true)" "$(grep -c '  unverified: ' "$out" || true)" \
    "$(grep -cE '^ +[0-9.]+ [KMG]iB .*  -$' "$out" || true)" \
    "$(grep -c 'contents mismatch' "$out" || true)" >>"$SUMMARY"
}

GA="${GPU_A:-0}"; GB="${GPU_B:-0}"
probe "$PA" "$PB" "VRAM GPU$GA -> VRAM GPU$GB, rma_write,rma_read,tag (cuda_ipc expected)" \
  --mem-driver "cuda:$GA" --mem-responder "cuda:$GB" --ops rma_write,rma_read,tag
probe "$PA" "$PB" "VRAM GPU0 -> host, rma_write,rma_read,tag (cuda_copy expected)" \
  --mem-driver cuda:0 --mem-responder host --ops rma_write,rma_read,tag
probe "$PA" "$PB" "host -> VRAM GPU0, rma_write,rma_read,tag (cuda_copy expected)" \
  --mem-driver host --mem-responder cuda:0 --ops rma_write,rma_read,tag
probe "$PA" "$PB" "host <-> host through the bundle (reference)" --mem host \
  --ops rma_write,rma_read --verify

# Forced fallback: a responder with UCX_TLS=tcp,cuda_copy.
PC="$(free_port)"
start_agent "$PC" UCX_TLS=tcp,cuda_copy
probe "$PA" "$PC" "forced fallback UCX_TLS=tcp,cuda_copy on the responder (emulation finding expected)" \
  --mem cuda:0 --ops rma_write,rma_read

echo
echo "=== contents verification per probe (rows) ==="
cat "$SUMMARY"
echo
echo "agent logs: $(ls "$WORK"/agent-*.log | tr '\n' ' ')"
tail -n 20 "$WORK"/agent-*.log || true
