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

TAG=ray_venv
VENV_VAR=SERVESCOPE_RAY_VENV
# shellcheck source=scripts/lib/venv.sh
. "$ROOT/scripts/lib/venv.sh"
need_python3
# Ray publishes wheels for CPython 3.10-3.13 only (no sdist that builds here).
python3 -c 'import sys; sys.exit(0 if (3, 10) <= sys.version_info[:2] <= (3, 13) else 1)' \
  || die "ray $RAY_VERSION needs CPython 3.10-3.13; python3 is $(python3 -V 2>&1)"

need_venv
# --only-binary: never try to build Ray or a dependency from source on this box.
echo "ray_venv: pip install ${PKGS[*]} into $VENV (a few hundred MB)" >&2
pip_install --only-binary=:all: "${PKGS[@]}"
have_pkgs || die "installed ${PKGS[*]} but ray.serve does not import from $PY"
echo "$PY"
