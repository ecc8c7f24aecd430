//! `servescope startup run` end to end: it starts `servescope sim` in startup mode,
//! waits for `/health`, sends the first request, tails the sim's vLLM-format log and
//! prints the waterfall.

use std::path::Path;
use std::process::Output;

mod common;

const BIN: &str = env!("CARGO_BIN_EXE_servescope");

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn sim_cmd(port: u16, phases: &str, log: &Path, millis: bool) -> String {
    format!(
        "'{BIN}' sim --listen 127.0.0.1:{port} --model m --startup-phases '{phases}' --startup-log '{}'{}",
        log.display(),
        if millis { " --startup-log-millis" } else { "" }
    )
}

fn run(args: &[&str]) -> (Output, String, String) {
    common::run(common::bin().args(args))
}

/// `startup run --endpoint ENDPOINT --model m --start-cmd CMD` and `extra` flags.
fn startup_run(endpoint: &str, cmd: &str, extra: &[&str]) -> (Output, String, String) {
    let mut args = vec![
        "startup",
        "run",
        "--endpoint",
        endpoint,
        "--model",
        "m",
        "--start-cmd",
        cmd,
    ];
    args.extend_from_slice(extra);
    run(&args)
}

fn seconds(phases: &[serde_json::Value], kind: &str) -> f64 {
    let p = phases
        .iter()
        .find(|p| p["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in {phases:#?}"));
    match p["duration_s"].as_f64() {
        Some(d) => d,
        None => (p["end_ns"].as_i64().unwrap() - p["start_ns"].as_i64().unwrap()) as f64 / 1e9,
    }
}

#[test]
fn startup_run_against_sim_startup_mode() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("sim.log");
    let html = dir.path().join("w.html");
    let db = dir.path().join("s.db");
    let port = free_port();
    let phases = "init=0.3,download=0.5,weight_load=0.8,dynamo=0.3,compile=0.6,profile=0.4,kv_cache=0.3,graph_capture=1,api=0.2";
    let cmd = sim_cmd(port, phases, &log, true);
    let endpoint = format!("http://127.0.0.1:{port}");
    let (out, so, se) = startup_run(
        &endpoint,
        &cmd,
        &[
            "--log",
            log.to_str().unwrap(),
            "--timeout",
            "60s",
            "--min-gap",
            "0.05",
            "--json",
            "-o",
            html.to_str().unwrap(),
            "--db",
            db.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{so}\n{se}");
    assert!(se.contains("waiting for /health: 503 after"), "{se}");
    let v: serde_json::Value = serde_json::from_str(&so).unwrap();
    let tr = &v[0];
    let ph = tr["timeline"]["phases"].as_array().unwrap();
    for (kind, want) in [
        ("weight_download", 0.5),
        ("weight_load", 0.8),
        ("model_load", 1.3),
        ("dynamo_transform", 0.3),
        ("inductor_compile", 0.6),
        ("torch_compile", 0.9),
        ("memory_profiling", 0.4),
        ("kv_cache_allocation", 0.3),
        ("cuda_graph_capture", 1.0),
        ("fixed_init", 0.3),
    ] {
        let got = seconds(ph, kind);
        assert!((got - want).abs() <= 0.2, "{kind}: {got} vs {want}");
    }
    let at = |kind: &str| {
        ph.iter().find(|p| p["kind"] == kind).unwrap()["end_ns"]
            .as_i64()
            .unwrap()
    };
    assert!(at("first_token") >= at("api_ready"), "{ph:#?}");
    assert!(at("first_token") >= at("first_request"));
    assert_eq!(
        ph.iter().find(|p| p["kind"] == "first_token").unwrap()["source"],
        "client"
    );
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("<svg") && page.contains("CUDA graph capture"));
    let (out, so, _) = run(&["runs", "--db", db.to_str().unwrap()]);
    assert!(out.status.success() && so.contains("startup"), "{so}");
}

#[test]
fn startup_run_trials_restart_the_command() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("sim.log");
    let port = free_port();
    let cmd = sim_cmd(
        port,
        "weight_load=1,compile=0.5,graph_capture=1",
        &log,
        false,
    );
    let endpoint = format!("http://127.0.0.1:{port}");
    let (out, so, se) = startup_run(
        &endpoint,
        &cmd,
        &["--log", log.to_str().unwrap(), "--trials", "2"],
    );
    assert!(out.status.success(), "{so}\n{se}");
    assert!(se.contains("trial 2/2"), "{se}");
    assert!(so.contains("== trial 2 of 2"), "{so}");
    // Whole-second stamps: the printed durations still come through exactly.
    let weight = so
        .lines()
        .filter(|l| l.trim_start().starts_with("Weight load"))
        .count();
    assert_eq!(weight, 2, "{so}");
    assert!(so.contains("CUDA graph capture"), "{so}");
    assert!(so.contains("First token"), "{so}");

    // A command that dies before the endpoint is ready: a clear error.
    let (out, _, se) = startup_run(&endpoint, "exit 7", &[]);
    assert!(!out.status.success());
    assert!(
        se.contains("exited") && se.contains("before the endpoint was ready"),
        "{se}"
    );
}

/// The live path with an agent: the agent's watcher follows the sim's vLLM-format
/// log (a glob), `startup run --agent` pulls the agent's buffer after the first
/// answer and parses the lines the agent streamed into the same phases.
#[test]
fn startup_run_with_an_agent_watching_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("sim.log");
    let tok = dir.path().join("token");
    std::fs::write(&tok, "sr-token\n").unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut cfg = servescope_agent::AgentConfig::loopback(Some("sr-token".into()));
    cfg.kmsg = false;
    cfg.nvml_lib = Some(dir.path().join("missing-libnvidia-ml.so.1"));
    cfg.startup_log_globs = vec![log.display().to_string()];
    let agent = rt.block_on(servescope_agent::start(cfg)).unwrap();
    let addr = agent.grpc_addr.to_string();
    let port = free_port();
    let phases =
        "init=0.3,download=0.5,weight_load=0.8,compile=0.6,kv_cache=0.3,graph_capture=1,api=0.2";
    let cmd = sim_cmd(port, phases, &log, true);
    let endpoint = format!("http://127.0.0.1:{port}");
    // The sim's log is born after the watcher started: read from its start.
    std::thread::sleep(std::time::Duration::from_millis(1200));
    let (out, so, se) = startup_run(
        &endpoint,
        &cmd,
        &[
            "--timeout",
            "60s",
            "--min-gap",
            "0.05",
            "--agent",
            &addr,
            "--token-file",
            tok.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{so}\n{se}");
    assert!(so.contains("== agents: run"), "{so}");
    let agent_part = so.split("== agents: run").nth(1).unwrap_or_default();
    assert!(
        agent_part.contains("sim.log"),
        "the agent streamed the sim's log: {agent_part}"
    );
    println!("{agent_part}");
    // The phases parsed from the lines the agent streamed carry the configured
    // durations the sim printed.
    let row = |label: &str| {
        agent_part
            .lines()
            .find(|l| l.trim_start().starts_with(label))
            .unwrap_or_else(|| panic!("no {label} row in {agent_part}"))
            .to_string()
    };
    assert!(row("Weight download").contains(" 0.50 "), "{agent_part}");
    assert!(row("Weight load").contains(" 0.80 "), "{agent_part}");
    assert!(row("Torch compile").contains(" 0.60 "), "{agent_part}");
    assert!(row("CUDA graph capture").contains(" 1.00 "), "{agent_part}");
    assert!(
        agent_part.contains("nvml: no process held GPU memory"),
        "{agent_part}"
    );
    rt.block_on(agent.shutdown());
}
