//! `servescope startup run` starting a real vLLM 0.32 (CPU build) itself: the
//! waterfall it draws against what the engine printed (every duration, no overlapping
//! rows), the first request it sent, and readiness as its client saw it.

mod common;
mod vllm;

use common::success;
use serde_json::Value;
use vllm::{serial, serve_cmd, setup_dir, vllm_home, MODEL};

#[test]
fn startup_run_of_a_real_vllm_matches_its_log() {
    let Some(dir) = setup_dir() else { return };
    let _one = serial();
    let port = vllm::port(40);
    let log = vllm_home().join(format!("serve-{port}.log"));
    let so = success(
        common::bin()
            .args([
                "startup",
                "run",
                "--json",
                "--timeout",
                "15m",
                "--max-tokens",
                "4",
            ])
            .args([
                "--endpoint",
                &format!("http://127.0.0.1:{port}"),
                "--model",
                MODEL,
            ])
            .args(["--start-cmd", &serve_cmd(&dir, port, "")])
            .arg("--log")
            .arg(&log),
    );
    let trials: Value = serde_json::from_str(&so).unwrap();
    let t = &trials[0];
    assert!(t["error"].is_null(), "{}", t["error"]);
    let text = std::fs::read_to_string(&log).unwrap();
    let mut failures = vllm::check_timeline(&text, &t["timeline"]);
    let c = &t["client"];
    let rows = vllm::phase_rows(&t["timeline"]);
    let at = |k: &str| rows.iter().find(|r| r.0 == k).map(|r| r.1);
    let sent = c["first_request_ns"].as_f64().map(|x| x / 1e9);
    let health = c["health_ok_ns"].as_f64().map(|x| x / 1e9);
    println!(
        "engine: API ready (log) {:?}; servescope client: /health ok {health:?} after {} polls, first request sent {sent:?}, answer status {}; timeline first_request {:?}",
        at("api_ready"),
        c["health_polls"],
        c["status"],
        at("first_request")
    );
    if c["status"] != 200 {
        failures.push(format!("first request answered {}", c["status"]));
    }
    match (at("first_request"), sent) {
        (Some(f), Some(s)) if (f - s).abs() > 1.0 => failures.push(format!(
            "first request at {f:.1}, but the client sent it at {s:.1}"
        )),
        (None, _) => failures.push("no first request though one was sent".into()),
        _ => {}
    }
    if let (Some(r), Some(f)) = (at("api_ready"), at("first_request")) {
        if f + 1.0 < r {
            failures.push("first request before API ready".into());
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
