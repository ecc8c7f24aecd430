# Shared by scripts/otel_venv.sh and scripts/ray_venv.sh (sourced, not run):
# python3 and an empty-or-ours venv at $VENV whose python is $PY, installing python3 /
# python3-venv with apt-get when root. The caller sets TAG (message prefix), VENV, PY
# and VENV_VAR (the variable that moves the venv) and defines die().

# python3 is there, or installed.
need_python3() {
  command -v python3 >/dev/null 2>&1 && return 0
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "$TAG: installing python3 python3-venv" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends python3 python3-venv >/dev/null
  else
    die "python3 not found; install python3 and python3-venv (Debian: apt-get install python3-venv)"
  fi
}

# `python3 -m venv` needs the venv module with ensurepip and its wheels (on Debian:
# the python3-venv package; without it venv fails with "ensurepip is not available").
_make_venv() {
  if [ -f "$VENV/pyvenv.cfg" ]; then
    rm -rf "$VENV"  # a broken venv of ours: start over
  elif [ -e "$VENV" ] && [ -n "$(ls -A "$VENV")" ]; then
    die "$VENV exists and is not a venv; remove it or set $VENV_VAR"
  fi
  mkdir -p "$(dirname "$VENV")"
  python3 -m venv "$VENV" >"$1" 2>&1 && [ -x "$PY" ]
}

# $VENV exists with a working python.
need_venv() {
  [ -x "$PY" ] && return 0
  local vlog
  vlog="$(mktemp)"
  if ! _make_venv "$vlog"; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
      # Debian names it both python3-venv and after the minor version (python3.11-venv).
      local minor
      minor="$(python3 -c 'import sys; print(f"python3.{sys.version_info[1]}-venv")')"
      echo "$TAG: python3 -m venv failed; installing python3-venv" >&2
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq
      apt-get install -y -qq --no-install-recommends python3-venv >/dev/null 2>&1 \
        || apt-get install -y -qq --no-install-recommends "$minor" >/dev/null \
        || die "apt-get could not install python3-venv / $minor"
      _make_venv "$vlog" || { cat "$vlog" >&2; rm -f "$vlog"; die "python3 -m venv $VENV failed after installing python3-venv"; }
    else
      cat "$vlog" >&2
      rm -f "$vlog"
      die "python3 -m venv $VENV failed; install python3-venv (Debian: apt-get install python3-venv)"
    fi
  fi
  rm -f "$vlog"
}

# pip install "$@" into the venv, quietly; the log is shown when it fails.
pip_install() {
  local log="$VENV/pip-install.log"
  if ! "$PY" -m pip install --disable-pip-version-check --no-input -q "$@" >"$log" 2>&1; then
    cat "$log" >&2
    die "pip install $* failed (log above, also in $log)"
  fi
}
