#!/usr/bin/env bash
# Verification run on a GPU machine: the agent and `servescope record` for 60 s while
# scripts/gpu_load.py loads the GPU, nvidia-smi --query-gpu sampled alongside, and
# bench/agent_overhead at the same time. Usage: scripts/gpu_check.sh BIN_DIR OUT_DIR
set -u
BIN=${1:?bin dir}; OUT=${2:?out dir}
mkdir -p "$OUT"
T=$(mktemp); echo gpu-check-token > "$T"
nvidia-smi -L > "$OUT/gpus.txt" 2>&1
nvidia-smi topo -m >> "$OUT/gpus.txt" 2>&1
[ -x "$BIN/gpu_test" ] && "$BIN/gpu_test" --nocapture > "$OUT/gpu_test.txt" 2>&1
"$BIN/servescope-agent" --listen 127.0.0.1:7733 --metrics-listen 127.0.0.1:9478 --token-file "$T" > "$OUT/agent.out" 2> "$OUT/agent.err" &
AG=$!
sleep 2
"$BIN/servescope" nodes --agent 127.0.0.1:7733 --token-file "$T" > "$OUT/nodes.txt" 2>&1
nvidia-smi --query-gpu=timestamp,index,memory.used,utilization.gpu,power.draw --format=csv,nounits -lms 500 > "$OUT/smi.csv" 2>&1 &
SMI=$!
"$BIN/agent_overhead" --agent-bin "$BIN/servescope-agent" --seconds 60 > "$OUT/bench.txt" 2>&1 &
BENCH=$!
"$BIN/servescope" record --agent 127.0.0.1:7733 --token-file "$T" --duration 60s --db "$OUT/gpu.db" --label gpu-check --quiet > "$OUT/record.out" 2> "$OUT/record.err" &
REC=$!
sleep 1
python3 "$(dirname "$0")/gpu_load.py" > "$OUT/markers.jsonl" 2> "$OUT/load.err"
curl -s -H "authorization: Bearer gpu-check-token" http://127.0.0.1:9478/metrics > "$OUT/metrics.txt"
wait $REC
kill $SMI
wait $BENCH
RUN=$(tail -1 "$OUT/record.out")
"$BIN/servescope" export "$RUN" --db "$OUT/gpu.db" --format csv -o "$OUT/gpu.csv" 2>> "$OUT/record.err"
kill $AG; wait $AG
echo "run $RUN done"; cat "$OUT/nodes.txt" "$OUT/bench.txt" "$OUT/record.err" | head -80
