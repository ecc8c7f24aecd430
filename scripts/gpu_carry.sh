#!/usr/bin/env bash
# Builds what a GPU-machine check carries into .carry/ (git-ignored): stripped
# release binaries and the GPU collector test binary. Then, with the device tool:
#   run(command="bash scripts/gpu_check.sh .carry $OUT", carry=[".carry"])
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p servescope-agent -p servescope -p servescope-bench
T=${CARGO_TARGET_DIR:-target}
mkdir -p .carry
cp "$T"/release/servescope-agent "$T"/release/servescope "$T"/release/agent_overhead .carry/
test_bin=$(cargo test --release -p servescope-agent --test gpu --no-run --message-format=json 2>/dev/null \
  | python3 -c 'import json,sys
for l in sys.stdin:
    m=json.loads(l)
    if m.get("reason")=="compiler-artifact" and m.get("executable") and m["target"]["name"]=="gpu": print(m["executable"])' | tail -1)
cp "$test_bin" .carry/gpu_test
strip .carry/servescope-agent .carry/servescope .carry/agent_overhead .carry/gpu_test
ls -la .carry
