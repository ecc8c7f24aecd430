//! `servescope exp` as a process: a malformed file names the line and the field; an
//! experiment interrupted with SIGINT and then SIGKILL resumes with the remaining
//! points only, with no request stored twice or lost; status and report.

use std::process::Command;
use std::time::Duration;

mod common;
use common::{bin, free_port, html_page, sim_experiment};

fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill").args([sig, &pid.to_string()]).status();
}

#[test]
fn malformed_file_names_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("bad.yaml");
    std::fs::write(
        &f,
        "name: bad\ndeployments:\n  - name: a\n    endpoint: http://127.0.0.1:1\n    replicas: many\nworkload:\n  model: m\n  concurrency: [1]\n  num_prompts: 1\n",
    )
    .unwrap();
    let (out, _, se) = common::run(
        bin()
            .args(["exp", "run"])
            .arg(&f)
            .arg("--db")
            .arg(dir.path().join("x.db")),
    );
    assert!(!out.status.success());
    assert!(
        se.contains("line 5") && se.contains("deployments[0].replicas"),
        "{se}"
    );
}

#[test]
fn interrupted_experiment_resumes_without_duplicates() {
    let exp = sim_experiment(
        "resume",
        "  concurrency: [1, 2, 4]\n  lengths: ['16:20']\n  num_prompts: 24\n  trials: 2\n",
    );
    let db = &exp.db;
    // After the second point is stored: SIGINT, and SIGKILL if it is still there.
    let (mut run, _err) = exp.run_until("[2/6]");
    let pid = run.0.id();
    signal(pid, "-INT");
    std::thread::sleep(Duration::from_millis(150));
    signal(pid, "-KILL");
    let _ = run.0.wait();

    let status = |db: &std::path::Path| {
        let out = bin()
            .args(["exp", "status", "resume", "--json", "--db"])
            .arg(db)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let before = status(db)["points"].as_array().unwrap().len();
    assert!(
        (2..6).contains(&before),
        "{before} points stored before the rerun"
    );

    let (out, so, se) = common::run(&mut exp.exp_run());
    assert!(out.status.success(), "{so}{se}");
    assert!(
        so.contains(&format!(
            "{} point(s) run, {before} already stored",
            6 - before
        )),
        "{so}"
    );
    let v = status(db);
    let pts = v["points"].as_array().unwrap();
    assert_eq!(pts.len(), 6);
    let mut keys: Vec<&str> = pts.iter().map(|p| p["key"].as_str().unwrap()).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 6, "no point twice");
    for p in pts {
        assert_eq!(p["status"], "done");
        assert_eq!(p["aggregate"]["num_requests"], 24, "{}", p["key"]);
        assert_eq!(p["aggregate"]["completed"], 24, "{}", p["key"]);
    }
    let html = exp.dir.path().join("r.html");
    let page = html_page(&["exp", "report", "resume", "-o"], &html, db);
    assert!(
        page.contains("<svg")
            && page.contains("Deployment matrix")
            && page.contains("one/16:20/mixed/c4/t1")
    );
    let out = bin()
        .args(["exp", "status", "--db"])
        .arg(db)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("resume"));
}

/// A deployment with a deploy step (a simulator that takes 1.5 s to start) and a
/// teardown; `analyses: [startup]` times deploy → ready.
#[test]
fn deploy_step_teardown_and_startup_time() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let sim = env!("CARGO_BIN_EXE_servescope");
    let file = dir.path().join("d.yaml");
    std::fs::write(
        &file,
        format!(
            "name: deployed
deployments:
  - name: slow-start
    endpoint: http://127.0.0.1:{port}
    deploy:
      command: \"{sim} sim --listen 127.0.0.1:{port} --startup-phases init=0.5,weight_load=1 >/dev/null 2>&1 & echo $! > sim.pid\"
      ready_timeout_s: 30
    teardown:
      command: \"kill $(cat sim.pid) && rm sim.pid\"
workload:
  model: servescope-sim
  concurrency: [2]
  lengths: ['8:4']
  num_prompts: 6
analyses: [startup]
"
        ),
    )
    .unwrap();
    let db = dir.path().join("d.db");
    let (out, _, se) = common::run(bin().args(["exp", "run"]).arg(&file).arg("--db").arg(&db));
    assert!(out.status.success(), "{se}");
    assert!(!dir.path().join("sim.pid").exists(), "teardown ran");
    let out = bin()
        .args(["exp", "status", "deployed", "--json", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let s = &v["startup"][0];
    assert_eq!(s["deployment"], "slow-start");
    let ready = s["ready_s"].as_f64().unwrap();
    assert!((1.4..10.0).contains(&ready), "{ready}");
    assert_eq!(v["points"][0]["status"], "done");
    assert_eq!(v["points"][0]["aggregate"]["completed"], 6);
}
