//! `servescope fabric probe --transport nixl` between two real agents on loopback:
//! each agent supervises a NIXL driver with the real NIXL wheel (scripts/nixl_venv.sh:
//! SERVESCOPE_NIXL_PYTHON, else target/nixl-venv) on host memory; WRITE and READ
//! verified, the nixlbench columns and the transport truth printed, a model-shaped
//! transfer, the result stored; and "NIXL not available" from a Python that cannot
//! run it. Skips, saying why, without the venv or the agent binary.

mod common;

use std::path::PathBuf;
use std::process::Output;

use common::{bin, loopback_agent, nixl_python};

fn text(o: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn nixl_probes_between_two_agents_on_host_memory() {
    let Some(py) = nixl_python() else { return };
    if common::agent_bin().is_none() {
        println!("SKIP: servescope-agent binary not built beside servescope");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let tok = dir.path().join("token");
    std::fs::write(&tok, "nixl-token\n").expect("token");
    let (_a, a) = loopback_agent(&tok).expect("agent a");
    let (_b, b) = loopback_agent(&tok).expect("agent b");
    let db = dir.path().join("s.db");
    let probe_with = |python: &std::path::Path, extra: &[&str]| {
        bin()
            .args(["fabric", "probe", "--from", &a, "--to", &b, "--token-file"])
            .arg(&tok)
            .arg("--db")
            .arg(&db)
            .args(["--transport", "nixl", "--iterations", "5", "--python"])
            .arg(python)
            .args(extra)
            .output()
            .expect("run servescope")
    };
    let probe = |extra: &[&str]| probe_with(&py, extra);
    let o = probe(&["--sizes", "64K,1M", "--block-size", "4K"]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    let header = t.lines().find(|l| l.contains("descriptors")).unwrap_or("");
    for col in ["GB/s", "avg lat", "prep avg", "post avg", "xfer avg"] {
        assert!(header.contains(col), "column {col}: {t}");
    }
    // prep, post and xfer each show the average and the p99, in µs.
    assert_eq!(header.matches("avg/p99 µs").count(), 3, "{t}");
    let rows: Vec<&str> = t
        .lines()
        .filter(|l| l.contains(" WRITE ") || l.contains(" READ "))
        .collect();
    assert_eq!(rows.len(), 4, "{t}");
    assert!(
        rows.iter().all(|r| r.trim_end().ends_with("yes")),
        "verified: {t}"
    );
    assert!(t.contains("256 × 4 KiB") || t.contains("256 × 4K"), "{t}");
    assert!(t.contains("NIXL nixl_cu13 "), "{t}");
    assert!(t.contains("nixl:UCX 1."), "UCX version from hello: {t}");
    assert!(t.contains("lanes=["), "{t}");
    assert!(
        t.contains("rma=WRITE:") || t.contains("rma=EMULATED"),
        "{t}"
    );

    let cfg = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fabric/tests/data/config_llama3_70b.json");
    let cfg = cfg.to_str().expect("utf-8 path");
    let o = probe(&[
        "--model-config",
        cfg,
        "--tp",
        "8",
        "--prompt-len",
        "256",
        "--ops",
        "rma_read",
    ]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("2560 descriptors per request"), "{t}");
    assert!(t.contains("2560 × 4 KiB") || t.contains("2560 × 4K"), "{t}");
    assert!(t.contains(" READ "), "{t}");
    assert!(t.contains("stored as run"), "{t}");

    let o = probe_with(std::path::Path::new("/bin/false"), &["--sizes", "64K"]);
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(t.contains("NIXL not available on this node"), "{t}");
}
