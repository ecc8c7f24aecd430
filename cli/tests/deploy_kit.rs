//! The deploy/ kit: `scripts/validate_deploy.sh` (Helm chart through the Helm SDK and
//! kubernetes-validate, the static manifests, `systemd-analyze verify`, the Ray node
//! script run for real, PromQL of the dashboard), the chart's agent command lines
//! through the agent's own flag parser, and the Grafana dashboard's metric and label
//! names against what the agent really exposes.
//!
//! A missing tool is a printed skip only while SERVESCOPE_REQUIRE_DEPLOY_TOOLS is
//! unset; scripts/test.sh sets it.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;

use clap::Parser;
use servescope_agent::config::AgentArgs;
use servescope_agent::exposition::example_output;
use servescope_agent::AgentConfig;
use servescope_proto::catalog;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn required() -> bool {
    std::env::var_os("SERVESCOPE_REQUIRE_DEPLOY_TOOLS").is_some()
}

#[test]
fn validate_deploy_script() {
    let out = tempfile::tempdir().unwrap();
    let mut cmd = Command::new("bash");
    cmd.arg(root().join("scripts/validate_deploy.sh"))
        .arg("--out")
        .arg(out.path())
        .current_dir(root());
    if !required() {
        // Without the requirement a missing tool is reported as SKIPPED by the script.
        cmd.env("SERVESCOPE_DEPLOY_ALLOW_SKIP", "1");
    }
    let o = cmd.output().expect("run bash scripts/validate_deploy.sh");
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(o.status.success(), "validate_deploy.sh failed");
    let summary = stdout
        .lines()
        .rfind(|l| l.starts_with("validate_deploy: "))
        .expect("summary line");
    if summary.contains(" 0 skipped") {
        assert!(summary.contains("5 passed"), "{summary}");
    } else {
        assert!(!required(), "steps skipped although required: {summary}");
        println!("deploy_kit: SKIPPED parts (tool unavailable): {summary}");
    }

    // Every rendered agent command line is one the agent accepts.
    let helm = out.path().join("helm");
    let mut cases = 0;
    if let Ok(rd) = std::fs::read_dir(&helm) {
        let tok_dir = tempfile::tempdir().unwrap();
        let tok = tok_dir.path().join("token");
        std::fs::write(&tok, "0123456789abcdef\n").unwrap();
        std::fs::set_permissions(&tok, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        for e in rd.flatten() {
            let p = e.path();
            if !p.to_string_lossy().ends_with(".args.json") {
                continue;
            }
            let v: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
            let token_in_pod = v["token_file"].as_str().unwrap();
            let mut argv = vec!["servescope-agent".to_string()];
            for a in v["args"].as_array().unwrap() {
                let a = a.as_str().unwrap();
                // The pod's token path does not exist here; TLS files neither.
                argv.push(if a == token_in_pod {
                    tok.to_string_lossy().into_owned()
                } else {
                    a.to_string()
                });
            }
            let args = AgentArgs::try_parse_from(&argv)
                .unwrap_or_else(|e| panic!("{}: agent rejects the chart's args: {e}", p.display()));
            let tls = args.tls_cert.is_some();
            match AgentConfig::from_args(&args) {
                Ok(cfg) => {
                    assert!(!tls);
                    assert_eq!(cfg.sysfs_root, PathBuf::from("/host/sys"));
                    assert!(cfg.token.is_some());
                    assert_eq!(cfg.listen.port(), 7733);
                    assert_eq!(cfg.metrics_listen.map(|a| a.port()), Some(9478));
                }
                // Only the TLS files (mounted from a Secret in the pod) may be missing.
                Err(e) => assert!(tls, "{}: {e}", p.display()),
            }
            cases += 1;
        }
    }
    if summary.contains("helm") && summary.contains("passed (helm") {
        assert_eq!(cases, 5, "rendered args of the 5 value sets");
    }
}

/// `servescope_[a-z0-9_]+` names in a string.
fn metric_names(s: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let b = s.as_bytes();
    let mut i = 0;
    while let Some(k) = s[i..].find("servescope_") {
        let start = i + k;
        let prev_ok = start == 0 || !(b[start - 1].is_ascii_alphanumeric() || b[start - 1] == b'_');
        let mut end = start;
        while end < b.len() && (b[end].is_ascii_alphanumeric() || b[end] == b'_') {
            end += 1;
        }
        if prev_ok {
            out.insert(s[start..end].to_string());
        }
        i = end;
    }
    out
}

/// Label names used by an expression (`{a="x",b=~"y"}`, `by (a, b)`) or a legend (`{{a}}`).
fn label_names(expr: &str, legend: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let ident = |s: &str| -> String {
        s.trim()
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut rest = expr;
    while let Some(open) = rest.find('{') {
        let close = rest[open..]
            .find('}')
            .map(|c| open + c)
            .unwrap_or(rest.len());
        for m in rest[open + 1..close].split(',') {
            let n = ident(m);
            if !n.is_empty() {
                out.insert(n);
            }
        }
        rest = &rest[close.min(rest.len())..];
        if rest.is_empty() {
            break;
        }
        rest = &rest[1..];
    }
    for kw in ["by (", "by(", "without (", "without("] {
        let mut r = expr;
        while let Some(k) = r.find(kw) {
            let after = &r[k + kw.len()..];
            let end = after.find(')').unwrap_or(after.len());
            for n in after[..end].split(',') {
                out.insert(ident(n));
            }
            r = &after[end..];
        }
    }
    let mut r = legend;
    while let Some(k) = r.find("{{") {
        let after = &r[k + 2..];
        let end = after.find("}}").unwrap_or(after.len());
        out.insert(ident(after[..end].trim()));
        r = &after[end..];
    }
    out.remove("");
    out
}

/// Family names and label names of a Prometheus text page.
fn exposition_names(text: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut fams = BTreeSet::new();
    let mut labels = BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            fams.insert(rest.split(' ').next().unwrap().to_string());
        } else if !line.starts_with('#') && !line.is_empty() {
            if let Some(open) = line.find('{') {
                // Label values may contain commas; only take `name="` positions.
                let body = &line[open + 1..];
                let mut in_val = false;
                let mut esc = false;
                let mut cur = String::new();
                for c in body.chars() {
                    if in_val {
                        if esc {
                            esc = false;
                        } else if c == '\\' {
                            esc = true;
                        } else if c == '"' {
                            in_val = false;
                        }
                    } else if c == '"' {
                        in_val = true;
                        labels.insert(cur.trim_end_matches('=').to_string());
                        cur.clear();
                    } else if c == '}' {
                        break;
                    } else if c != ',' {
                        cur.push(c);
                    }
                }
            }
        }
    }
    (fams, labels)
}

fn scrape(addr: std::net::SocketAddr, token: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    assert!(
        text.starts_with("HTTP/1.1 200"),
        "{}",
        &text[..text.len().min(200)]
    );
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_names_exist_in_agent_exposition() {
    let dash: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("deploy/grafana/servescope-agent.json")).unwrap(),
    )
    .expect("dashboard is valid JSON");
    let vars: BTreeSet<&str> = dash["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert!(
        vars.contains("datasource") && vars.contains("node"),
        "{vars:?}"
    );

    let mut exprs = Vec::new();
    fn walk(p: &serde_json::Value, out: &mut Vec<(String, String)>) {
        for t in p["targets"].as_array().into_iter().flatten() {
            out.push((
                t["expr"].as_str().unwrap().to_string(),
                t["legendFormat"].as_str().unwrap_or("").to_string(),
            ));
        }
        for q in p["panels"].as_array().into_iter().flatten() {
            walk(q, out);
        }
    }
    for p in dash["panels"].as_array().unwrap() {
        walk(p, &mut exprs);
    }
    for v in dash["templating"]["list"].as_array().unwrap() {
        if let Some(q) = v["definition"].as_str() {
            exprs.push((q.to_string(), String::new()));
        }
    }
    assert!(exprs.len() > 20, "{} expressions", exprs.len());

    // What the agent exposes: the fixed families, the renderer on a p5-like node
    // (GPUs, EFA and mlx5 counters), and a real agent on loopback over the p5 sysfs
    // fixture (32 EFA devices), scraped over HTTP with its token.
    let mut known: BTreeSet<String> = catalog::families().map(|d| d.name.to_string()).collect();
    let (fams, mut labels) = exposition_names(&example_output());
    known.extend(fams);

    let sys = tempfile::tempdir().unwrap();
    servescope_agent::collect::rdma::fixture::write_p5_tree(
        sys.path(),
        &servescope_agent::collect::rdma::fixture::P5FixtureOptions::default(),
    )
    .unwrap();
    let token = "deploy-kit-test-token".to_string();
    let mut cfg = AgentConfig::loopback(Some(token.clone()));
    cfg.sysfs_root = sys.path().to_path_buf();
    cfg.kmsg = false;
    cfg.startup_watch = false;
    cfg.rdma_interval = std::time::Duration::from_millis(100);
    let agent = servescope_agent::start(cfg).await.expect("agent starts");
    let addr = agent.metrics_addr.expect("metrics listener");
    let mut live = String::new();
    for _ in 0..50 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        live = tokio::task::spawn_blocking(move || scrape(addr, "deploy-kit-test-token"))
            .await
            .unwrap();
        if live.contains("servescope_rdma_port_tx_bytes_total")
            && live.contains("servescope_agent_cpu_seconds_total")
        {
            break;
        }
    }
    agent.shutdown().await;
    let (live_fams, live_labels) = exposition_names(&live);
    for n in [
        "servescope_rdma_port_tx_bytes_total",
        "servescope_rdma_port_rx_bytes_total",
        "servescope_rdma_port_rdma_read_bytes_total",
        "servescope_host_network_receive_bytes_total",
        "servescope_agent_cpu_seconds_total",
    ] {
        assert!(live_fams.contains(n), "live agent lacks {n}");
    }
    known.extend(live_fams);
    labels.extend(live_labels);
    // Target labels Prometheus adds; `node` from the chart's ServiceMonitor relabeling.
    labels.extend(["instance", "job", "node"].map(String::from));

    let mut missing = Vec::new();
    let mut used = BTreeSet::new();
    for (e, legend) in &exprs {
        for n in metric_names(e) {
            if !known.contains(&n) {
                missing.push(format!("metric {n} in `{e}`"));
            }
            used.insert(n);
        }
        for l in label_names(e, legend) {
            if !labels.contains(&l) {
                missing.push(format!("label {l} in `{e}` / `{legend}`"));
            }
        }
    }
    println!(
        "dashboard: {} expressions, {} metric names, all in the agent's exposition: {}",
        exprs.len(),
        used.len(),
        missing.is_empty()
    );
    assert!(
        missing.is_empty(),
        "not in the agent's /metrics:\n{}",
        missing.join("\n")
    );
    // Counters are only used through rate()/increase().
    for (e, _) in &exprs {
        for n in metric_names(e) {
            if n.ends_with("_total") {
                assert!(
                    e.contains(&format!("rate({n}")) || e.contains(&format!("increase({n}")),
                    "counter {n} used without rate()/increase(): {e}"
                );
            }
        }
    }
}

#[test]
fn name_extraction_self_check() {
    let e = r#"4 * rate(servescope_rdma_port_counters_port_xmit_data_total{instance=~"$node",stat="max"}[5m]) by (device, port)"#;
    assert_eq!(
        metric_names(e).into_iter().collect::<Vec<_>>(),
        ["servescope_rdma_port_counters_port_xmit_data_total"]
    );
    let l = label_names(e, "{{instance}} {{device}}:{{port}}");
    assert_eq!(
        l.into_iter().collect::<Vec<_>>(),
        ["device", "instance", "port", "stat"]
    );
    let (f, l) = exposition_names(
        "# TYPE servescope_x_total counter\nservescope_x_total{a=\"1,b=\\\"q\",c=\"\"} 1\n",
    );
    assert!(f.contains("servescope_x_total"));
    assert_eq!(l.into_iter().collect::<Vec<_>>(), ["a", "c"]);
}
