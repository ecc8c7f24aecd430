#!/usr/bin/env bash
# Serves the shared vLLM CPU engine on 127.0.0.1:PORT for as long as this script runs:
#   serve.sh PORT [WATCH_PID]
# The engine runs in its own process group (setup.sh starts it with setsid); this script
# stops that group when it gets TERM or INT, when the engine exits, or when WATCH_PID
# (the test process) is gone, so no engine outlives the tests. Extra engine flags:
# VLLM_EXTRA. Needs SERVESCOPE_VLLM_CPU_DIR (the folder of setup.sh).
set -uo pipefail
DIR=${SERVESCOPE_VLLM_CPU_DIR:?set SERVESCOPE_VLLM_CPU_DIR}
PORT=${1:?usage: serve.sh PORT [WATCH_PID]}
WATCH=${2:-}
out=$(mktemp)
pid=""
stop() {
  [ -n "$pid" ] || pid=$(sed -n 's/^pid //p' "$out" 2>/dev/null)
  [ -n "$pid" ] && kill -- -"$pid" 2>/dev/null
  rm -f "$out"
  exit "${1:-0}"
}
trap 'stop 0' TERM INT
# The engine's compute threads on core 0 only: on a 2-core machine an engine that
# spins on both starves its own API server, which then streams a whole answer at
# once (TTFT = end-to-end, TPOT ≈ 0 for every client). Core 1 is left to the API
# server and the clients under test.
export VLLM_CPU_OMP_THREADS_BIND=${VLLM_CPU_OMP_THREADS_BIND:-0}
bash "$DIR/setup.sh" serve "$PORT" >"$out" 2>&1 &
setup=$!
wait "$setup"
rc=$?
pid=$(sed -n 's/^pid //p' "$out")
if [ "$rc" -ne 0 ] || [ -z "$pid" ]; then
  echo "vLLM did not start (setup.sh serve $PORT exited $rc):" >&2
  cat "$out" >&2
  stop 1
fi
echo "ready pid $pid"
while kill -0 "$pid" 2>/dev/null && { [ -z "$WATCH" ] || kill -0 "$WATCH" 2>/dev/null; }; do
  sleep 1
done
stop 0
