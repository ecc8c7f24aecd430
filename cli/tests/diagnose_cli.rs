//! `servescope diagnose` on `record` runs, with real processes on loopback: the
//! agent binary over a p5-like sysfs fixture, `servescope record`, and faults the
//! test injects into the fixture while the recording runs (a port's link taken
//! down, retransmit counters raised). A clean recording raises nothing.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::{bin, loopback_agent_with, Kill};
use servescope_agent::collect::rdma::fixture::{
    p5_layout, raise_retransmits, set_port_link, write_p5_tree, P5FixtureOptions,
};

/// The agent binary over `sys` with NVML, kmsg and the startup watch off and the
/// RDMA counters read every 100 ms.
fn start_agent(dir: &Path, sys: &Path, tok: &Path) -> (Kill, String) {
    let (sys, nvml) = (
        sys.display().to_string(),
        dir.join("no-such-libnvidia-ml.so.1").display().to_string(),
    );
    loopback_agent_with(
        tok,
        &[
            "--sysfs-root",
            &sys,
            "--nvml-lib",
            &nvml,
            "--no-kmsg",
            "--no-startup-watch",
            "--rdma-interval-ms",
            "100",
        ],
    )
    .expect(
        "agent listening (servescope-agent is built beside servescope by cargo test --workspace)",
    )
}

fn record(db: &Path, tok: &Path, agent: &str, secs: u64) -> Kill {
    Kill(
        bin()
            .args(["record", "--agent", agent, "--token-file"])
            .arg(tok)
            .args(["--duration", &format!("{secs}s"), "-q", "--db"])
            .arg(db)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("record starts"),
    )
}

fn diagnose(db: &Path, run: i64) -> Vec<serde_json::Value> {
    let out = bin()
        .args(["diagnose", &run.to_string(), "--json", "--db"])
        .arg(db)
        .output()
        .expect("diagnose runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    v.as_array().expect("array").clone()
}

#[test]
fn diagnose_names_a_link_taken_down_and_retransmits_during_a_recording() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sys = dir.path().join("sys");
    let opts = P5FixtureOptions {
        groups: 1,
        efa_per_group: 2,
        seed: 3,
    };
    write_p5_tree(&sys, &opts).expect("fixture");
    let efa = &p5_layout(&opts).expect("layout")[0].efa;
    let tok = dir.path().join("token");
    std::fs::write(&tok, "diagnose-token-1\n").expect("token");
    let (_agent, addr) = start_agent(dir.path(), &sys, &tok);
    let db = dir.path().join("s.db");

    // Run 1: clean.
    let mut r = record(&db, &tok, &addr, 4);
    assert!(r.0.wait().expect("record").success());
    let clean = diagnose(&db, 1);
    assert!(clean.is_empty(), "{clean:#?}");

    // Run 2: the first EFA port goes down 1.5 s in; the second one retransmits.
    let mut r = record(&db, &tok, &addr, 5);
    std::thread::sleep(Duration::from_millis(1500));
    set_port_link(&sys, &efa[0].name, 1, false).expect("link down");
    for _ in 0..5 {
        raise_retransmits(&sys, &efa[1].name, 1, 1000).expect("retransmits");
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(r.0.wait().expect("record").success());
    let found = diagnose(&db, 2);
    let mut rules: Vec<&str> = found.iter().filter_map(|f| f["rule"].as_str()).collect();
    rules.sort_unstable();
    assert_eq!(
        rules,
        ["nic_link_down", "rdma_retransmits_rising"],
        "{found:#?}"
    );
    let evidence = |rule: &str| -> String {
        found
            .iter()
            .find(|f| f["rule"] == rule)
            .map(|f| f["evidence"].to_string())
            .unwrap_or_default()
    };
    let down = evidence("nic_link_down");
    assert!(
        down.contains(&format!("{} port 1", efa[0].name))
            && down.contains("down at +")
            && down.contains("UTC")
            && down.contains("until the end"),
        "{down}"
    );
    let re = evidence("rdma_retransmits_rising");
    assert!(
        re.contains(&format!("{} port 1", efa[1].name))
            && re.contains("retrans_pkts +5000")
            && re.contains("retrans_timeout_events +")
            && re.contains("rising from +"),
        "{re}"
    );

    // The text output leads with the severity, then evidence and fix.
    let out = bin()
        .args(["diagnose", "2", "--db"])
        .arg(&db)
        .output()
        .expect("diagnose");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("[Critical] NIC/EFA link down during the run (nic_link_down)")
            && text.contains("fix: "),
        "{text}"
    );
}
