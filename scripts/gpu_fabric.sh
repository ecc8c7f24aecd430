#!/usr/bin/env bash
# Fabric part of the GPU-machine check: two agents on the node, `servescope fabric
# check`, and loopback probes over UCX and libfabric with host and CUDA memory.
# Usage: scripts/gpu_fabric.sh BIN_DIR OUT_DIR
set -u
BIN=${1:?bin dir}; OUT=${2:?out dir}
T=$(mktemp); echo gpu-fabric-token > "$T"
PIDS=""
for p in 7751 7752; do
  "$BIN/servescope-agent" --listen 127.0.0.1:$p --metrics-listen off --token-file "$T" > "$OUT/fabric_agent_$p.log" 2>&1 &
  PIDS="$PIDS $!"
done
sleep 2
{
  echo "### servescope fabric check"
  "$BIN/servescope" fabric check --agent 127.0.0.1:7751 --token-file "$T"
  for tr in ucx:tcp ucx libfabric:tcp libfabric:shm; do
    for mem in host cuda; do
      echo; echo "### fabric probe --transport $tr --mem $mem"
      timeout 120 "$BIN/servescope" fabric probe --from 127.0.0.1:7751 --to 127.0.0.1:7752 --token-file "$T" \
        --transport "$tr" --mem "$mem" --sizes 64K,1M,16M --ops tag,rma_write,rma_read --no-store
      echo "rc=$?"
    done
  done
} > "$OUT/fabric.txt" 2>&1
kill $PIDS 2>/dev/null; wait
cat "$OUT/fabric.txt"
