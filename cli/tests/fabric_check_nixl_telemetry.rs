//! `servescope fabric check --read-nixl-telemetry` against a real agent on loopback:
//! a stand-in engine (two NIXL driver processes of the real wheel, `fabric/py/
//! nixl_pair.py`, with NIXL_TELEMETRY_ENABLE and a private NIXL_TELEMETRY_DIR) runs
//! WRITEs and stays up; the agent finds its processes, reads their buffers with the
//! wheel's reader, and the check prints per NIXL agent the requests NIXL counted,
//! which are the transfers run. Without the flag nothing is read. Skips, saying
//! why, without the venv (scripts/nixl_venv.sh) or the agent binary.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use common::{bin, loopback_agent, nixl_python};

const STAND_IN: &str = r#"
import os, sys, time
sys.path.insert(0, sys.argv[1])
from nixl_pair import Pair
p = Pair(1 << 20, 1 << 16, python=sys.argv[2], env={"NIXL_TELEMETRY_ENABLE": "y", "NIXL_TELEMETRY_DIR": sys.argv[3]})
p.run("WRITE", 1 << 20, blocks=16, iters=10, warmup=2)
time.sleep(0.4)  # NIXL moves its events into the buffer every 100 ms
print("ready", p.initiator.proc.pid, flush=True)
sys.stdin.readline()
p.finish(); p.close()
"#;

#[test]
fn check_reads_the_engines_nixl_telemetry_only_when_asked() {
    let Some(py) = nixl_python() else { return };
    if common::agent_bin().is_none() {
        println!("SKIP: servescope-agent binary not built beside servescope");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let bufs = dir.path().join("bufs");
    std::fs::create_dir(&bufs).expect("bufs");
    let script = dir.path().join("engine_stand_in.py");
    std::fs::write(&script, STAND_IN).expect("script");
    let pydir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fabric/py");
    let mut engine = Command::new(&py)
        .arg(&script)
        .arg(&pydir)
        .arg(&py)
        .arg(&bufs)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("stand-in engine");
    let mut line = String::new();
    BufReader::new(engine.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("ready line");
    assert!(line.starts_with("ready "), "stand-in engine: {line:?}");
    let initiator = format!("servescope-{}", line.trim().trim_start_matches("ready "));

    let tok = dir.path().join("token");
    std::fs::write(&tok, "tel-token\n").expect("token");
    let (_a, a) = loopback_agent(&tok).expect("agent");
    let check = |extra: &[&str]| {
        let o = bin()
            .args(["fabric", "check", "--agent", &a, "--token-file"])
            .arg(&tok)
            .args(extra)
            .output()
            .expect("run servescope");
        format!(
            "{}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };
    let plain = check(&[]);
    assert!(!plain.contains("NIXL telemetry of agent"), "{plain}");
    let t = check(&["--read-nixl-telemetry"]);
    let _ = engine.stdin.take().map(|mut s| s.write_all(b"done\n"));
    let _ = engine.wait();
    println!("{t}");
    let title = format!("[info] NIXL telemetry of agent {initiator}: ");
    let at = t.find(&title).unwrap_or_else(|| panic!("{title}: {t}"));
    let evidence = t[at..].lines().nth(1).expect("evidence line");
    assert!(
        evidence.contains("sent (WRITE) 12 requests, 12 MiB"),
        "10 transfers and 2 warm-ups: {evidence}"
    );
    assert!(evidence.contains("errors: none"), "{evidence}");
    assert!(
        !t.contains("transfer errors"),
        "a healthy engine raises nothing: {t}"
    );
}
