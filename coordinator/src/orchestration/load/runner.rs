//! A load run: a sweep of points (concurrencies or rates) × trials against one
//! endpoint, each point with optional warm-up requests and a correctness probe,
//! every request stored, and the aggregate (vLLM definitions) per point.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::http::HttpClient;
use super::metrics::{aggregate, Aggregate, AggregateOptions, MetricsError};
use super::request::{execute, Clock, Outcome, Target};
use super::schedule::{run, Arrival, Plan, PlanError};
use super::workload::{counting_probe, Prepared, Workload};
use crate::store::{
    arrival_json, ErrorSample, LoadPoint, PointConfig, ProbeVerdict, RunKind, RunLinks, Store,
    StoreError, ERRORS_SHOWN,
};

/// What to run.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    pub target: Target,
    /// One point per arrival pattern (a sweep).
    pub points: Vec<Arrival>,
    pub num_prompts: Option<usize>,
    pub duration: Option<Duration>,
    /// Requests sent before each point and not measured (stored, flagged).
    pub warmup: usize,
    pub trials: usize,
    /// Reseeded for every point and trial ([`Workload::reseeded`]).
    pub workload: Workload,
    /// Send the counting probe after each point.
    pub probe: bool,
    pub aggregate: AggregateOptions,
    pub db: PathBuf,
    pub label: String,
    pub max_connections: usize,
    /// Called right before and right after each measured point (after its warm-up,
    /// before its probe), e.g. to scrape the engines' metrics at the point's edges.
    pub point_hook: Option<PointHook>,
    /// Continue this interrupted run (of the sweep's kind): the points and trials it
    /// stored are skipped, the rest run into it with fresh request indices. A point
    /// commits with its requests, so one cut short left nothing and runs again.
    pub resume: Option<i64>,
}

/// Which edge of which point a [`PointHook`] call is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PointMark {
    pub point: usize,
    pub trial: usize,
    /// false: before the point's first request; true: after its last one finished.
    pub end: bool,
}

/// The function of a [`PointHook`].
pub type PointHookFn = dyn Fn(PointMark) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>
    + Send
    + Sync;

/// An async callback at point edges.
#[derive(Clone)]
pub struct PointHook(pub Arc<PointHookFn>);

impl std::fmt::Debug for PointHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PointHook")
    }
}

/// One measured point.
#[derive(Debug, Clone)]
pub struct PointResult {
    pub point: usize,
    pub label: String,
    /// Its arrival, trial, largest dispatcher lag and probe verdict, as stored.
    pub config: PointConfig,
    pub aggregate: Aggregate,
    /// What its failed requests said, most frequent first (as stored).
    pub errors: Vec<ErrorSample>,
}

/// Live progress for a CLI.
#[derive(Debug, Default)]
pub struct LoadProgress {
    pub point: AtomicUsize,
    pub points: AtomicUsize,
    pub done: AtomicUsize,
    pub failed: AtomicUsize,
    /// Requests planned for the current point (0: bounded by duration only).
    pub planned: AtomicUsize,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Metrics(#[from] MetricsError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("nothing to run: give at least one --concurrency or --request-rate")]
    NoPoints,
}

/// Human label of a point.
pub fn point_label(a: &Arrival) -> String {
    match a {
        Arrival::Closed { concurrency } => format!("concurrency {concurrency}"),
        Arrival::Open {
            rate,
            burstiness,
            max_concurrency,
        } => {
            let mut s = format!("rate {rate}/s");
            if (*burstiness - 1.0).abs() > f64::EPSILON {
                s.push_str(&format!(" burstiness {burstiness}"));
            }
            if let Some(c) = max_concurrency {
                s.push_str(&format!(" max-concurrency {c}"));
            }
            s
        }
    }
}

async fn send_all(
    client: &HttpClient,
    target: &Arc<Target>,
    workload: &Arc<Prepared>,
    plan: &Plan,
    offset: usize,
    clock: Clock,
    progress: &Arc<LoadProgress>,
) -> Result<Vec<Outcome>, PlanError> {
    run(plan, |slot| {
        let (client, target, w, progress) = (
            client.clone(),
            Arc::clone(target),
            Arc::clone(workload),
            Arc::clone(progress),
        );
        async move {
            let mut slot = slot;
            slot.index += offset;
            let o = execute(&client, &target, &w.prompt(slot.index), slot, &clock).await;
            progress.done.fetch_add(1, Ordering::Relaxed);
            if o.record.error.is_some() {
                progress.failed.fetch_add(1, Ordering::Relaxed);
            }
            o
        }
    })
    .await
}

/// Makes the prompts of requests `start..start + n` before they are scheduled (off
/// the async workers), so tokenizing is not in anyone's latency; requests past them
/// (`--duration`) make theirs when sent.
async fn prepare(w: &Workload, start: usize, n: usize) -> Arc<Prepared> {
    let w = w.clone();
    match tokio::task::spawn_blocking(move || w.prepare(start, n)).await {
        Ok(p) => Arc::new(p),
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// Runs the sweep as a `load` run, storing as it goes. Returns the run id and the
/// points.
pub async fn run_load(
    cfg: LoadConfig,
    progress: Arc<LoadProgress>,
) -> Result<(i64, Vec<PointResult>), LoadError> {
    run_sweep(cfg, RunKind::Load, RunLinks::default(), progress).await
}

/// Runs the sweep as a run of `kind` (a sweep that is part of a larger run, e.g. a
/// `pd` run) with its `links`, storing as it goes.
pub async fn run_sweep(
    cfg: LoadConfig,
    kind: RunKind,
    links: RunLinks,
    progress: Arc<LoadProgress>,
) -> Result<(i64, Vec<PointResult>), LoadError> {
    if cfg.points.is_empty() {
        return Err(LoadError::NoPoints);
    }
    let mut store = Store::open(&cfg.db)?;
    let args = json!({
        "endpoint": cfg.target.base_url, "api": cfg.target.api.path(), "model": cfg.target.model,
        "points": cfg.points.iter().map(arrival_json).collect::<Vec<_>>(),
        "num_prompts": cfg.num_prompts, "duration_s": cfg.duration.map(|d| d.as_secs_f64()),
        "warmup": cfg.warmup, "trials": cfg.trials,
        "input_tokens": cfg.workload.lengths().0, "output_tokens": cfg.workload.lengths().1,
        "workload": cfg.workload.describe_json(),
        "gpus": cfg.aggregate.gpus, "replicas": cfg.aggregate.replicas,
    });
    let (run_id, done, mut next_index) = match cfg.resume {
        Some(run) => {
            let r = store.resume_sweep(run, kind)?;
            // The probe after the last stored point used the index past its requests.
            (run, r.done, r.next_index + usize::from(cfg.probe))
        }
        None => {
            let run = store.create_linked_run(
                kind,
                &cfg.label,
                servescope_proto::now_ns(),
                &args.to_string(),
                &links,
            )?;
            (run, Vec::new(), 0)
        }
    };
    let client = HttpClient::new(cfg.max_connections);
    let target = Arc::new(cfg.target.clone());
    let trials = cfg.trials.max(1);
    progress
        .points
        .store(cfg.points.len() * trials, Ordering::Relaxed);
    let mut results = Vec::new();
    let mut status = "done";
    for (pi, arrival) in cfg.points.iter().enumerate() {
        for trial in 0..trials {
            if done.contains(&(pi as i64, trial as i64)) {
                continue;
            }
            progress.point.store(pi * trials + trial, Ordering::Relaxed);
            progress.done.store(0, Ordering::Relaxed);
            progress.failed.store(0, Ordering::Relaxed);
            // Fresh prompts for every point and trial: no accidental prefix-cache hits
            // (prefix-repetition keeps its prefixes within the point).
            let workload = cfg
                .workload
                .reseeded(cfg.workload.seed() ^ ((pi as u64) << 32 | trial as u64));
            let clock = Clock::new();
            let mut warm = Vec::new();
            if cfg.warmup > 0 {
                let plan = Plan {
                    arrival: arrival.clone(),
                    num_requests: Some(cfg.warmup),
                    duration: None,
                    seed: cfg.workload.seed(),
                };
                progress.planned.store(cfg.warmup, Ordering::Relaxed);
                let prompts = prepare(&workload, next_index, cfg.warmup).await;
                warm = send_all(
                    &client, &target, &prompts, &plan, next_index, clock, &progress,
                )
                .await?;
                next_index += cfg.warmup;
                progress.done.store(0, Ordering::Relaxed);
                progress.failed.store(0, Ordering::Relaxed);
            }
            let plan = Plan {
                arrival: arrival.clone(),
                num_requests: cfg.num_prompts,
                duration: cfg.duration,
                seed: cfg.workload.seed().wrapping_add(trial as u64),
            };
            progress
                .planned
                .store(cfg.num_prompts.unwrap_or(0), Ordering::Relaxed);
            let prompts = prepare(&workload, next_index, cfg.num_prompts.unwrap_or(0)).await;
            let mark = |end| PointMark {
                point: pi,
                trial,
                end,
            };
            if let Some(h) = &cfg.point_hook {
                (h.0)(mark(false)).await;
            }
            let started = servescope_proto::now_ns();
            let outcomes = send_all(
                &client, &target, &prompts, &plan, next_index, clock, &progress,
            )
            .await?;
            let ended = servescope_proto::now_ns();
            if let Some(h) = &cfg.point_hook {
                (h.0)(mark(true)).await;
            }
            next_index += outcomes.len();
            let probe = if cfg.probe {
                let slot = super::schedule::Slot {
                    index: next_index,
                    scheduled: tokio::time::Instant::now(),
                    dispatch_lag: Duration::ZERO,
                };
                next_index += 1;
                let o = execute(&client, &target, &counting_probe(1, 8, 4), slot, &clock).await;
                Some(match o.record.error {
                    None => ProbeVerdict::passed(),
                    Some(e) => ProbeVerdict::failed(format!(
                        "{}: {}",
                        e.key(),
                        o.error_detail.unwrap_or_default()
                    )),
                })
            } else {
                None
            };
            let records: Vec<_> = outcomes.iter().map(|o| o.record.clone()).collect();
            let agg = aggregate(&records, &cfg.aggregate)?;
            let max_lag = outcomes
                .iter()
                .map(|o| o.dispatch_lag.as_secs_f64() * 1e3)
                .fold(0.0, f64::max);
            let label = point_label(arrival);
            let config = PointConfig {
                arrival: arrival.clone(),
                trial,
                max_dispatch_lag_ms: Some(max_lag),
                probe,
                exp: None,
            };
            let point_id = store.save_point(
                run_id,
                &LoadPoint {
                    point: pi as i64,
                    trial: trial as i64,
                    label: &label,
                    config: &config,
                    aggregate: &agg,
                    outcomes: &outcomes,
                    warmup: &warm,
                    span_ns: (started, ended),
                },
            )?;
            if agg.completed == 0 && agg.num_requests > 0 {
                status = "failed";
            }
            results.push(PointResult {
                point: pi,
                label,
                config,
                aggregate: agg,
                errors: store.point_errors(point_id, ERRORS_SHOWN)?,
            });
        }
    }
    store.finish_run(run_id, servescope_proto::now_ns(), status)?;
    Ok((run_id, results))
}
