#!/usr/bin/env bash
# A Python venv with a real Ray Serve (ray[serve] from PyPI, CPU only), for the
# integration test coordinator/tests/ray_serve.rs (a Serve config applied through the
# dashboard's REST API, awaited until RUNNING, then deleted). Idempotent: pip runs only
# when the pinned version is not there.
#
#   SERVESCOPE_RAY_VENV  where the venv lives (default: target/ray-venv, git-ignored)
#
# The last line printed is the venv's python; use it as SERVESCOPE_RAY_PYTHON (the
# `ray` CLI is next to it, in the venv's bin/).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${SERVESCOPE_RAY_VENV:-$ROOT/target/ray-venv}"
RAY_VERSION=2.60.0
PKGS=("ray[serve]==$RAY_VERSION")
PY="$VENV/bin/python"

die() { echo "ray_venv: $*" >&2; exit 1; }

# The pinned Ray is importable, with Serve and what tests/ray_serve/forward.py uses.
have_pkgs() {
  [ -x "$PY" ] && [ -x "$VENV/bin/ray" ] || return 1
  "$PY" - "$RAY_VERSION" <<'EOF' >/dev/null 2>&1
import sys
from importlib.metadata import version
assert version("ray") == sys.argv[1], "ray"
import ray.serve  # noqa: F401
import ray.dashboard  # noqa: F401
import aiohttp  # noqa: F401
import starlette.responses  # noqa: F401
EOF
}

if have_pkgs; then
  echo "$PY"
  exit 0
fi

command -v python3 >/dev/null 2>&1 || {
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "ray_venv: installing python3 python3-venv" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends python3 python3-venv >/dev/null
  else
    die "python3 not found; install python3 and python3-venv (Debian: apt-get install python3-venv)"
  fi
}

# Ray publishes wheels for CPython 3.10-3.13 only (no sdist that builds here).
python3 -c 'import sys; sys.exit(0 if (3, 10) <= sys.version_info[:2] <= (3, 13) else 1)' \
  || die "ray $RAY_VERSION needs CPython 3.10-3.13; python3 is $(python3 -V 2>&1)"

# `python3 -m venv` needs the venv module with ensurepip and its wheels (on Debian:
# the python3-venv package; without it venv fails with "ensurepip is not available").
VLOG="$(mktemp)"
trap 'rm -f "$VLOG"' EXIT
make_venv() {
  if [ -f "$VENV/pyvenv.cfg" ]; then
    rm -rf "$VENV"  # a broken venv of ours: start over
  elif [ -e "$VENV" ] && [ -n "$(ls -A "$VENV")" ]; then
    die "$VENV exists and is not a venv; remove it or set SERVESCOPE_RAY_VENV"
  fi
  mkdir -p "$(dirname "$VENV")"
  python3 -m venv "$VENV" >"$VLOG" 2>&1 && [ -x "$PY" ]
}
if [ ! -x "$PY" ] && ! make_venv; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    # Debian names it both python3-venv and after the minor version (python3.11-venv).
    minor="$(python3 -c 'import sys; print(f"python3.{sys.version_info[1]}-venv")')"
    echo "ray_venv: python3 -m venv failed; installing python3-venv" >&2
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

# --only-binary: never try to build Ray or a dependency from source on this box.
log="$VENV/pip-install.log"
echo "ray_venv: pip install ${PKGS[*]} into $VENV (a few hundred MB)" >&2
if ! "$PY" -m pip install --disable-pip-version-check --no-input -q --only-binary=:all: \
  "${PKGS[@]}" >"$log" 2>&1; then
  cat "$log" >&2
  die "pip install ${PKGS[*]} failed (log above, also in $log)"
fi
have_pkgs || die "installed ${PKGS[*]} but ray.serve does not import from $PY"
echo "$PY"
