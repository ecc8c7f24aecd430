//! `servescope startup parse` and `servescope startup compare` on the startup-log
//! fixtures (coordinator/tests/fixtures/vllm-startup-logs), through the built binary.

use std::path::{Path, PathBuf};

mod common;
use common::{bin, failure, success};

fn log(name: &str) -> PathBuf {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../coordinator/tests/fixtures/vllm-startup-logs"
    ))
    .join(name)
}

#[test]
fn startup_parse_table_and_json() {
    let so = success(
        bin()
            .args([
                "startup",
                "parse",
                "--year",
                "2025",
                "--utc-offset",
                "-07:00",
            ])
            .arg(log("llama70b-base.log"))
            .arg(log("qwen235B-compile-cache.log")),
    );
    assert!(
        so.contains("== llama70b-base.log") && so.contains("== qwen235B-compile-cache.log"),
        "{so}"
    );
    assert!(so.contains("table vllm-0.10..0.11"), "{so}");
    for want in [
        "Model loading",
        "213.54",
        "212.733–213.541 s",
        "61.84",
        "16.00",
        "91.82",
        "Unattributed",
        "API ready",
        "first line → API ready 374.00 s",
    ] {
        assert!(so.contains(want), "missing {want:?} in\n{so}");
    }
    // Times on the log's clock.
    assert!(so.contains("11:52:11"), "{so}");

    let out = bin()
        .args(["startup", "parse", "--json", "--year", "2025"])
        .arg(log("llama70B-all.log"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let phases = v[0]["timeline"]["phases"].as_array().unwrap();
    let cache = phases
        .iter()
        .find(|p| p["kind"] == "compile_cache_load")
        .unwrap();
    assert_eq!(cache["duration_s"], 3.938);
    assert_eq!(cache["source"], "log");
    assert_eq!(v[0]["table"], "vllm-0.10..0.11");
}

#[test]
fn startup_compare_table_and_html() {
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("startup.html");
    let label = |n: &str, f: &str| format!("{n}={}", log(f).display());
    let so = success(
        bin()
            .args(["startup", "compare", "--year", "2025", "-o"])
            .arg(&html)
            .arg("--label")
            .arg(label("Baseline", "llama70b-base.log"))
            .arg("--label")
            .arg(label("S3/RunAI Streamer", "llama70b-s3-runai.log"))
            .arg("--label")
            .arg(label("All Optimizations", "llama70B-all.log"))
            .arg("--label")
            .arg(label("Baseline", "qwen235B-base.log"))
            .arg("--label")
            .arg(label("Torch.compile Cache", "qwen235B-compile-cache.log")),
    );
    assert!(
        so.contains("== Meta-Llama-3-70B (seconds)") && so.contains("== Qwen3-235B-A22B (seconds)"),
        "{so}"
    );
    assert!(
        so.contains("213.5") && so.contains("758.2") && so.contains("22.7"),
        "{so}"
    );
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("<svg") && page.contains("Model loading") && !page.contains("<script"));

    // Positional logs are labelled by file name; a bad --label is a clear error.
    let out = bin()
        .args(["startup", "compare"])
        .arg(log("llama70b-base.log"))
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("llama70b-base"));
    assert!(failure(&["startup", "compare", "--label", "nolog"]).contains("NAME=LOG"));
    assert!(failure(&["startup", "parse", "/nonexistent.log"]).contains("/nonexistent.log"));
}

#[test]
fn show_of_a_startup_run_prints_its_phases() {
    use servescope_coordinator::analysis::startup::{parse_file, ParseOptions};
    use servescope_coordinator::orchestration::startup_run::{merge, ClientTimes, Trial};
    use servescope_coordinator::store::{RunKind, Store};
    let log = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../coordinator/tests/fixtures/vllm032/serve-plain.log");
    let parse = parse_file(&log, ParseOptions::new(2026)).unwrap();
    let c = ClientTimes::default();
    let trial = Trial {
        index: 0,
        timeline: merge(std::slice::from_ref(&parse), &c, 1.0),
        logs: vec![parse],
        client: c,
        error: None,
    };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let store = Store::open(&db).unwrap();
    let args = serde_json::json!({"endpoint": "http://127.0.0.1:18100", "model": "tiny-llama", "trials": [trial]});
    let run = store
        .create_run(RunKind::Startup, "cpu", 1, &args.to_string())
        .unwrap();
    store.finish_run(run, 2, "done").unwrap();
    drop(store);
    let so = success(bin().args(["show", &run.to_string(), "--db"]).arg(&db));
    for want in [
        "== trial 1 of 1",
        "log serve-plain.log: table vllm-0.20..0.33",
        "0 unplaced",
        "Init engine",
        "41.84",
        "  Warmup",
        "KV cache allocation",
        "API ready",
        "total: → API ready 78.00 s",
    ] {
        assert!(so.contains(want), "missing {want:?} in\n{so}");
    }
}
