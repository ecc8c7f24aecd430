//! The `servescope` binary end to end: demo (in-process agent on loopback), runs,
//! export, and clear errors for bad input.

use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_servescope"))
}

#[test]
fn demo_then_runs_then_export() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("d.db");
    let out = bin()
        .args(["demo", "--duration", "2s", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    let so = String::from_utf8_lossy(&out.stdout);
    let se = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "demo failed: {so}\n{se}");
    assert!(so.contains("clock offset:"), "{so}");
    assert!(so.contains("samples: "), "{so}");
    assert!(
        so.contains("gpu: unavailable (") || so.contains("gpu 0:"),
        "{so}"
    );
    assert!(se.contains("recording"), "progress lines: {se}");

    let out = bin().args(["runs", "--db"]).arg(&db).output().unwrap();
    let so = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(
        so.lines()
            .any(|l| l.trim_start().starts_with("1 ") && l.contains("done")),
        "{so}"
    );

    let out = bin()
        .args(["export", "1", "--format", "csv", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    let so = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    let mut lines = so.lines();
    assert_eq!(
        lines.next(),
        Some("run,host,seq,t_ns,t_coord_ns,metric,labels,value")
    );
    assert!(so.contains(",host_cpu_percent,"), "host points exported");
    assert!(lines.count() > 20);

    let out = bin()
        .args(["export", "1", "--format", "json", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    let first = String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap_or("")
        .to_string();
    let v: serde_json::Value = serde_json::from_str(&first).expect("json lines");
    assert!(v["t_coord_ns"].is_i64(), "{v}");

    let out = bin()
        .args(["export", "99", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no run 99"));
}

#[test]
fn clear_errors() {
    let out = bin()
        .args(["nodes", "--agent", "127.0.0.1:1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let so = String::from_utf8_lossy(&out.stdout);
    assert!(
        so.contains("unreachable") && so.contains("127.0.0.1:1"),
        "{so}"
    );

    let out = bin()
        .args(["record", "--agent", "x:1", "--duration", "5x"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid duration unit"));

    let out = bin()
        .args(["runs", "--db", "/nonexistent/dir/s.db"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no store at"));
}

/// `watch` and `nodes` against a real agent (in this test process) on loopback.
#[test]
fn watch_and_nodes_against_a_live_agent() {
    let dir = tempfile::tempdir().unwrap();
    let tok = dir.path().join("token");
    std::fs::write(&tok, "w-token\n").unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut cfg = servescope_agent::AgentConfig::loopback(Some("w-token".into()));
    cfg.kmsg = false;
    cfg.nvml_lib = Some(dir.path().join("missing-libnvidia-ml.so.1"));
    let agent = rt.block_on(servescope_agent::start(cfg)).unwrap();
    let addr = agent.grpc_addr.to_string();

    let out = bin()
        .args([
            "watch",
            "--duration",
            "2500ms",
            "--agent",
            &addr,
            "--token-file",
        ])
        .arg(&tok)
        .output()
        .unwrap();
    let so = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{so}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(so.contains("[live]"), "{so}");
    assert!(
        so.contains("cpu ") && so.contains("| mem "),
        "host line: {so}"
    );
    assert!(so.contains("gpu: unavailable ("), "{so}");

    let out = bin()
        .args(["nodes", "--json", "--agent", &addr, "--token-file"])
        .arg(&tok)
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["inventory"]["gpu"]["available"], false);
    assert!(v[0]["clock_offset_error_ns"].as_i64().unwrap() >= 0);

    let bad = dir.path().join("bad");
    std::fs::write(&bad, "nope\n").unwrap();
    let out = bin()
        .args(["nodes", "--agent", &addr, "--token-file"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Unauthenticated")
            || String::from_utf8_lossy(&out.stdout).contains("wrong token")
    );
    rt.block_on(agent.shutdown());
}
