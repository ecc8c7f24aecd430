//! Rules on load runs (plain and pd), through stored points and outcomes.

use std::time::Duration;

use servescope_loadgen::metrics::{
    aggregate, AggregateOptions, ChunkArrival, ErrorClass, RequestRecord,
};
use servescope_loadgen::request::Outcome;
use servescope_loadgen::schedule::Arrival;

use super::*;
use crate::store::{LoadPoint, PointConfig, ProbeVerdict};

fn outcome(i: usize, ttft_ms: u64, error: Option<(u16, &str)>, lag_ms: u64) -> Outcome {
    let start = 1_000_000_000 + i as u64 * 1_000_000;
    let first = start + ttft_ms * 1_000_000;
    Outcome {
        index: i,
        request_id: format!("r{i}"),
        record: RequestRecord {
            scheduled_ns: start,
            send_ns: start,
            first_byte_ns: error.is_none().then_some(first),
            first_token_ns: error.is_none().then_some(first),
            chunks: if error.is_none() {
                (0..4)
                    .map(|k| ChunkArrival {
                        at_ns: first + k * 5_000_000,
                        tokens: 1,
                    })
                    .collect()
            } else {
                Vec::new()
            },
            last_byte_ns: Some(first + 20_000_000),
            finished_ns: first + 20_000_000,
            input_tokens: 16,
            output_tokens: if error.is_none() { 4 } else { 0 },
            error: error.map(|(s, _)| {
                if s == 0 {
                    ErrorClass::WrongOutput
                } else {
                    ErrorClass::HttpStatus(s)
                }
            }),
        },
        status: Some(error.map_or(200, |(s, _)| if s == 0 { 200 } else { s })),
        usage: None,
        server_metrics: None,
        dispatch_lag: Duration::from_millis(lag_ms),
        text: None,
        error_detail: error.map(|(_, b)| b.to_string()),
    }
}

pub(super) struct Pt {
    concurrency: usize,
    outcomes: Vec<Outcome>,
    probe: Option<ProbeVerdict>,
    /// (median TTFT ms, req/s, peak in flight) overriding the computed aggregate.
    shape: Option<(f64, f64, u64)>,
}

pub(super) fn pt(concurrency: usize, outcomes: Vec<Outcome>) -> Pt {
    Pt {
        concurrency,
        outcomes,
        probe: None,
        shape: None,
    }
}

pub(super) fn load_run(st: &mut Store, kind: RunKind, pts: &[Pt]) -> i64 {
    let run = st.create_run(kind, "load", T0, "{}").unwrap();
    for (i, p) in pts.iter().enumerate() {
        let recs: Vec<RequestRecord> = p.outcomes.iter().map(|o| o.record.clone()).collect();
        let mut agg = aggregate(&recs, &AggregateOptions::default()).unwrap();
        if let Some((ttft, rps, peak)) = p.shape {
            agg.ttft_ms.median = ttft;
            agg.request_throughput = rps;
            agg.peak_concurrency = peak;
        }
        let cfg = PointConfig {
            arrival: Arrival::Closed {
                concurrency: p.concurrency,
            },
            trial: 0,
            max_dispatch_lag_ms: Some(0.0),
            probe: p.probe.clone(),
            exp: None,
        };
        let label = format!("concurrency {}", p.concurrency);
        st.save_point(
            run,
            &LoadPoint {
                point: i as i64,
                trial: 0,
                label: &label,
                config: &cfg,
                aggregate: &agg,
                outcomes: &p.outcomes,
                warmup: &[],
                span_ns: (T0 + i as u64 * 10 * TICK, T0 + (i as u64 + 1) * 10 * TICK),
            },
        )
        .unwrap();
    }
    st.finish_run(run, T0 + 100 * TICK, "done").unwrap();
    run
}

pub(super) fn fine(n: usize) -> Vec<Outcome> {
    (0..n).map(|i| outcome(i, 20, None, 0)).collect()
}

#[test]
fn a_clean_load_run_raises_nothing() {
    let mut st = Store::in_memory().unwrap();
    let run = load_run(&mut st, RunKind::Load, &[pt(1, fine(4)), pt(2, fine(4))]);
    assert!(rules(&st, run).is_empty(), "{:?}", rules(&st, run));
}

#[test]
fn a_run_where_every_request_failed_is_named_with_its_first_error() {
    let mut st = Store::in_memory().unwrap();
    let body =
        "This model's maximum context length is 1024 tokens. However, you requested 4000 tokens";
    let bad = (0..4)
        .map(|i| outcome(i, 0, Some((400, body)), 0))
        .collect();
    let run = load_run(&mut st, RunKind::Load, &[pt(2, bad)]);
    let f = only_in(&st, run, "all_requests_failed");
    let e = f[0].evidence.join("\n");
    assert!(
        e.contains("4 of 4 requests failed")
            && e.contains("HTTP 400 ×4")
            && e.contains("http_400 ×4"),
        "{e}"
    );
    assert!(
        e.contains("first error (request r0): HTTP 400: This model's maximum context length"),
        "{e}"
    );
    assert_eq!(f[0].title, "Every request of the run failed");
}

/// A point whose output probe read gibberish.
fn gibberish() -> Pt {
    Pt {
        probe: Some(ProbeVerdict {
            ok: false,
            detail: Some("gibberish".into()),
        }),
        ..pt(2, fine(4))
    }
}

#[test]
fn wrong_output_on_a_plain_run_does_not_blame_the_kv_transfer() {
    let mut st = Store::in_memory().unwrap();
    let run = load_run(&mut st, RunKind::Load, &[gibberish()]);
    assert_eq!(rules(&st, run), ["wrong_output"]);
    // The attribution of a plain run does not raise the P/D rule either.
    let a = attribute(&st, run, &AttributeOptions::default()).unwrap();
    assert!(!a.disaggregated);
    assert!(
        a.findings
            .iter()
            .all(|f| f.rule != "gibberish_after_transfer"),
        "{:#?}",
        a.findings
    );
    // The same output on a pd run is the P/D rule's.
    let run = load_run(&mut st, RunKind::Pd, &[gibberish()]);
    assert_eq!(rules(&st, run), ["gibberish_after_transfer"]);
}

#[test]
fn a_sweep_past_saturation_is_named_and_a_scaling_one_is_not() {
    // A sweep over concurrency 1, 2, 4, 8 with these (TTFT, req/s, in flight).
    let sweep = |st: &mut Store, shapes: [(f64, f64, u64); 4]| -> i64 {
        let pts: Vec<Pt> = [1, 2, 4, 8]
            .iter()
            .zip(shapes)
            .map(|(c, s)| Pt {
                shape: Some(s),
                ..pt(*c, fine(4))
            })
            .collect();
        load_run(st, RunKind::Load, &pts)
    };
    let mut st = Store::in_memory().unwrap();
    let knee = [
        (10.0, 10.0, 1),
        (11.0, 19.0, 2),
        (30.0, 20.0, 4),
        (70.0, 20.5, 8),
    ];
    let run = sweep(&mut st, knee);
    let f = only_in(&st, run, "load_past_saturation");
    assert!(
        f[0].title.contains("2 point(s)") && f[0].fix.contains("Beyond concurrency 2"),
        "{:?}",
        f[0]
    );
    let scaling = [
        (10.0, 10.0, 1),
        (11.0, 19.0, 2),
        (13.0, 36.0, 4),
        (20.0, 60.0, 8),
    ];
    let run = sweep(&mut st, scaling);
    assert!(rules(&st, run).is_empty());
}

#[test]
fn a_lagging_client_is_named_on_a_plain_run() {
    let mut st = Store::in_memory().unwrap();
    let run = load_run(
        &mut st,
        RunKind::Load,
        &[pt(2, (0..4).map(|i| outcome(i, 20, None, 50)).collect())],
    );
    assert_eq!(rules(&st, run), ["load_client_saturated"]);
}
