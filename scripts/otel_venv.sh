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

command -v python3 >/dev/null 2>&1 || {
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "otel_venv: installing python3 python3-venv" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends python3 python3-venv >/dev/null
  else
    die "python3 not found; install python3 and python3-venv (Debian: apt-get install python3-venv)"
  fi
}

# `python3 -m venv` needs the venv module with ensurepip and its wheels (on Debian:
# the python3-venv package; without it venv fails with "ensurepip is not available").
VLOG="$(mktemp)"
trap 'rm -f "$VLOG"' EXIT
make_venv() {
  if [ -f "$VENV/pyvenv.cfg" ]; then
    rm -rf "$VENV"  # a broken venv of ours: start over
  elif [ -e "$VENV" ] && [ -n "$(ls -A "$VENV")" ]; then
    die "$VENV exists and is not a venv; remove it or set SERVESCOPE_OTEL_VENV"
  fi
  mkdir -p "$(dirname "$VENV")"
  python3 -m venv "$VENV" >"$VLOG" 2>&1 && [ -x "$PY" ]
}
if [ ! -x "$PY" ] && ! make_venv; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    # Debian names it both python3-venv and after the minor version (python3.11-venv).
    minor="$(python3 -c 'import sys; print(f"python3.{sys.version_info[1]}-venv")')"
    echo "otel_venv: python3 -m venv failed; installing python3-venv" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends python3-venv >/dev/null 2>&1 \
      || apt-get install -y -qq --no-install-recommends "$minor" >/dev/null \
      || die "apt-get could not install python3-venv / $minor"
    make_venv || { cat "$VLOG" >&2; die "python3 -m venv $VENV failed after installing python3-venv"; }
  else
    cat "$VLOG" >&2
    die "python3 -m venv $VENV failed; install python3-venv (Debian: apt-get install python3-venv)"
  fi
fi

log="$VENV/pip-install.log"
if ! "$PY" -m pip install --disable-pip-version-check --no-input -q "${PKGS[@]}" >"$log" 2>&1; then
  cat "$log" >&2
  die "pip install ${PKGS[*]} failed (log above, also in $log)"
fi
have_pkgs || die "installed ${PKGS[*]} but they do not import from $PY"
echo "$PY"
