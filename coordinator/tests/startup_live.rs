//! The live startup path in-process: the simulator's startup mode writes vLLM-format
//! lines that the startup parser turns back into the configured phases, and
//! `startup::run` merges them with the client's first request and first token.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use servescope_coordinator::analysis::startup::{self as st, ParseOptions, PhaseKind, Timeline};
use servescope_coordinator::orchestration::startup_run::{self as run, RunOptions};
use servescope_sim::startup::{parse_phases, StartupPhase};
use servescope_sim::{SimConfig, StartupConfig};

const PHASES: &str = "init=0.3,download=0.4,weight_load=0.6,dynamo=0.3,compile=0.5,profile=0.4,kv_cache=0.3,graph_capture=1,warmup=0.3,api=0.2";

fn year() -> i32 {
    // The sim stamps UTC wall-clock time; the test runs within a few seconds.
    servescope_proto::ext::year_of_ns(servescope_proto::now_ns() as i64)
}

fn opts(min_gap_s: f64) -> ParseOptions {
    let mut o = ParseOptions::new(year());
    o.min_gap_s = min_gap_s;
    o
}

fn cfg(log: &Path, millis: bool) -> StartupConfig {
    StartupConfig {
        phases: parse_phases(PHASES).unwrap(),
        log: Some(log.to_path_buf()),
        stdout: false,
        millis,
    }
}

fn conf(c: &StartupConfig, p: StartupPhase) -> f64 {
    c.phases.iter().find(|(q, _)| *q == p).unwrap().1
}

/// (parsed kind, configured seconds, printed by the engine)
fn expected(c: &StartupConfig) -> Vec<(PhaseKind, f64, bool)> {
    use StartupPhase as P;
    let s = |p| conf(c, p);
    vec![
        (PhaseKind::FixedInit, s(P::Init), false),
        (PhaseKind::WeightDownload, s(P::Download), true),
        (PhaseKind::WeightLoad, s(P::WeightLoad), true),
        (
            PhaseKind::ModelLoad,
            s(P::Download) + s(P::WeightLoad),
            true,
        ),
        (PhaseKind::DynamoTransform, s(P::Dynamo), true),
        (PhaseKind::InductorCompile, s(P::Compile), true),
        (PhaseKind::TorchCompile, s(P::Dynamo) + s(P::Compile), true),
        (PhaseKind::MemoryProfiling, s(P::Profile), false),
        (PhaseKind::KvCacheAllocation, s(P::KvCache), false),
        (PhaseKind::CudaGraphCapture, s(P::GraphCapture), true),
        (PhaseKind::Warmup, s(P::Warmup), false),
        (
            PhaseKind::InitEngine,
            [
                P::Dynamo,
                P::Compile,
                P::Profile,
                P::KvCache,
                P::GraphCapture,
                P::Warmup,
            ]
            .map(s)
            .iter()
            .sum(),
            true,
        ),
    ]
}

fn check(t: &Timeline, c: &StartupConfig, printed_only: bool) {
    for (kind, want, printed) in expected(c) {
        if printed_only && !printed {
            continue;
        }
        let got = t
            .seconds(kind)
            .unwrap_or_else(|| panic!("{kind:?} missing: {t:#?}"));
        assert!(
            (got - want).abs() <= 0.2,
            "{kind:?}: parsed {got:.3} s, configured {want:.3} s"
        );
    }
    assert!(t.get(PhaseKind::ApiReady).is_some(), "{t:#?}");
}

async fn play(millis: bool) -> (tempfile::TempDir, StartupConfig) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("vllm.log");
    let c = cfg(&log, millis);
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let h = servescope_sim::start_with(SimConfig::default(), addr, Some(c.clone()))
        .await
        .unwrap();
    assert!(!h.is_ready());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !h.is_ready() {
        assert!(tokio::time::Instant::now() < deadline, "never ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    h.shutdown().await;
    (dir, c)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn startup_sim_log_parses_to_configured_phases() {
    let (dir, c) = play(true).await;
    let r = st::parse_file(&dir.path().join("vllm.log"), opts(0.05)).unwrap();
    assert_eq!(r.table, "vllm-0.10..0.11", "{}", r.table_reason);
    assert_eq!(r.model.as_deref(), Some("servescope-sim"));
    check(&r.timeline, &c, false);
    let ready = r.timeline.until(PhaseKind::ApiReady).unwrap();
    assert!((ready - c.total_s()).abs() <= 0.2, "ready after {ready}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn startup_sim_log_whole_seconds_keeps_printed_durations() {
    let (dir, c) = play(false).await;
    let text = std::fs::read_to_string(dir.path().join("vllm.log")).unwrap();
    assert!(
        text.lines().any(|l| l.starts_with("(EngineCore_DP0 pid=")
            && l.contains(" INFO ")
            && l.contains("Loading weights took 0.60 seconds")),
        "{text}"
    );
    let r = st::parse_str(&text, "vllm.log", opts(1.0));
    check(&r.timeline, &c, true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn startup_run_merges_log_and_client_phases() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("vllm.log");
    let c = cfg(&log, true);
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let h = servescope_sim::start_with(SimConfig::default(), addr, Some(c.clone()))
        .await
        .unwrap();
    let mut o = RunOptions::new(&h.url(), "servescope-sim", opts(0.05));
    o.logs = vec![log.clone()];
    o.logs_from_start = true;
    o.timeout = Duration::from_secs(30);
    o.poll = Duration::from_millis(50);
    let mut lines = Vec::new();
    let tr = run::run_trial(&o, 0, &mut |m| lines.push(m.to_string())).await;
    h.shutdown().await;
    assert!(tr.error.is_none(), "{:?}", tr.error);
    assert!(
        lines.iter().any(|l| l.starts_with("/health: 200 after")),
        "{lines:?}"
    );
    let t = &tr.timeline;
    check(t, &c, false);
    let at = |k| t.get(k).and_then(|p| p.end_ns).unwrap();
    assert!(at(PhaseKind::FirstRequest) >= at(PhaseKind::ApiReady));
    assert!(at(PhaseKind::FirstToken) >= at(PhaseKind::FirstRequest));
    assert_eq!(tr.client.model_listed, Some(true));
    assert!(tr.client.output_tokens > 0);
    // The engine's "Added request" line is kept as evidence on the client phase.
    let req = t.get(PhaseKind::FirstRequest).unwrap();
    assert!(req.attrs.contains_key("engine_logged_ns"), "{req:?}");
    // The client's own share of "→ first request": last failed poll → request.
    let last = tr
        .client
        .last_not_ready_ns
        .expect("a poll failed before ready");
    assert!(last < tr.client.health_ok_ns.unwrap());
    let share: f64 = req.attrs[run::CLIENT_SHARE_S].parse().unwrap();
    assert!(share > 0.0 && share < 2.0, "{req:?}");
    let table = run::waterfall_text(&tr);
    assert!(table.contains("CUDA graph capture") && table.contains("First token"));
    let html = run::render_html(std::slice::from_ref(&tr), "live", "servescope-sim");
    assert!(html.contains("<svg") && html.contains("Trial 1 waterfall"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn startup_run_reports_an_endpoint_that_never_gets_ready() {
    let mut o = RunOptions::new("http://127.0.0.1:9", "m", opts(1.0));
    o.timeout = Duration::from_millis(600);
    o.poll = Duration::from_millis(100);
    let tr = run::run_trial(&o, 0, &mut |_| {}).await;
    let e = tr.error.expect("an error");
    assert!(e.contains("not ready within"), "{e}");
    assert!(tr.client.health_polls >= 2);

    o.start_cmd = Some("exit 3".into());
    o.timeout = Duration::from_secs(10);
    let tr = run::run_trial(&o, 0, &mut |_| {}).await;
    let e = tr.error.expect("an error");
    assert!(e.contains("exited") && e.contains('3'), "{e}");
}
