//! The HTML report over a real load run: the sim on loopback, a two-point
//! concurrency sweep with two trials, injected errors, the probe and per-GPU
//! normalisation; then the report's content, escaping and structure, and the errors
//! for an unknown run and a run without load points.
//!
//! Set `SERVESCOPE_REPORT_OUT=/path/report.html` to keep the rendered page.

use std::sync::Arc;

use servescope_coordinator::orchestration::load::metrics::AggregateOptions;
use servescope_coordinator::orchestration::load::request::{Api, Target};
use servescope_coordinator::orchestration::load::runner::{run_load, LoadConfig, LoadProgress};
use servescope_coordinator::orchestration::load::schedule::Arrival;
use servescope_coordinator::orchestration::load::workload::RandomWorkload;
use servescope_coordinator::report::{self, ReportError};
use servescope_coordinator::store::{RunKind, StoreError};
use servescope_coordinator::Store;
use servescope_sim::{Faults, SimConfig};

const LABEL: &str = "sim <b>\"fast\" & co</b>";

async fn load_run(db: &std::path::Path) -> i64 {
    let cfg = SimConfig {
        prefill_base_s: 0.01,
        prefill_s_per_token: 0.0001,
        decode_s_per_token: 0.002,
        faults: Faults {
            error_rate: 0.2,
            ..Faults::default()
        },
        seed: 7,
        ..SimConfig::default()
    };
    let sim = servescope_sim::start(cfg, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let lc = LoadConfig {
        target: Target {
            base_url: sim.url(),
            api: Api::Completions,
            model: "servescope-sim".into(),
            request_id_prefix: "rep-".into(),
            sse_limits: Default::default(),
        },
        points: vec![
            Arrival::Closed { concurrency: 1 },
            Arrival::Closed { concurrency: 4 },
        ],
        num_prompts: Some(5),
        duration: None,
        warmup: 1,
        trials: 2,
        workload: RandomWorkload {
            input_tokens: 32,
            output_tokens: 16,
            ignore_eos: true,
            seed: 1,
        }
        .into(),
        probe: true,
        aggregate: AggregateOptions {
            gpus: Some(2),
            ..AggregateOptions::default()
        },
        db: db.to_path_buf(),
        label: LABEL.into(),
        max_connections: 16,
        point_hook: None,
        resume: None,
    };
    let (run, points) = run_load(lc, Arc::new(LoadProgress::default()))
        .await
        .unwrap();
    assert_eq!(points.len(), 4);
    sim.shutdown().await;
    run
}

fn count(hay: &str, needle: &str) -> usize {
    hay.matches(needle).count()
}

#[tokio::test]
async fn report_of_a_real_load_run() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let run = load_run(&db).await;

    let data = report::load_runs(&db, &[run]).unwrap();
    assert_eq!(data.len(), 1);
    assert_eq!(data[0].points.len(), 4);
    // per-request samples of successes only, from the requests table
    for p in &data[0].points {
        let s = &data[0].samples[&p.id];
        assert_eq!(s.e2el_ms.len() as u64, p.aggregate.completed);
        assert_eq!(s.ttft_ms.len() as u64, p.aggregate.completed);
        assert!(s.e2el_ms.iter().all(|v| *v > 0.0));
    }
    let failed: u64 = data[0].points.iter().map(|p| p.aggregate.failed).sum();

    let out = dir.path().join("report.html");
    report::write_report(&db, &[run], &out).unwrap();
    let html = std::fs::read_to_string(&out).unwrap();
    if let Ok(keep) = std::env::var("SERVESCOPE_REPORT_OUT") {
        std::fs::write(keep, &html).unwrap();
    }

    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.trim_end().ends_with("</html>"));
    // self-contained: no script, no external resource
    assert!(!html.to_ascii_lowercase().contains("<script"));
    assert!(!html.contains(" src=") && !html.contains("href="));
    assert!(!html.contains("<link") && !html.contains("@import") && !html.contains("url("));
    // balanced SVG elements: one per chart, each closed
    let svgs = count(&html, "<svg");
    assert_eq!(svgs, count(&html, "</svg>"));
    assert!(svgs >= 9, "{svgs} charts");
    for title in [
        "Output throughput vs load",
        "Output throughput per GPU",
        "Time to first token",
        "Time per output token",
        "Throughput vs TPOT",
        "Throughput vs end-to-end latency",
        "TTFT CDF per point",
        "E2E latency CDF per point",
        "concurrency (requests in flight)",
        "TTFT (ms)",
        "output tokens/s",
        "fraction of requests",
    ] {
        assert!(html.contains(title), "missing {title}");
    }
    assert!(!html.contains("no data"), "an empty chart");
    // the label is escaped everywhere, never raw
    assert!(!html.contains(LABEL));
    assert!(html.contains("sim &lt;b&gt;&quot;fast&quot; &amp; co&lt;/b&gt;"));
    // points labelled by concurrency, legends name the run
    assert!(html.contains(">c=1</text>") && html.contains(">c=4</text>"));
    assert!(html.contains(">c=4 (n=") && html.contains(&format!("per point · run {run} · sim")));
    // whiskers for two trials, no NaN coordinates
    assert!(!html.contains("NaN"));
    // tables: summary, failures by class, probe verdicts
    assert!(html.contains("<h2>Summary</h2>") && html.contains("Failures and output probe"));
    if failed > 0 {
        assert!(html.contains("http_500: "), "failures by class");
        assert!(
            html.contains("HTTP 500 Internal Server Error: injected fault: server error"),
            "the server's message in the failure table"
        );
    }
    assert!(html.contains("<td class=\"ok\">ok</td>"));
    // every opened table and div is closed
    assert_eq!(count(&html, "<table>"), count(&html, "</table>"));
    assert_eq!(count(&html, "<div"), count(&html, "</div>"));
    assert_eq!(count(&html, "<text"), count(&html, "</text>"));
}

#[tokio::test]
async fn unknown_run_and_run_without_points_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let store = Store::open(&db).unwrap();
    let rec = store
        .create_run(RunKind::Record, "telemetry", 1, "{}")
        .unwrap();
    drop(store);
    match report::load_runs(&db, &[rec + 100]) {
        Err(ReportError::Store(StoreError::NoRun(id))) => assert_eq!(id, rec + 100),
        other => panic!("{other:?}"),
    }
    let e = report::load_runs(&db, &[rec]).unwrap_err();
    assert!(matches!(e, ReportError::NoPoints(id) if id == rec));
    assert!(e.to_string().contains("no load points"), "{e}");
    assert!(matches!(
        report::load_runs(&db, &[]),
        Err(ReportError::NoRuns)
    ));
    let missing = dir.path().join("nope.db");
    assert!(matches!(
        report::load_runs(&missing, &[1]),
        Err(ReportError::NoStore(_))
    ));
    assert!(!missing.exists(), "a report must not create a store");
}
