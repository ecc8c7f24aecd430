//! `servescope demo` end to end, both ways: with the seeded fault its output leads
//! with the finding that names it and the report is written; with `--no-fault` it
//! raises none. `runs` and `export` then read the demo's store.

mod common;
use common::{bin, run};

/// The run id in `marker (run N)` of the demo's stdout.
fn run_after(so: &str, marker: &str) -> i64 {
    let rest = so
        .split(marker)
        .nth(1)
        .unwrap_or_else(|| panic!("no {marker:?} in {so}"));
    rest.trim_start_matches(" (run ")
        .split(')')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no run id after {marker:?} in {so}"))
}

#[test]
fn demo_leads_with_the_seeded_finding_and_runs_clean_without_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("d.db");
    let report = dir.path().join("r.html");
    let t = std::time::Instant::now();
    let (out, so, se) = run(bin()
        .args(["demo", "--db"])
        .arg(&db)
        .arg("--report")
        .arg(&report));
    assert!(out.status.success(), "demo failed: {so}\n{se}");
    eprintln!("demo took {:.1} s", t.elapsed().as_secs_f64());
    let mut lines = so.lines().filter(|l| !l.trim().is_empty());
    assert_eq!(lines.next(), Some("== 1 finding(s)"), "{so}");
    assert_eq!(
        lines.next(),
        Some("[Critical] KV transfer runs on a slow transport (kv_slow_transport)"),
        "{so}"
    );
    assert!(
        lines.next().unwrap_or("").starts_with("  evidence: "),
        "{so}"
    );
    assert!(so.contains("named by kv_slow_transport: yes"), "{so}");
    // Every stage reported its progress on stderr.
    for stage in [
        "[1/5] agent",
        "[3/5] P/D sweep",
        "[4/5] startup",
        "[5/5] findings",
    ] {
        assert!(se.contains(stage), "{stage}: {se}");
    }
    // The agent saw the fixture's EFA devices and the startup log it watched.
    assert!(so.contains("2 RDMA device(s)"), "{so}");
    assert!(
        so.contains("agent log watcher (run") && so.contains("vllm-startup.log"),
        "{so}"
    );
    assert!(so.contains("CUDA graph capture"), "{so}");
    let html = std::fs::read_to_string(&report).expect("report written");
    assert!(html.contains("<svg") && html.contains("KV transfer runs on a slow transport"));

    let telemetry = run_after(&so, "node telemetry");
    let out = bin().args(["runs", "--db"]).arg(&db).output().unwrap();
    let runs = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(
        runs.lines()
            .any(|l| l.trim_start().starts_with(&format!("{telemetry} ")) && l.contains("done")),
        "{runs}"
    );
    let out = bin()
        .args(["export", &telemetry.to_string(), "--format", "csv", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    let csv = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert_eq!(
        csv.lines().next(),
        Some("run,host,seq,t_ns,t_coord_ns,metric,labels,value")
    );
    assert!(
        csv.contains(",servescope_host_cpu_utilization_ratio,"),
        "host points exported under their /metrics names"
    );
    assert!(csv.lines().count() > 20);
    let out = bin()
        .args(["export", "99", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no run 99"));

    let (out, so, se) = run(bin()
        .args(["demo", "--no-fault", "--db"])
        .arg(dir.path().join("clean.db"))
        .arg("--report")
        .arg(dir.path().join("clean.html")));
    assert!(out.status.success(), "demo --no-fault failed: {so}\n{se}");
    let first = so.lines().find(|l| !l.trim().is_empty());
    assert_eq!(
        first,
        Some("== no finding: nothing in this run needs fixing"),
        "{so}"
    );
    assert!(
        !so.contains("[Critical]") && !so.contains("[Warning]"),
        "{so}"
    );
}
