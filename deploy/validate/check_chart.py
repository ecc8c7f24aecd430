#!/usr/bin/env python3
"""Lint and render deploy/helm/servescope-agent with the real Helm engine, then
validate what it renders.

Helm: the `helm` CLI is not packaged by Debian, PyPI or npm, so this uses
helm-python-sdk (PyPI), whose wheel bundles libhelm_c, a C ABI over Helm's own Go
SDK (v4): `helm.lint` is `helm lint` (action.Lint) and `Chart.render` is the
engine behind `helm template` (client-side, `lookup` returns nothing), with
`api_versions` / `kube_version` as `--api-versions` / `--kube-version`.
Kubernetes schemas: kubernetes-validate (PyPI), the upstream OpenAPI-derived
JSON schemas of each Kubernetes release, strict mode (unknown fields rejected).
The ServiceMonitor is a CRD that kubernetes-validate has no schema for: it gets
the structural checks in check_service_monitor() below, and says so.

Usage: check_chart.py CHART_DIR OUT_DIR   (run with the deploy venv's python)
Writes OUT_DIR/<case>.yaml (rendered manifests) and OUT_DIR/<case>.args.json (the
agent container's args, for the Rust test that parses them with the agent's own
flag parser). Exit 1 on any failure.
"""

import json
import os
import sys

import helm_python as helm
import kubernetes_validate
import yaml

KUBE_VERSIONS = ["1.29.0", "1.33.0"]
MONITORING = ["monitoring.coreos.com/v1", "monitoring.coreos.com/v1/ServiceMonitor"]

failures = []


def fail(case, msg):
    failures.append(f"{case}: {msg}")
    print(f"  FAIL {msg}")


def ok(msg):
    print(f"  ok   {msg}")


def load_values(path):
    if not path:
        return None
    with open(path) as f:
        return yaml.safe_load(f) or {}


def render(chart, values, api_versions):
    opts = {"name": "servescope-agent", "namespace": "servescope", "is_install": True,
            "kube_version": "v" + KUBE_VERSIONS[-1]}
    if api_versions:
        opts["api_versions"] = api_versions
    from helm_python import _native
    raw = _native.call_string("helm_render", chart._raw(),
                              None if values is None else json.dumps(values), json.dumps(opts))
    return json.loads(raw)


def docs_of(manifests):
    out = []
    for path, text in sorted(manifests.items()):
        if path.endswith("NOTES.txt") or not text.strip():
            continue
        for d in yaml.safe_load_all(text):
            if d:
                out.append((path, d))
    return out


def check_service_monitor(case, sm, secret_name, key):
    # Structural checks of the prometheus-operator ServiceMonitor (not a schema).
    spec = sm.get("spec", {})
    eps = spec.get("endpoints") or []
    if sm.get("apiVersion") != "monitoring.coreos.com/v1":
        fail(case, "ServiceMonitor apiVersion")
    if not spec.get("selector", {}).get("matchLabels"):
        fail(case, "ServiceMonitor has no selector.matchLabels")
    if len(eps) != 1:
        return fail(case, "ServiceMonitor needs exactly one endpoint")
    ep = eps[0]
    allowed = {"port", "path", "scheme", "interval", "scrapeTimeout", "authorization",
               "relabelings", "metricRelabelings", "tlsConfig"}
    if set(ep) - allowed:
        fail(case, f"ServiceMonitor endpoint has unexpected keys {set(ep) - allowed}")
    if ep.get("port") != "metrics" or ep.get("path") != "/metrics":
        fail(case, "ServiceMonitor must scrape port 'metrics' path /metrics")
    auth = ep.get("authorization", {})
    cred = auth.get("credentials", {})
    if auth.get("type") != "Bearer" or cred.get("name") != secret_name or cred.get("key") != key:
        fail(case, f"ServiceMonitor authorization must be Bearer from {secret_name}/{key}: {auth}")
    else:
        ok(f"ServiceMonitor scrapes port metrics /metrics with Bearer {secret_name}/{key} (structural check)")


def check_case(chart_dir, out_dir, case, values_file, api_versions, expect_sm):
    print(f"== {case}: values={values_file or 'defaults'} api-versions={api_versions or '-'}")
    values = load_values(values_file)
    report = helm.lint(chart_dir, values, strict=True, namespace="servescope",
                       kube_version="v" + KUBE_VERSIONS[-1])
    sev = {0: "UNKNOWN", 1: "INFO", 2: "WARNING", 3: "ERROR"}
    for m in report.get("messages", []):
        print(f"  helm lint [{sev.get(m['severity'], m['severity'])}] {m['path']}: {m['error']}")
    bad = [m for m in report.get("messages", []) if m["severity"] >= 2] + report.get("errors", [])
    if bad:
        fail(case, f"helm lint --strict: {bad}")
    else:
        ok(f"helm lint --strict: {report.get('total_charts_linted')} chart(s) linted, no warnings/errors")

    with helm.Chart.load(chart_dir) as chart:
        chart.validate_schema(values)
        ok("values pass values.schema.json")
        manifests = render(chart, values, api_versions)
    docs = docs_of(manifests)
    with open(os.path.join(out_dir, f"{case}.yaml"), "w") as f:
        f.write("".join(f"---\n# Source: {p}\n{yaml.safe_dump(d, sort_keys=False)}" for p, d in docs))
    kinds = [d["kind"] for _, d in docs]
    ok(f"helm template rendered {len(docs)} objects: {', '.join(kinds)}")

    for kv in KUBE_VERSIONS:
        n = 0
        for path, d in docs:
            if d["apiVersion"].startswith("monitoring.coreos.com/"):
                continue
            try:
                kubernetes_validate.validate(d, kv, strict=True)
                n += 1
            except Exception as e:  # ValidationError, SchemaNotFoundError, ...
                fail(case, f"kubernetes-validate {kv} {d['kind']} ({path}): {e}")
        ok(f"kubernetes-validate --strict -k {kv}: {n} objects valid")

    by_kind = {}
    for _, d in docs:
        by_kind.setdefault(d["kind"], []).append(d)
    ds = by_kind.get("DaemonSet", [None])[0]
    if ds is None:
        return fail(case, "no DaemonSet rendered")
    pod = ds["spec"]["template"]["spec"]
    c = pod["containers"][0]
    args = c["args"]
    merged = chart_values(chart_dir, values)
    sysfs_mount = merged["sysfs"]["mountPath"]
    mounts = {m["name"]: m for m in c["volumeMounts"]}
    vols = {v["name"]: v for v in pod["volumes"]}
    checks = {
        "hostPID": pod.get("hostPID") is True,
        "/sys hostPath mounted read-only": vols["host-sys"]["hostPath"]["path"] == merged["sysfs"]["hostPath"]
        and mounts["host-sys"].get("readOnly") is True,
        "--sysfs-root points at the /sys mount": args[args.index("--sysfs-root") + 1] == sysfs_mount
        and mounts["host-sys"]["mountPath"] == sysfs_mount,
        "readOnlyRootFilesystem": c["securityContext"].get("readOnlyRootFilesystem") is True,
        "no privilege escalation (unless privileged)": c["securityContext"].get("privileged") is True
        or c["securityContext"].get("allowPrivilegeEscalation") is False,
        "GPU nodeSelector / tolerations from values": pod.get("nodeSelector") == (merged["nodeSelector"] or None)
        and pod.get("tolerations") == (merged["tolerations"] or None),
        "token from the Secret": vols["token"]["secret"]["secretName"]
        == (merged["token"]["existingSecret"] or by_kind["Secret"][0]["metadata"]["name"])
        and args[args.index("--token-file") + 1] == "/etc/servescope/token/token",
        "no API token mounted": pod.get("automountServiceAccountToken") is False,
    }
    if merged["kmsg"]["enabled"]:
        checks["SYSLOG added and /dev/kmsg mounted for kmsg"] = "SYSLOG" in c["securityContext"]["capabilities"]["add"] and "kmsg" in mounts
    else:
        checks["--no-kmsg without kmsg"] = "--no-kmsg" in args and "kmsg" not in mounts
    if merged["nvml"]["mode"] == "hostPath":
        lib = args[args.index("--nvml-lib") + 1]
        checks["--nvml-lib inside the host library mount"] = lib.startswith(mounts["nvidia-lib"]["mountPath"] + "/")
    if merged["nvml"]["mode"] == "runtime":
        checks["runtimeClassName for the NVIDIA runtime"] = pod.get("runtimeClassName") == merged["nvml"]["runtimeClassName"]
    if merged["service"]["enabled"]:
        svc = by_kind["Service"][0]
        checks["headless Service with grpc+metrics ports"] = svc["spec"]["clusterIP"] == "None" and sorted(
            p["name"] for p in svc["spec"]["ports"]) == ["grpc", "metrics"]
    if not merged["token"]["existingSecret"]:
        sec = by_kind.get("Secret", [{}])[0]
        checks["chart-made token Secret"] = bool(sec.get("data", {}).get(merged["token"]["key"]))
    else:
        checks["no Secret made with existingSecret"] = "Secret" not in by_kind
    for name, good in checks.items():
        ok(name) if good else fail(case, name)

    sms = by_kind.get("ServiceMonitor", [])
    if expect_sm and len(sms) != 1:
        fail(case, f"expected one ServiceMonitor, got {len(sms)}")
    if not expect_sm and sms:
        fail(case, "ServiceMonitor rendered although monitoring.coreos.com/v1 is not available or it is disabled")
    if not expect_sm:
        ok("no ServiceMonitor (API not available or disabled), as expected")
    for sm in sms:
        check_service_monitor(case, sm, vols["token"]["secret"]["secretName"], merged["token"]["key"])

    with open(os.path.join(out_dir, f"{case}.args.json"), "w") as f:
        json.dump({"args": args, "token_file": "/etc/servescope/token/token"}, f)


def chart_values(chart_dir, values):
    with helm.Chart.load(chart_dir) as chart:
        return chart.merge_values(values)


def check_schema_rejects(chart_dir):
    print("== values.schema.json rejects bad values")
    bad = [
        {"nvml": {"mode": "bogus"}},
        {"agent": {"grpcPort": 70000}},
        {"hostPID": "yes"},
        {"tokn": {"value": "x"}},
        {"serviceMonitor": {"interval": "fifteen"}},
        {"token": {"value": "has space"}},
    ]
    with helm.Chart.load(chart_dir) as chart:
        for v in bad:
            try:
                chart.validate_schema(v)
                fail("schema", f"accepted {v}")
            except helm.HelmError as e:
                ok(f"rejected {json.dumps(v)}: {' '.join(str(e).split())[:140]}")


def main():
    chart_dir, out_dir = sys.argv[1], sys.argv[2]
    os.makedirs(out_dir, exist_ok=True)
    print(f"helm engine: libhelm_c {helm.helm_c_version()} (Helm SDK {helm.helm_sdk_version()}); "
          f"kubernetes-validate {kubernetes_validate.__version__ if hasattr(kubernetes_validate, '__version__') else ''}")
    ci = os.path.join(chart_dir, "ci")
    cases = [
        ("default", None, None, False),
        ("default-monitoring", None, MONITORING, True),
        ("monitoring", os.path.join(ci, "monitoring-values.yaml"), MONITORING, True),
        ("hostpath", os.path.join(ci, "hostpath-values.yaml"), MONITORING, True),
        ("minimal", os.path.join(ci, "minimal-values.yaml"), MONITORING, False),
    ]
    for case, vf, api, sm in cases:
        try:
            check_case(chart_dir, out_dir, case, vf, api, sm)
        except Exception as e:  # a render/lint error is a failure of this case
            fail(case, f"{type(e).__name__}: {e}")
    check_schema_rejects(chart_dir)
    if failures:
        print(f"chart: {len(failures)} failure(s)")
        for f in failures:
            print(f"  - {f}")
        sys.exit(1)
    print("chart: all checks passed")


if __name__ == "__main__":
    main()
