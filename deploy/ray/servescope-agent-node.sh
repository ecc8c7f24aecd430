#!/usr/bin/env bash
# Install servescope-agent on this Ray node and start it (idempotent). Called from
# the Ray cluster YAML (deploy/ray/cluster.yaml): setup_commands runs `install`,
# head_start_ray_commands / worker_start_ray_commands run `start`.
#
#   servescope-agent-node.sh install   fetch the binary (URL or path), verify its sha256, install it
#   servescope-agent-node.sh start     start it: systemd where it runs (and we may), else nohup + pidfile
#   servescope-agent-node.sh stop      stop what `start` started
#   servescope-agent-node.sh status    exit 0 when it is running
#
# Settings (environment; Ray passes them through `export` lines in the YAML):
#   SERVESCOPE_AGENT_SRC      binary to install: https://…/servescope-agent, file://…, or a
#                             path on shared storage (EFS/FSx/NFS)            [required for install]
#   SERVESCOPE_AGENT_SHA256   its sha256 (64 hex); install refuses without a match [required]
#   SERVESCOPE_TOKEN_SRC      file holding the bearer token (Ray file_mounts copies it)
#                             [default: ~/servescope/agent.token]
#   SERVESCOPE_LISTEN         gRPC address          [default: 0.0.0.0:7733]
#   SERVESCOPE_METRICS_LISTEN /metrics address      [default: 0.0.0.0:9478]
#   SERVESCOPE_AGENT_ARGS     extra agent flags (e.g. --tls-cert … --tls-key …)
#   SERVESCOPE_HOME           where files go when not root / no systemd [default: ~/servescope]
#   SERVESCOPE_NO_SYSTEMD=1   never use systemd (containers, tests)
set -euo pipefail

AGENT=servescope-agent
UNIT=servescope-agent.service
HOME_DIR=${SERVESCOPE_HOME:-$HOME/servescope}
TOKEN_SRC=${SERVESCOPE_TOKEN_SRC:-$HOME/servescope/agent.token}
LISTEN=${SERVESCOPE_LISTEN:-0.0.0.0:7733}
METRICS_LISTEN=${SERVESCOPE_METRICS_LISTEN:-0.0.0.0:9478}
EXTRA_ARGS=${SERVESCOPE_AGENT_ARGS:-}

die() { printf 'servescope-agent-node: error: %s\n' "$*" >&2; exit 1; }
info() { printf 'servescope-agent-node: %s\n' "$*"; }

# root (or passwordless sudo) → system-wide install; otherwise everything under HOME_DIR.
SUDO=""
if [[ $(id -u) -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"; fi
fi
as_root() { [[ $(id -u) -eq 0 || -n $SUDO ]]; }
use_systemd() {
    [[ ${SERVESCOPE_NO_SYSTEMD:-0} != 1 ]] && as_root && command -v systemctl >/dev/null 2>&1 \
        && [[ -d /run/systemd/system ]]
}
if as_root && [[ ${SERVESCOPE_NO_SYSTEMD:-0} != 1 ]]; then
    BIN=/usr/local/bin/$AGENT
    ETC=/etc/servescope
else
    BIN=$HOME_DIR/bin/$AGENT
    ETC=$HOME_DIR/etc
fi
TOKEN=$ETC/token
PIDFILE=$HOME_DIR/run/$AGENT.pid
LOG=$HOME_DIR/log/$AGENT.log

sha256_of() { sha256sum -- "$1" | cut -d' ' -f1; }

fetch() { # SRC DEST
    local src=$1 dest=$2
    case $src in
        http://* | https://*)
            if command -v curl >/dev/null 2>&1; then
                curl -fsSL --retry 3 -o "$dest" -- "$src"
            elif command -v wget >/dev/null 2>&1; then
                wget -q -O "$dest" -- "$src"
            else
                die "neither curl nor wget to download $src"
            fi ;;
        file://*) cp -- "${src#file://}" "$dest" ;;
        *) cp -- "$src" "$dest" ;;
    esac
}

do_install() {
    local src=${SERVESCOPE_AGENT_SRC:-} want=${SERVESCOPE_AGENT_SHA256:-} tmp got
    [[ -n $src ]] || die "SERVESCOPE_AGENT_SRC is not set (URL or path of the servescope-agent binary)"
    [[ $want =~ ^[0-9a-fA-F]{64}$ ]] || die "SERVESCOPE_AGENT_SHA256 must be the binary's sha256 (64 hex digits)"
    if [[ -x $BIN && $(sha256_of "$BIN") == "${want,,}" ]]; then
        info "$BIN already at sha256 ${want,,}"
    else
        tmp=$(mktemp)
        trap 'rm -f "$tmp"' RETURN
        fetch "$src" "$tmp"
        got=$(sha256_of "$tmp")
        [[ $got == "${want,,}" ]] || die "checksum mismatch for $src: got $got, want ${want,,}"
        $SUDO install -d -m 0755 -- "$(dirname -- "$BIN")"
        $SUDO install -m 0755 -- "$tmp" "$BIN.new.$$"
        $SUDO mv -f -- "$BIN.new.$$" "$BIN"
        info "installed $BIN (sha256 $got)"
    fi
    [[ -s $TOKEN_SRC ]] || die "no token at $TOKEN_SRC (set SERVESCOPE_TOKEN_SRC; the YAML's file_mounts copies it)"
    $SUDO install -d -m 0700 -- "$ETC"
    $SUDO install -m 0600 -- "$TOKEN_SRC" "$TOKEN"
    info "token installed at $TOKEN (0600)"
}

agent_cmd() {
    # shellcheck disable=SC2086  # EXTRA_ARGS is a list of flags
    # /metrics without TLS takes the token in clear: an explicit choice here
    # (pass --tls-cert/--tls-key in SERVESCOPE_AGENT_ARGS to serve HTTPS instead).
    local plain=--metrics-allow-plaintext-token
    [[ " $EXTRA_ARGS " == *" --tls-cert "* ]] && plain=
    printf '%s ' "$BIN" --listen "$LISTEN" --metrics-listen "$METRICS_LISTEN" --token-file "$TOKEN" $plain $EXTRA_ARGS
}

running_pid() {
    [[ -r $PIDFILE ]] || return 1
    local pid
    pid=$(<"$PIDFILE")
    [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null \
        && [[ $(readlink -f "/proc/$pid/exe" 2>/dev/null) == "$(readlink -f "$BIN")" ]] && echo "$pid"
}

do_start() {
    [[ -x $BIN ]] || die "$BIN is not installed; run '$0 install' first (setup_commands)"
    [[ -s $TOKEN ]] || die "no token at $TOKEN; run '$0 install' first"
    if use_systemd; then
        local unit=/etc/systemd/system/$UNIT
        $SUDO tee "$unit.new" >/dev/null <<EOF
[Unit]
Description=servescope agent (installed by the Ray cluster setup)
Wants=network-online.target
After=network-online.target nvidia-persistenced.service

[Service]
Type=exec
ExecStart=$(agent_cmd)
Restart=on-failure
RestartSec=5s
User=root
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=read-only
PrivateTmp=yes
LimitNOFILE=65536

[Install]
WantedBy=multi-user.target
EOF
        $SUDO mv -f "$unit.new" "$unit"
        $SUDO systemctl daemon-reload
        $SUDO systemctl enable "$UNIT" >/dev/null 2>&1 || true
        $SUDO systemctl restart "$UNIT"
        info "started $UNIT (systemd)"
        return
    fi
    if pid=$(running_pid); then
        info "already running (pid $pid)"
        return
    fi
    mkdir -p -- "$(dirname -- "$PIDFILE")" "$(dirname -- "$LOG")"
    # shellcheck disable=SC2046  # word splitting of the command is intended
    nohup $(agent_cmd) >>"$LOG" 2>&1 </dev/null &
    echo $! >"$PIDFILE"
    sleep 1
    if pid=$(running_pid); then
        info "started (nohup, pid $pid, log $LOG)"
    else
        tail -n 20 -- "$LOG" >&2 || true
        die "the agent exited right away; see $LOG"
    fi
}

do_stop() {
    if use_systemd; then
        $SUDO systemctl stop "$UNIT" || true
        info "stopped $UNIT"
        return
    fi
    local pid
    if pid=$(running_pid); then
        kill -TERM "$pid"
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        info "stopped pid $pid"
    fi
    rm -f -- "$PIDFILE"
}

do_status() {
    if use_systemd; then
        $SUDO systemctl is-active --quiet "$UNIT"
    else
        running_pid >/dev/null
    fi
}

case ${1:-} in
    install) do_install ;;
    start) do_start ;;
    stop) do_stop ;;
    restart) do_stop; do_start ;;
    status) do_status ;;
    *) echo "usage: $0 install|start|stop|restart|status" >&2; exit 2 ;;
esac
