#!/usr/bin/env bash
# A Python venv with the real OpenTelemetry SDK and OTLP/gRPC exporter, for the
# integration test coordinator/tests/otlp_python.rs (spans sent by the SDK reach the
# OTLP receiver). Idempotent: pip runs only when the pinned versions are not there.
#
#   SERVESCOPE_OTEL_VENV  where the venv lives (default: target/otel-venv, git-ignored)
#
# The last line printed is the venv's python; use it as SERVESCOPE_OTEL_PYTHON.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${SERVESCOPE_OTEL_VENV:-$ROOT/target/otel-venv}"
OTEL_VERSION=1.45.2
PKGS=(
  "opentelemetry-sdk==$OTEL_VERSION"
  "opentelemetry-exporter-otlp-proto-grpc==$OTEL_VERSION"
)
PY="$VENV/bin/python"

die() { echo "otel_venv: $*" >&2; exit 1; }

# The pinned packages are importable at the pinned versions.
have_pkgs() {
  [ -x "$PY" ] || return 1
  "$PY" - "$OTEL_VERSION" <<'EOF' >/dev/null 2>&1
import sys
from importlib.metadata import version
want = sys.argv[1]
for p in ("opentelemetry-sdk", "opentelemetry-exporter-otlp-proto-grpc"):
    assert version(p) == want, p
import opentelemetry.sdk.trace  # noqa: F401
import opentelemetry.exporter.otlp.proto.grpc.trace_exporter  # noqa: F401
EOF
}

if have_pkgs; then
  echo "$PY"
  exit 0
fi

TAG=otel_venv
VENV_VAR=SERVESCOPE_OTEL_VENV
# shellcheck source=scripts/lib/venv.sh
. "$ROOT/scripts/lib/venv.sh"
need_python3
need_venv
pip_install "${PKGS[@]}"
have_pkgs || die "installed ${PKGS[*]} but they do not import from $PY"
echo "$PY"
