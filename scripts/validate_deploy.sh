#!/usr/bin/env bash
# Validates the deploy/ kit with real tools and says what each step checked.
#
#   scripts/validate_deploy.sh [--agent-bin PATH] [--out DIR] [--only STEP ...]
#
# Steps (all by default):
#   helm      deploy/helm/servescope-agent: `helm lint --strict` and `helm template`
#             (5 value sets, with/without --api-versions monitoring.coreos.com/v1)
#             through the Helm v4 Go SDK bundled in helm-python-sdk (PyPI: the helm
#             CLI itself is not packaged by Debian/PyPI/npm), then every rendered core
#             object through kubernetes-validate --strict (Kubernetes 1.29 and 1.33
#             schemas); ServiceMonitor: structural checks only (a CRD).
#   k8s       deploy/kubernetes/*.yaml through kubernetes-validate --strict.
#   systemd   deploy/install.sh --root stages binary, token, config and unit into a
#             temporary root (with a copy of the host's /lib/systemd/system), then
#             `systemd-analyze verify --root=…` the unit; any output counts as failure
#             (verify exits 0 on unknown keys and bad values, it only prints them).
#   ray       deploy/ray/cluster.yaml against Ray's own ray-schema.json (when a python
#             with `ray` is at $SERVESCOPE_RAY_PYTHON or target/ray-venv), bash -n on
#             the node script, and the node script run for real: install from a path
#             with sha256 verification (and a refused bad checksum), start with nohup
#             + pidfile on loopback ports, /metrics answered with the token, stop.
#   grafana   deploy/grafana/servescope-agent.json parses, every expression parses as
#             PromQL (`promtool check rules`); the names are checked against the
#             agent's exposition by cli/tests/deploy_kit.rs.
#
# Tools: python3 (venv target/deploy-venv with pinned helm-python-sdk and
# kubernetes-validate from PyPI, created here), systemd-analyze, promtool.
# A missing tool fails its step unless SERVESCOPE_DEPLOY_ALLOW_SKIP=1 (then it is
# reported as SKIPPED with the reason). Exit 0 only when every step ran and passed.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

HELM_SDK_VERSION=0.2.2
KUBE_VALIDATE_VERSION=1.37.0
PYYAML_VERSION=6.0.2
VENV="${SERVESCOPE_DEPLOY_VENV:-$ROOT/target/deploy-venv}"
OUT=""
AGENT_BIN=""
STEPS=()
while [[ $# -gt 0 ]]; do
    case $1 in
        --agent-bin) AGENT_BIN=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        --only) shift; while [[ $# -gt 0 && $1 != --* ]]; do STEPS+=("$1"); shift; done ;;
        -h | --help) sed -n '2,35p' "$0"; exit 0 ;;
        *) echo "validate_deploy: unknown argument $1" >&2; exit 2 ;;
    esac
done
[[ ${#STEPS[@]} -gt 0 ]] || STEPS=(helm k8s systemd ray grafana)
[[ -n $OUT ]] || OUT=$(mktemp -d)
mkdir -p "$OUT"
TMP=$(mktemp -d)
cleanup() {
    if [[ -n ${NODE_SCRIPT_HOME:-} && -x $ROOT/deploy/ray/servescope-agent-node.sh ]]; then
        SERVESCOPE_HOME=$NODE_SCRIPT_HOME SERVESCOPE_NO_SYSTEMD=1 \
            bash "$ROOT/deploy/ray/servescope-agent-node.sh" stop >/dev/null 2>&1 || true
    fi
    rm -rf -- "$TMP"
}
trap cleanup EXIT

passed=(); failed=(); skipped=()
step() { printf '\n==== %s: %s\n' "$1" "$2"; }
pass() { passed+=("$1"); printf '==== %s: PASS\n' "$1"; }
fail() { failed+=("$1"); printf '==== %s: FAIL: %s\n' "$1" "$2"; }
skip() {
    if [[ ${SERVESCOPE_DEPLOY_ALLOW_SKIP:-0} == 1 ]]; then
        skipped+=("$1 ($2)"); printf '==== %s: SKIPPED: %s\n' "$1" "$2"
    else
        fail "$1" "$2 (set SERVESCOPE_DEPLOY_ALLOW_SKIP=1 to skip)"
    fi
}
want() { local s; for s in "${STEPS[@]}"; do [[ $s == "$1" ]] && return 0; done; return 1; }

# ------------------------------------------------------------------ python venv
PY=""
venv_ok() {
    [[ -x $VENV/bin/python ]] && "$VENV/bin/python" - "$HELM_SDK_VERSION" "$KUBE_VALIDATE_VERSION" <<'EOF' >/dev/null 2>&1
import sys
from importlib.metadata import version
assert version("helm-python-sdk") == sys.argv[1]
assert version("kubernetes-validate") == sys.argv[2]
import helm_python, kubernetes_validate, yaml, jsonschema  # noqa: F401
helm_python.helm_sdk_version()
EOF
}
ensure_venv() {
    [[ -n $PY ]] && return 0
    if ! venv_ok; then
        command -v python3 >/dev/null 2>&1 || return 1
        echo "creating $VENV (helm-python-sdk==$HELM_SDK_VERSION kubernetes-validate==$KUBE_VALIDATE_VERSION)"
        rm -rf -- "$VENV"
        python3 -m venv "$VENV" || return 1
        "$VENV/bin/pip" install -q --disable-pip-version-check \
            "helm-python-sdk==$HELM_SDK_VERSION" "kubernetes-validate==$KUBE_VALIDATE_VERSION" \
            "pyyaml==$PYYAML_VERSION" jsonschema || return 1
        venv_ok || return 1
    fi
    PY=$VENV/bin/python
}

# ------------------------------------------------------------------ helm
if want helm; then
    step helm "helm lint --strict + helm template (Helm SDK in helm-python-sdk) + kubernetes-validate --strict"
    if ensure_venv; then
        if "$PY" deploy/validate/check_chart.py deploy/helm/servescope-agent "$OUT/helm"; then
            pass helm
        else
            fail helm "chart checks failed (see above)"
        fi
    else
        skip helm "cannot create the deploy venv (python3 -m venv / pip install from PyPI failed)"
    fi
fi

# ------------------------------------------------------------------ static manifests
if want k8s; then
    step k8s "kubernetes-validate --strict on deploy/kubernetes/*.yaml"
    if ensure_venv; then
        ok=1
        for f in deploy/kubernetes/*.yaml; do
            for kv in 1.29.0 1.33.0; do
                if "$VENV/bin/kubernetes-validate" --strict -k "$kv" "$f"; then :; else ok=0; fi
            done
        done
        [[ $ok -eq 1 ]] && pass k8s || fail k8s "kubernetes-validate reported errors"
    else
        skip k8s "cannot create the deploy venv"
    fi
fi

# ------------------------------------------------------------------ systemd
find_agent() {
    if [[ -n $AGENT_BIN ]]; then echo "$AGENT_BIN"; return; fi
    # The newer of the release and debug builds (a stale one may lack current flags).
    local c
    c=$(ls -t target/release/servescope-agent target/debug/servescope-agent 2>/dev/null | head -n 1 || true)
    [[ -n $c && -x $c ]] && { echo "$ROOT/$c"; return; }
    cargo build -q -p servescope-agent --bin servescope-agent >&2 && echo "$ROOT/target/debug/servescope-agent"
}
if want systemd || want ray; then
    AGENT_BIN=$(find_agent) || AGENT_BIN=""
fi
if want systemd; then
    step systemd "install.sh --root + systemd-analyze verify --root on the staged unit"
    if ! command -v systemd-analyze >/dev/null 2>&1; then
        skip systemd "systemd-analyze not found (Debian: systemd)"
    elif [[ -z $AGENT_BIN ]]; then
        fail systemd "no servescope-agent binary (cargo build failed)"
    else
        sroot=$TMP/sysroot
        bash deploy/install.sh --root "$sroot" --binary "$AGENT_BIN" >/dev/null
        mkdir -p "$sroot/usr/lib/systemd"
        unitdir=/lib/systemd/system
        [[ -d $unitdir ]] || unitdir=/usr/lib/systemd/system
        cp -a "$unitdir" "$sroot/usr/lib/systemd/"
        set +e
        verify_out=$(systemd-analyze verify --root="$sroot" /etc/systemd/system/servescope-agent.service 2>&1)
        rc=$?
        set -e
        echo "systemd-analyze verify --root=$sroot /etc/systemd/system/servescope-agent.service: rc=$rc"
        [[ -n $verify_out ]] && printf '%s\n' "$verify_out"
        # A broken unit must be caught: the same verify on a copy with a bad key.
        sed 's/^Restart=on-failure/Restart=on-failure\nRestartt=always/' \
            "$sroot/etc/systemd/system/servescope-agent.service" > "$TMP/bad.service"
        cp "$TMP/bad.service" "$sroot/etc/systemd/system/servescope-agent-bad.service"
        bad_out=$(systemd-analyze verify --root="$sroot" /etc/systemd/system/servescope-agent-bad.service 2>&1 || true)
        rm -f "$sroot/etc/systemd/system/servescope-agent-bad.service"
        if [[ $rc -ne 0 || -n $verify_out ]]; then
            fail systemd "systemd-analyze verify reported problems"
        elif [[ $bad_out != *"Unknown key"* ]]; then
            fail systemd "control: verify did not flag an unknown key ($bad_out)"
        else
            echo "control: a copy with an unknown key is flagged: ${bad_out##*/}"
            # The agent accepts the unit's ExecStart flags and the installed config.
            if "$AGENT_BIN" --help | grep -q -- '--token-file' \
                && grep -q '^ExecStart=/usr/local/bin/servescope-agent --config /etc/servescope/agent.toml --token-file /etc/servescope/token' \
                    "$sroot/etc/systemd/system/servescope-agent.service"; then
                pass systemd
            else
                fail systemd "ExecStart does not match the installed layout"
            fi
        fi
    fi
fi

# ------------------------------------------------------------------ ray
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
if want ray; then
    step ray "cluster.yaml against ray-schema.json, node script install/start/stop for real"
    ok=1
    bash -n deploy/ray/servescope-agent-node.sh || ok=0
    if command -v shellcheck >/dev/null 2>&1; then
        shellcheck -S warning deploy/ray/servescope-agent-node.sh scripts/release.sh scripts/validate_deploy.sh || ok=0
    fi
    RAY_PY=${SERVESCOPE_RAY_PYTHON:-$ROOT/target/ray-venv/bin/python}
    if [[ -x $RAY_PY ]] && "$RAY_PY" -c 'import ray' 2>/dev/null; then
        "$RAY_PY" - deploy/ray/cluster.yaml <<'EOF' || ok=0
import json, os, sys, yaml, jsonschema, ray
schema = json.load(open(os.path.join(os.path.dirname(ray.__file__), "autoscaler", "ray-schema.json")))
cfg = yaml.safe_load(open(sys.argv[1]))
jsonschema.validate(cfg, schema)
for k in ("setup_commands", "head_start_ray_commands", "worker_start_ray_commands"):
    assert any("servescope-agent-node.sh" in c for c in cfg[k]), k
print(f"ray {ray.__version__}: {sys.argv[1]} valid against ray/autoscaler/ray-schema.json")
EOF
    else
        if [[ ${SERVESCOPE_DEPLOY_ALLOW_SKIP:-0} == 1 ]]; then
            echo "ray-schema.json check SKIPPED: no python with ray at $RAY_PY (scripts/ray_venv.sh makes one)"
            skipped+=("ray schema (no ray python)")
        else
            echo "no python with ray at $RAY_PY for the ray-schema.json check"; ok=0
        fi
    fi
    if [[ -z $AGENT_BIN ]]; then
        echo "no agent binary"; ok=0
    else
        NODE_SCRIPT_HOME=$TMP/rayhome
        mkdir -p "$NODE_SCRIPT_HOME"
        token=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
        printf '%s\n' "$token" > "$TMP/agent.token"
        sum=$(sha256sum "$AGENT_BIN" | cut -d' ' -f1)
        gport=$(free_port); mport=$(free_port)
        export SERVESCOPE_HOME=$NODE_SCRIPT_HOME SERVESCOPE_NO_SYSTEMD=1 SERVESCOPE_TOKEN_SRC=$TMP/agent.token \
            SERVESCOPE_AGENT_SRC=$AGENT_BIN SERVESCOPE_LISTEN=127.0.0.1:$gport \
            SERVESCOPE_METRICS_LISTEN=127.0.0.1:$mport SERVESCOPE_AGENT_ARGS="--no-kmsg"
        if SERVESCOPE_AGENT_SHA256=$(printf '0%.0s' {1..64}) bash deploy/ray/servescope-agent-node.sh install 2>"$TMP/badsum"; then
            echo "install accepted a wrong checksum"; ok=0
        else
            echo "install with a wrong checksum refused: $(cat "$TMP/badsum")"
        fi
        if SERVESCOPE_AGENT_SHA256=$sum bash deploy/ray/servescope-agent-node.sh install \
            && bash deploy/ray/servescope-agent-node.sh start; then
            got=""
            for _ in $(seq 50); do
                got=$(curl -fsS -H "authorization: Bearer $token" "http://127.0.0.1:$mport/metrics" 2>/dev/null | grep -c '^servescope_' || true)
                [[ ${got:-0} -gt 0 ]] && break
                sleep 0.2
            done
            noauth=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$mport/metrics" || true)
            echo "agent started by the node script: /metrics with token -> $got servescope_ samples; without token -> HTTP $noauth"
            [[ ${got:-0} -gt 0 && $noauth == 401 ]] || ok=0
            bash deploy/ray/servescope-agent-node.sh start   # idempotent: says already running
            bash deploy/ray/servescope-agent-node.sh stop
            if bash deploy/ray/servescope-agent-node.sh status; then echo "still running after stop"; ok=0; fi
        else
            ok=0
        fi
        unset SERVESCOPE_HOME SERVESCOPE_NO_SYSTEMD SERVESCOPE_TOKEN_SRC SERVESCOPE_AGENT_SRC \
            SERVESCOPE_LISTEN SERVESCOPE_METRICS_LISTEN SERVESCOPE_AGENT_ARGS
    fi
    [[ $ok -eq 1 ]] && pass ray || fail ray "see above"
fi

# ------------------------------------------------------------------ grafana
if want grafana; then
    step grafana "dashboard JSON parses; every expr parses as PromQL (promtool check rules)"
    dash=deploy/grafana/servescope-agent.json
    if ! command -v promtool >/dev/null 2>&1; then
        skip grafana "promtool not found (Debian: prometheus)"
    else
        python3 - "$dash" "$TMP/dash-rules.yml" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
exprs = []
def walk(p):
    for t in p.get("targets", []):
        exprs.append(t["expr"])
    for q in p.get("panels", []):
        walk(q)
for p in d["panels"]:
    walk(p)
assert {v["name"] for v in d["templating"]["list"]} >= {"datasource", "node"}
with open(sys.argv[2], "w") as f:
    f.write("groups:\n  - name: dashboard\n    rules:\n")
    for i, e in enumerate(exprs):
        e = e.replace("$__rate_interval", "1m").replace("$node", ".+")
        f.write(f"      - record: servescope:dashboard_expr_{i}\n        expr: {json.dumps(e)}\n")
print(f"{sys.argv[1]}: valid JSON, {len(d['panels'])} panels, {len(exprs)} expressions")
EOF
        if promtool check rules "$TMP/dash-rules.yml"; then pass grafana; else fail grafana "promtool rejected an expression"; fi
    fi
fi

printf '\nvalidate_deploy: %d passed (%s), %d failed (%s), %d skipped (%s)\n' \
    "${#passed[@]}" "${passed[*]-}" "${#failed[@]}" "${failed[*]-}" "${#skipped[@]}" "${skipped[*]-}"
echo "rendered manifests: $OUT/helm"
[[ ${#failed[@]} -eq 0 ]]
