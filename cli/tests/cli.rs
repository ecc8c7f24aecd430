//! The `servescope` binary end to end: clear errors for bad input, watch and nodes
//! against a live agent (the demo, runs and export: `demo.rs`).

mod common;
use common::{bin, failure, success};

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

    assert!(failure(&["record", "--agent", "x:1", "--duration", "5x"])
        .contains("invalid duration unit"));

    assert!(failure(&["runs", "--db", "/nonexistent/dir/s.db"]).contains("no store at"));
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

    let so = success(
        bin()
            .args([
                "watch",
                "--duration",
                "2500ms",
                "--agent",
                &addr,
                "--token-file",
            ])
            .arg(&tok),
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

/// `load` against the simulator (in this test process), then `show`, `compare`,
/// `runs`, and the vLLM-compatible export.
#[test]
fn load_show_compare_against_the_sim() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("l.db");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let cfg = servescope_sim::SimConfig {
        prefill_base_s: 0.02,
        decode_s_per_token: 0.002,
        faults: servescope_sim::Faults {
            error_rate: 0.1,
            ..Default::default()
        },
        ..Default::default()
    };
    let sim = rt
        .block_on(servescope_sim::start(cfg, "127.0.0.1:0".parse().unwrap()))
        .unwrap();
    let url = sim.url();
    let run = |extra: &[&str]| {
        let so = success(
            bin()
                .args([
                    "load",
                    "--endpoint",
                    &url,
                    "--num-prompts",
                    "30",
                    "--input-len",
                    "16",
                    "--output-len",
                    "8",
                ])
                .args(extra)
                .arg("--db")
                .arg(&db),
        );
        so
    };
    let vx = dir.path().join("vllm");
    let so = run(&[
        "--concurrency",
        "1,4",
        "--probe",
        "--gpus",
        "2",
        "--export-vllm",
        vx.to_str().unwrap(),
    ]);
    assert!(
        so.contains("concurrency 1") && so.contains("concurrency 4"),
        "{so}"
    );
    assert!(
        so.contains("http_500"),
        "injected errors are reported: {so}"
    );
    assert!(
        so.contains("× http_500: HTTP 500 Internal Server Error: injected fault: server error"),
        "the server's own message is kept: {so}"
    );
    assert!(so.contains("per GPU:"), "{so}");
    assert!(!so.contains("probe failed"), "{so}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(vx.join("point1-trial0.json")).unwrap())
            .unwrap();
    assert_eq!(v["max_concurrency"], 4);
    assert!(v["mean_ttft_ms"].as_f64().unwrap() > 0.0);
    let so = run(&["--concurrency", "4", "--json"]);
    let j: serde_json::Value = serde_json::from_str(&so).unwrap();
    assert_eq!(j["run"], 2);
    assert_eq!(j["points"][0]["aggregate"]["num_requests"], 30);

    let out = bin().args(["show", "1", "--db"]).arg(&db).output().unwrap();
    let so = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && so.contains("concurrency 4"), "{so}");
    assert!(
        so.contains(": HTTP 500 Internal Server Error: injected fault: server error"),
        "show prints the stored error message: {so}"
    );
    let out = bin()
        .args(["compare", "1", "2", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    let so = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && so.contains("Δ vs run 1"), "{so}");
    let out = bin().args(["runs", "--db"]).arg(&db).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains(" load "));
    assert!(failure(&["load", "--endpoint", &url, "--concurrency", "1"]).contains("--num-prompts"));
    rt.block_on(sim.shutdown());
}

/// `import` on the shared vllm bench fixtures: silent failures and averaged
/// aggregates are called out.
#[test]
fn import_vllm_bench_fixtures() {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/fixtures/vllm-bench-results"
    );
    if !std::path::Path::new(dir).exists() {
        println!("skipping: ../shared/fixtures not found");
        return;
    }
    let so = success(bin().args(["import", dir]));
    assert!(
        so.matches("conc").count() >= 39,
        "every fixture listed: {so}"
    );
    assert!(so.contains("AVERAGED aggregate"));
    assert!(so.contains("WARNING 1026 of 5120 requests failed"), "{so}");
    assert!(so.contains("pooled unknown (lies in"), "{so}");
    assert!(failure(&["import", "/nonexistent.json"]).contains("/nonexistent.json"));
}

/// `import` recognises a real GuideLLM export by its content.
#[test]
fn import_guidellm_export() {
    let f = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../coordinator/tests/fixtures/guidellm/benchmarks.json"
    );
    let so = success(bin().args(["import", f]));
    assert!(
        so.contains("20/20") && so.contains("GuideLLM 0.8.1"),
        "{so}"
    );
}
