#!/usr/bin/env bash
# Verification run on a GPU machine: the agent and `servescope record` for 60 s while
# scripts/gpu_load.py loads the GPU, nvidia-smi --query-gpu sampled alongside, and
# bench/agent_overhead at the same time. Usage: scripts/gpu_check.sh BIN_DIR OUT_DIR
set -u
BIN=${1:?bin dir}; OUT=${2:?out dir}
mkdir -p "$OUT"
# Results go to a work folder and come back as one archive (the device tool returns
# at most 8 files).
RES=$(mktemp -d)
FINAL=$OUT; OUT=$RES
T=$(mktemp); echo gpu-check-token > "$T"
nvidia-smi -L > "$OUT/gpus.txt" 2>&1
nvidia-smi topo -m >> "$OUT/gpus.txt" 2>&1
[ -x "$BIN/gpu_test" ] && "$BIN/gpu_test" --nocapture --test-threads 1 --skip pcie_counting > "$OUT/gpu_test.txt" 2>&1
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
# Per-call NVML costs again while the workload runs (it reaches matmuls at ~30 s).
( sleep 32; [ -x "$BIN/gpu_test" ] && "$BIN/gpu_test" nvml_call_costs --nocapture > "$OUT/gpu_costs_loaded.txt" 2>&1 ) &
# PCIe byte counting two ways (fields every 20 ms, GPM integrated) across the workload.
[ -x "$BIN/gpu_test" ] && PCIE_WATCH_SECS=62 "$BIN/gpu_test" pcie_counting_under_load --nocapture > "$OUT/pcie.jsonl" 2>&1 &
python3 "$(dirname "$0")/gpu_load.py" > "$OUT/markers.jsonl" 2> "$OUT/load.err"
curl -s -H "authorization: Bearer gpu-check-token" http://127.0.0.1:9478/metrics > "$OUT/metrics.txt"
wait $REC
kill $SMI
wait $BENCH
RUN=$(tail -1 "$OUT/record.out")
"$BIN/servescope" export "$RUN" --db "$OUT/gpu.db" --format csv -o "$OUT/gpu.csv" 2>> "$OUT/record.err"
# CPU per agent thread (utime+stime, clock ticks) over the whole run.
for t in /proc/$AG/task/*; do
  echo "$(cat $t/comm) $(awk '{print $14+$15}' $t/stat)"
done | sort -k2 -n -r > "$OUT/threads.txt"
echo "agent process total ticks: $(awk '{print $14+$15}' /proc/$AG/stat) (CLK_TCK $(getconf CLK_TCK)), uptime s: $(( $(date +%s) - $(stat -c %Y /proc/$AG) ))" >> "$OUT/threads.txt"
kill $AG; wait $AG
[ "${SKIP_FABRIC:-0}" = 1 ] || bash "$(dirname "$0")/gpu_fabric.sh" "$BIN" "$OUT" > /dev/null 2>&1
# Startup ground truth: phase_workload.py (copied into BIN; it prints its own phase markers) recorded by
# an agent sampling per-process GPU memory every 100 ms.
if [ -f "$BIN/phase_workload.py" ]; then
  "$BIN/servescope-agent" --listen 127.0.0.1:7761 --metrics-listen off --token-file "$T" --process-interval-ms 100 > "$OUT/phase_agent.log" 2>&1 &
  PA=$!
  sleep 2
  "$BIN/servescope" record --agent 127.0.0.1:7761 --token-file "$T" --duration ${PHASE_SECS:-75}s --db "$OUT/phase.db" --label phase --quiet > "$OUT/phase_record.out" 2>&1 &
  PR=$!
  sleep 1
  timeout $(( ${PHASE_SECS:-75} - 5 )) python3 "$BIN/phase_workload.py" ${PHASE_ARGS:-} > "$OUT/phase_markers.jsonl" 2> "$OUT/phase_workload.err"
  wait $PR; kill $PA; wait $PA
  RUNP=$(tail -1 "$OUT/phase_record.out")
  "$BIN/servescope" export "$RUNP" --db "$OUT/phase.db" --format csv -o "$OUT/phase.csv" >> "$OUT/phase_record.out" 2>&1
  grep -c . "$OUT/phase_markers.jsonl" >> "$OUT/phase_record.out"
  "$BIN/servescope" startup infer "$RUNP" --db "$OUT/phase.db" --markers "$OUT/phase_markers.jsonl" > "$OUT/phase_infer.txt" 2>&1
fi
echo "run $RUN done"; cat "$OUT/nodes.txt" "$OUT/bench.txt" "$OUT/threads.txt" "$OUT/record.err" | head -60; cat "$OUT/fabric.txt" 2>/dev/null | cut -c1-400; cat "$OUT/phase_infer.txt" 2>/dev/null
tar -C "$OUT" -czf "$FINAL/gpu_check.tar.gz" .
cp "$OUT/bench.txt" "$OUT/gpu_test.txt" "$FINAL/" 2>/dev/null
