#!/usr/bin/env bash
# Install (or remove) servescope-agent as a systemd service on this node.
#
#   sudo deploy/install.sh [--binary PATH] [--prefix /usr/local] [--no-enable]
#   sudo deploy/install.sh --uninstall [--purge] [--prefix /usr/local]
#
# Safe to run again: the binary and the unit are replaced, the token and
# /etc/servescope/agent.toml are created only when missing and never
# overwritten. Run with --help for all options.
set -euo pipefail

readonly UNIT_NAME=servescope-agent.service
readonly BIN_NAME=servescope-agent
readonly DEFAULT_PREFIX=/usr/local
# Binary path as written in the shipped unit file; rewritten for other prefixes.
readonly UNIT_DEFAULT_BIN=/usr/local/bin/servescope-agent

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd -- "$SCRIPT_DIR/.." && pwd)
readonly SCRIPT_DIR REPO_ROOT
readonly UNIT_SRC=$SCRIPT_DIR/systemd/servescope-agent.service
readonly CONFIG_SRC=$SCRIPT_DIR/systemd/agent.toml.example

usage() {
    cat <<EOF
Usage: install.sh [--binary PATH] [--prefix DIR] [--no-enable]
       install.sh --uninstall [--purge] [--prefix DIR]

Installs servescope-agent as the systemd service ${UNIT_NAME}. Must run as root.

  --binary PATH  agent binary to install. Default: the first that exists of
                 ./${BIN_NAME}, ${SCRIPT_DIR}/${BIN_NAME},
                 ${REPO_ROOT}/${BIN_NAME}, ${REPO_ROOT}/target/release/${BIN_NAME}
  --prefix DIR   install the binary as DIR/bin/${BIN_NAME} (default ${DEFAULT_PREFIX})
  --no-enable    install files and reload systemd, but do not enable or start
  --uninstall    stop and disable the service, remove the unit and the binary;
                 /etc/servescope (token, config) is kept
  --purge        with --uninstall: also delete /etc/servescope
  --root DIR     stage the files under DIR instead of / (for packaging or
                 testing); never touches systemd, root not required
  -h, --help     show this help

What it installs:
  PREFIX/bin/${BIN_NAME}                   (0755, replaced every run)
  /etc/servescope/                         (0750)
  /etc/servescope/token                    (0600, random, only if missing)
  /etc/servescope/agent.toml               (0640, from the example, only if missing)
  /etc/servescope/agent.toml.example       (0640, replaced every run)
  /etc/systemd/system/${UNIT_NAME}  (0644, replaced every run)
EOF
}

die() {
    printf 'install.sh: error: %s\n' "$*" >&2
    exit 1
}
info() { printf '==> %s\n' "$*"; }
note() { printf '    %s\n' "$*"; }

# ---------------------------------------------------------------- arguments
orig_args=("$@")
binary=""
prefix=$DEFAULT_PREFIX
enable=1
action=install
purge=0
root=""

need_arg() {
    [[ $# -ge 2 && -n $2 ]] || die "$1 needs a value (see --help)"
}

while [[ $# -gt 0 ]]; do
    case $1 in
        --binary) need_arg "$@"; binary=$2; shift 2 ;;
        --binary=*) binary=${1#*=}; shift ;;
        --prefix) need_arg "$@"; prefix=$2; shift 2 ;;
        --prefix=*) prefix=${1#*=}; shift ;;
        --root) need_arg "$@"; root=$2; shift 2 ;;
        --root=*) root=${1#*=}; shift ;;
        --no-enable) enable=0; shift ;;
        --uninstall) action=uninstall; shift ;;
        --purge) purge=1; shift ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
done

[[ $prefix == /* ]] || die "--prefix must be an absolute path (got '$prefix')"
[[ $prefix != *[[:space:]\|\\\&]* ]] || die "--prefix must not contain whitespace, '|', '\\' or '&'"
prefix=${prefix%/}
[[ -n $prefix ]] || prefix=/
if [[ $purge -eq 1 && $action != uninstall ]]; then
    die "--purge only makes sense with --uninstall"
fi
if [[ -n $root ]]; then
    [[ $root == /* ]] || die "--root must be an absolute path (got '$root')"
    root=${root%/}
    enable=0
fi

if [[ -z $root && $(id -u) -ne 0 ]]; then
    die "must be run as root (it writes ${prefix}/bin, /etc/servescope and /etc/systemd/system): try: sudo $0 ${orig_args[*]-}"
fi

readonly dest_bin="${prefix%/}/bin/${BIN_NAME}"
readonly conf_dir=/etc/servescope
readonly token_file=$conf_dir/token
readonly config_file=$conf_dir/agent.toml
readonly unit_file=/etc/systemd/system/$UNIT_NAME

# True when systemd is the running init (same test as sd_booted(3)) and we
# are installing into the live system.
systemd_running() {
    [[ -z $root ]] && command -v systemctl >/dev/null 2>&1 && [[ -d /run/systemd/system ]]
}

manual_start_cmd="${dest_bin} --config ${config_file} --token-file ${token_file}"

# ---------------------------------------------------------------- uninstall
do_uninstall() {
    if systemd_running; then
        if systemctl cat "$UNIT_NAME" >/dev/null 2>&1; then
            info "stopping and disabling $UNIT_NAME"
            systemctl disable --now "$UNIT_NAME" || true
        fi
    else
        if [[ -z $root ]]; then
            note "systemd is not running here: stop any agent you started by hand yourself"
        fi
    fi

    if [[ -e $root$unit_file ]]; then
        info "removing $root$unit_file"
        rm -f -- "$root$unit_file"
    fi
    if systemd_running; then
        systemctl daemon-reload
        systemctl reset-failed "$UNIT_NAME" >/dev/null 2>&1 || true
    fi

    if [[ -e $root$dest_bin ]]; then
        info "removing $root$dest_bin"
        rm -f -- "$root$dest_bin"
    fi

    if [[ -d $root$conf_dir ]]; then
        if [[ $purge -eq 1 ]]; then
            info "removing $root$conf_dir (token and config)"
            rm -rf -- "$root${conf_dir:?}"
        else
            info "kept $root$conf_dir (token and config); use --uninstall --purge to delete it"
        fi
    fi
    info "servescope-agent uninstalled"
}

# ---------------------------------------------------------------- install
find_binary() {
    if [[ -n $binary ]]; then
        [[ -f $binary ]] || die "--binary $binary: no such file"
        printf '%s\n' "$binary"
        return
    fi
    local c
    for c in "./$BIN_NAME" "$SCRIPT_DIR/$BIN_NAME" "$REPO_ROOT/$BIN_NAME" \
        "$REPO_ROOT/target/release/$BIN_NAME"; do
        if [[ -f $c ]]; then
            printf '%s\n' "$c"
            return
        fi
    done
    die "no $BIN_NAME binary found (looked in ./, $SCRIPT_DIR, $REPO_ROOT and $REPO_ROOT/target/release). Build it with 'cargo build --release -p servescope-agent' or pass --binary PATH"
}

install_binary() {
    local src=$1 dest=$root$dest_bin tmp
    install -d -m 0755 -- "$(dirname -- "$dest")"
    if [[ -e $dest && $src -ef $dest ]]; then
        info "binary $dest is the source itself; left as is"
        chmod 0755 -- "$dest"
        return
    fi
    if [[ -e $dest ]] && cmp -s -- "$src" "$dest"; then
        info "binary $dest unchanged"
        chmod 0755 -- "$dest"
        return
    fi
    # Copy beside the target, then rename: atomic, and works while the old
    # binary is running ("text file busy" otherwise).
    tmp="$dest.new.$$"
    install -m 0755 -- "$src" "$tmp"
    mv -f -- "$tmp" "$dest"
    binary_changed=1
    info "installed $src -> $dest"
}

install_token() {
    local t=$root$token_file tmp
    if [[ -s $t ]]; then
        chmod 0600 -- "$t"
        [[ -n $root ]] || chown root:root -- "$t"
        info "token $t exists; kept"
        return
    fi
    [[ ! -e $t ]] || note "token $t is empty; generating a new one"
    tmp="$t.new.$$"
    (
        umask 077
        head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$tmp"
    )
    [[ $(wc -c <"$tmp") -eq 64 ]] || {
        rm -f -- "$tmp"
        die "could not generate a token from /dev/urandom"
    }
    chmod 0600 -- "$tmp"
    mv -f -- "$tmp" "$t"
    info "created a random token in $t (0600)"
}

install_config() {
    local c=$root$config_file
    install -m 0640 -- "$CONFIG_SRC" "$root$conf_dir/agent.toml.example"
    if [[ -e $c ]]; then
        info "config $c exists; kept (see agent.toml.example beside it for new keys)"
    else
        install -m 0640 -- "$CONFIG_SRC" "$c"
        info "installed config $c"
    fi
}

install_unit() {
    local dest=$root$unit_file tmp
    install -d -m 0755 -- "$(dirname -- "$dest")"
    tmp="$dest.new.$$"
    sed "s|${UNIT_DEFAULT_BIN}|${dest_bin}|g" -- "$UNIT_SRC" >"$tmp"
    chmod 0644 -- "$tmp"
    if [[ -e $dest ]] && cmp -s -- "$tmp" "$dest"; then
        rm -f -- "$tmp"
        info "unit $dest unchanged"
    else
        mv -f -- "$tmp" "$dest"
        unit_changed=1
        info "installed unit $dest"
    fi
}

# The gRPC port from the config, for the usage hint (7733 if not found).
agent_port() {
    local listen=""
    if [[ -r $root$config_file ]]; then
        listen=$(sed -n 's/^[[:space:]]*listen[[:space:]]*=[[:space:]]*"\([^"]*\)".*/\1/p' \
            -- "$root$config_file" | head -n 1)
    fi
    if [[ $listen == *:* && ${listen##*:} =~ ^[0-9]+$ ]]; then
        printf '%s\n' "${listen##*:}"
    else
        printf '7733\n'
    fi
}

start_service() {
    if ! systemd_running; then
        if [[ -n $root ]]; then
            info "staged under $root; systemd not touched"
        else
            info "systemd is not running on this machine (or systemctl is missing); start the agent by hand:"
            note "$manual_start_cmd"
        fi
        return
    fi

    info "systemctl daemon-reload"
    systemctl daemon-reload

    local was_active=0
    systemctl is-active --quiet "$UNIT_NAME" && was_active=1

    if [[ $enable -eq 0 ]]; then
        info "not enabling (--no-enable). To start it now and at boot:"
        note "systemctl enable --now $UNIT_NAME"
        if [[ $was_active -eq 1 && $((binary_changed + unit_changed)) -gt 0 ]]; then
            note "it is running an older version; to switch: systemctl restart $UNIT_NAME"
        fi
        return
    fi

    info "systemctl enable --now $UNIT_NAME"
    systemctl enable --now "$UNIT_NAME"
    if [[ $was_active -eq 1 && $((binary_changed + unit_changed)) -gt 0 ]]; then
        info "restarting $UNIT_NAME to pick up the new binary/unit"
        systemctl restart "$UNIT_NAME"
    fi

    sleep 2
    if systemctl is-active --quiet "$UNIT_NAME"; then
        info "$UNIT_NAME is running"
    else
        printf 'install.sh: warning: %s is not running; see: journalctl -u %s -n 50\n' \
            "$UNIT_NAME" "$UNIT_NAME" >&2
        systemctl --no-pager --lines=20 status "$UNIT_NAME" >&2 || true
    fi
}

print_usage_hint() {
    local host port
    host=$(hostname -f 2>/dev/null || hostname 2>/dev/null || echo HOST)
    [[ -n $host ]] || host=HOST
    port=$(agent_port)
    cat <<EOF

servescope-agent: gRPC on port ${port}, Prometheus metrics on port 9478 (/metrics).
Auth token:  ${token_file}  (root only; every client off this host must present it)

Use it from this node:
    servescope nodes --agent ${host}:${port} --token-file ${token_file}
From another machine, copy the token there first (keep it mode 0600), e.g.
    scp root@${host}:${token_file} ./${host}.token && chmod 600 ./${host}.token
    servescope nodes --agent ${host}:${port} --token-file ./${host}.token
The token travels in clear text unless TLS is on: set tls_cert/tls_key in
${config_file} (or pass --tls-cert/--tls-key) on untrusted networks.
EOF
}

do_install() {
    [[ -f $UNIT_SRC ]] || die "missing $UNIT_SRC (run install.sh from the servescope deploy/ directory)"
    [[ -f $CONFIG_SRC ]] || die "missing $CONFIG_SRC (run install.sh from the servescope deploy/ directory)"

    local src
    src=$(find_binary)
    binary_changed=0
    unit_changed=0

    install_binary "$src"
    install -d -m 0750 -- "$root$conf_dir"
    chmod 0750 -- "$root$conf_dir"
    install_token
    install_config
    install_unit
    start_service
    print_usage_hint
}

case $action in
    install) do_install ;;
    uninstall) do_uninstall ;;
esac
