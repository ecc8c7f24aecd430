#!/usr/bin/env bash
# A Python venv with the real NIXL wheel (PyPI nixl-cu13, which bundles its own UCX),
# for host-memory NIXL runs on a machine without a GPU: bench/nixl_ref.py and
# fabric/py/test_nixl_driver.py. No torch: host buffers are numpy arrays.
# Idempotent: pip runs only when the pinned versions are not there.
#
#   SERVESCOPE_NIXL_VENV  where the venv lives (default: target/nixl-venv, git-ignored)
#
# The last line printed is the venv's python; use it as SERVESCOPE_NIXL_PYTHON.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${SERVESCOPE_NIXL_VENV:-$ROOT/target/nixl-venv}"
NIXL_VERSION=1.5.1
NUMPY_VERSION=2.2.6
PKGS=("nixl-cu13==$NIXL_VERSION" "numpy==$NUMPY_VERSION")
PY="$VENV/bin/python"

die() { echo "nixl_venv: $*" >&2; exit 1; }

# The pinned packages are importable at the pinned versions.
have_pkgs() {
  [ -x "$PY" ] || return 1
  "$PY" - "$NIXL_VERSION" "$NUMPY_VERSION" <<'PYEOF' >/dev/null 2>&1
import sys
from importlib.metadata import version
assert version("nixl-cu13") == sys.argv[1], "nixl-cu13"
assert version("numpy") == sys.argv[2], "numpy"
import numpy  # noqa: F401
from nixl_cu13 import nixl_agent, nixl_agent_config  # noqa: F401
PYEOF
}

if have_pkgs; then
  echo "$PY"
  exit 0
fi

TAG=nixl_venv
VENV_VAR=SERVESCOPE_NIXL_VENV
# shellcheck source=scripts/lib/venv.sh
. "$ROOT/scripts/lib/venv.sh"
need_python3
need_venv
# nixl-cu13 declares torch and numpy as dependencies, but imports torch only when the
# caller already has (tensors as descriptors): --no-deps keeps torch (GBs) out.
pip_install --no-deps "nixl-cu13==$NIXL_VERSION"
pip_install "numpy==$NUMPY_VERSION"
have_pkgs || die "installed ${PKGS[*]} but they do not import from $PY"
echo "$PY"
