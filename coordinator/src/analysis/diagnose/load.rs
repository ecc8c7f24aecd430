//! Load rules over a run's stored points and requests: every request failed, wrong
//! output on a plain (non-disaggregated) deployment, a sweep past saturation, a
//! load client that could not keep its schedule.

use std::collections::BTreeMap;

use super::{Finding, PointFacts, RunFacts, Severity};
use crate::analysis::pd::diagnose::CLIENT_LAG_MS;
use servescope_loadgen::stats::percentile;

/// Longest error body quoted as evidence (characters).
pub const ERROR_BODY_CHARS: usize = 300;
/// Past saturation: each step of the sweep's top grows median TTFT by at least this
/// factor…
pub const SATURATION_TTFT_GROWTH: f64 = 1.25;
/// …while request throughput grows by less than this share…
pub const SATURATION_THROUGHPUT_GAIN: f64 = 0.10;
/// …for at least this many consecutive steps.
pub const SATURATION_MIN_STEPS: usize = 2;

fn all_failed(p: &PointFacts) -> bool {
    let a = &p.row.aggregate;
    a.num_requests > 0 && a.completed == 0
}

fn first_error(p: &PointFacts) -> Option<String> {
    let r = p.requests.iter().find(|r| r.error_class.is_some())?;
    let body: String = r
        .error_detail
        .as_deref()
        .unwrap_or("(no body kept)")
        .chars()
        .take(ERROR_BODY_CHARS)
        .collect();
    Some(format!(
        "first error (request {}): {}{}",
        r.request_id,
        r.status.map_or(String::new(), |s| format!("HTTP {s}: ")),
        body
    ))
}

pub fn all_requests_failed(f: &RunFacts) -> Option<Finding> {
    let bad: Vec<&PointFacts> = f.points.iter().filter(|p| all_failed(p)).collect();
    if bad.is_empty() {
        return None;
    }
    let mut evidence = Vec::new();
    for p in &bad {
        let a = &p.row.aggregate;
        let mut statuses: BTreeMap<String, u64> = BTreeMap::new();
        for r in p.requests.iter().filter(|r| r.error_class.is_some()) {
            let k = r
                .status
                .map_or("no HTTP status".to_string(), |s| format!("HTTP {s}"));
            *statuses.entry(k).or_default() += 1;
        }
        let join = |m: &BTreeMap<String, u64>| {
            m.iter()
                .map(|(k, n)| format!("{k} ×{n}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        evidence.push(format!(
            "{}: {} of {} requests failed; {}; error classes: {}",
            p.row.label,
            a.failed,
            a.num_requests,
            join(&statuses),
            join(
                &a.errors_by_class
                    .iter()
                    .map(|(k, v)| (k.clone(), *v))
                    .collect()
            )
        ));
        if let Some(e) = first_error(p) {
            evidence.push(format!("{}: {e}", p.row.label));
        }
    }
    let every = bad.len() == f.points.len();
    Some(Finding {
        rule: "all_requests_failed",
        severity: Severity::Critical,
        title: if every {
            "Every request of the run failed".into()
        } else {
            format!("Every request of {} of {} points failed", bad.len(), f.points.len())
        },
        evidence,
        fix: "Nothing was measured at these points: read the first error body (a wrong model name, a prompt longer than --max-model-len, an endpoint path or auth problem, a server that was not ready) and rerun; the latency and throughput of these points are empty, not zero.".into(),
    })
}

/// One evidence line per point that `line` speaks of, on a run without KV
/// transfer; none on a disaggregated run, whose attribution has its own rules.
fn plain_run_evidence(
    f: &RunFacts,
    line: impl FnMut(&PointFacts) -> Option<String>,
) -> Vec<String> {
    if f.disaggregated() {
        return Vec::new();
    }
    f.points.iter().filter_map(line).collect()
}

/// Wrong output on a deployment without KV transfer (a disaggregated run's wrong
/// output is the P/D rule `gibberish_after_transfer`).
pub fn wrong_output(f: &RunFacts) -> Option<Finding> {
    let evidence = plain_run_evidence(f, |p| {
        let probe = p.row.config.probe.as_ref();
        let wrong = p
            .row
            .aggregate
            .errors_by_class
            .get("wrong_output")
            .copied()
            .unwrap_or(0);
        if probe.is_none_or(|v| v.ok) && wrong == 0 {
            return None;
        }
        Some(format!(
            "{}: correctness probe {}; {wrong} request(s) with wrong output",
            p.row.label,
            match probe {
                Some(v) if !v.ok =>
                    format!("failed ({})", v.detail.as_deref().unwrap_or("no detail")),
                Some(_) => "passed".into(),
                None => "not sent".into(),
            }
        ))
    });
    (!evidence.is_empty()).then(|| Finding {
        rule: "wrong_output",
        severity: Severity::Critical,
        title: "The server answers wrong output".into(),
        evidence,
        fix: "The engine serves but its answers are wrong: check the model and tokenizer it loaded, the chat template, the dtype/quantization and kernel options (an attention backend or CUDA graph bug), and compare one prompt against a reference deployment; throughput numbers of these points are meaningless.".into(),
    })
}

/// The offered load of a point: its concurrency, else its request rate.
fn offered(p: &PointFacts) -> Option<f64> {
    p.row
        .config
        .concurrency()
        .map(|c| c as f64)
        .or_else(|| p.row.config.request_rate())
        .filter(|x| x.is_finite())
}

pub fn load_past_saturation(f: &RunFacts) -> Option<Finding> {
    let mut pts: Vec<(&PointFacts, f64)> = f
        .points
        .iter()
        .filter(|p| p.row.trial == 0 && p.row.aggregate.ttft_ms.count > 0)
        .filter_map(|p| Some((p, offered(p)?)))
        .collect();
    pts.sort_by(|a, b| a.1.total_cmp(&b.1));
    // Steps from the top of the sweep down while each one is "saturated".
    let mut steps = 0;
    for w in pts.windows(2).rev() {
        let (lo, hi) = (&w[0].0.row.aggregate, &w[1].0.row.aggregate);
        let ttft_up = hi.ttft_ms.median >= SATURATION_TTFT_GROWTH * lo.ttft_ms.median;
        let flat =
            hi.request_throughput < (1.0 + SATURATION_THROUGHPUT_GAIN) * lo.request_throughput;
        let busier = hi.peak_concurrency >= lo.peak_concurrency;
        if !(ttft_up && flat && busier) {
            break;
        }
        steps += 1;
    }
    if steps < SATURATION_MIN_STEPS {
        return None;
    }
    let knee = pts.len() - 1 - steps;
    let evidence = pts[knee..]
        .iter()
        .map(|(p, x)| {
            let a = &p.row.aggregate;
            format!(
                "{} (offered {x}): median TTFT {:.1} ms, {:.2} req/s, up to {} in flight",
                p.row.label, a.ttft_ms.median, a.request_throughput, a.peak_concurrency
            )
        })
        .collect();
    Some(Finding {
        rule: "load_past_saturation",
        severity: Severity::Warning,
        title: format!("The sweep ran {steps} point(s) past saturation"),
        evidence,
        fix: format!(
            "Beyond {} throughput no longer grows while TTFT and the requests in flight keep rising: those points measure queueing in front of a saturated server, not its capacity. Stop the sweep there (fewer, finer points around the knee) or add capacity.",
            pts[knee].0.row.label
        ),
    })
}

pub fn load_client_saturated(f: &RunFacts) -> Option<Finding> {
    // A disaggregated run's attribution names it (`client_saturation`).
    let evidence = plain_run_evidence(f, |p| {
        let mut lags: Vec<f64> = p
            .requests
            .iter()
            .map(|r| r.dispatch_lag_ns as f64 / 1e6)
            .collect();
        let max = lags
            .iter()
            .copied()
            .fold(p.row.config.max_dispatch_lag_ms.unwrap_or(0.0), f64::max);
        let p99 = percentile(&mut lags, 99.0).or(p.row.config.max_dispatch_lag_ms)?;
        (p99 > CLIENT_LAG_MS).then(|| {
            format!(
                "{}: requests left {p99:.1} ms behind the client's schedule (p99; max {max:.1} ms)",
                p.row.label
            )
        })
    });
    (!evidence.is_empty()).then(|| Finding {
        rule: "load_client_saturated",
        severity: Severity::Critical,
        title: "The load client could not keep its schedule".into(),
        evidence,
        fix: "The lag is the client's, not the server's: run the client on a less loaded machine, split it into shards on agents (servescope load --shards), or lower the request rate; these points overstate server latency.".into(),
    })
}
