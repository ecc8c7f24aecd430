//! Analyses of a stored experiment:
//!
//! * **horizontal scaling**: for each workload point (lengths, mode, load per
//!   replica), request and output-token throughput per replica and per GPU against the
//!   replica count, and the scaling efficiency T(N) / (N · T(1)) against the
//!   deployment with one replica; a point whose client lagged its own schedule
//!   (dispatch lag p99 > 10 ms) is flagged: there the client, not the servers, bounded it;
//! * **deployment matrix**: each metric side by side for every deployment at each
//!   workload point, GPU-normalised, as mean ± standard deviation over trials, with
//!   the difference to the first deployment and whether it is inside the noise
//!   (|Δ| < 2·√(s₁²/n₁ + s₂²/n₂); a single trial has no noise estimate).
//!
//! Every statistic is recomputed from the stored aggregates, which were pooled over
//! the shards' requests (never averaged across shards).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::store::{ExpPointFacts, RunKind, Store};
use servescope_loadgen::metrics::Aggregate;
use servescope_loadgen::stats::percentile;

/// Client dispatch lag (p99, ms) above which a point is client-bound.
pub const CLIENT_LAG_MS: f64 = 10.0;

/// A stored point with its deployment facts.
#[derive(Debug, Clone, Serialize)]
pub struct PointView {
    pub key: String,
    pub deployment: String,
    pub replicas: u32,
    pub gpus: u32,
    pub labels: BTreeMap<String, String>,
    /// `input:output/mode/nominal` — the workload point, the same across deployments.
    pub group: String,
    pub nominal: f64,
    pub trial: i64,
    pub status: String,
    pub detail: Option<String>,
    pub run_id: i64,
    pub point_id: i64,
    pub aggregate: Aggregate,
    pub dispatch_lag_p99_ms: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ScalingRow {
    pub group: String,
    pub deployment: String,
    pub replicas: u32,
    pub gpus: u32,
    pub request_throughput: f64,
    pub output_throughput: f64,
    pub per_replica_rps: f64,
    pub per_gpu_output_tps: f64,
    /// T(N) / (N · T(1)), request throughput.
    pub efficiency: Option<f64>,
    pub client_bound: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct MatrixCell {
    pub deployment: String,
    pub mean: f64,
    pub std: f64,
    pub n: usize,
    pub delta: Option<f64>,
    /// None: no noise estimate (one trial on either side).
    pub within_noise: Option<bool>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MatrixRow {
    pub group: String,
    pub metric: &'static str,
    pub cells: Vec<MatrixCell>,
}

/// Errors of experiments.
#[derive(Debug, thiserror::Error)]
pub enum ExpError {
    #[error("experiment file, line {line}{}: {message}", if field.is_empty() { String::new() } else { format!(", field {field}") })]
    File {
        line: usize,
        field: String,
        message: String,
    },
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("deployment {deployment}: {message}")]
    Deploy { deployment: String, message: String },
    #[error("shard on {agent}: {message}")]
    Shard { agent: String, message: String },
    #[error("interrupted: {done} point(s) stored, {left} left; run the same file again to finish")]
    Interrupted { done: usize, left: usize },
    #[error("no experiment named {0:?} in the store")]
    Unknown(String),
    #[error(transparent)]
    Metrics(#[from] servescope_loadgen::metrics::MetricsError),
}

/// One preflight finding.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct PreflightFinding {
    pub agent: String,
    pub severity: String,
    pub title: String,
    pub evidence: String,
    pub fix: String,
}

/// A deployment's startup as the experiment saw it.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize, PartialEq)]
pub struct StartupRow {
    pub deployment: String,
    /// Deploy step start → `GET /v1/models` answering.
    pub ready_s: f64,
    /// (phase, seconds) from the startup log lines the agents streamed.
    pub phases: Vec<(String, f64)>,
    pub note: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExpAnalysis {
    pub name: String,
    pub status: String,
    pub points: Vec<PointView>,
    pub scaling: Vec<ScalingRow>,
    pub matrix: Vec<MatrixRow>,
    pub warnings: Vec<String>,
    /// The latest fabric preflight's findings (`analyses: [fabric_check]`).
    pub preflight: Option<Vec<PreflightFinding>>,
    /// Runs holding the agents' telemetry of the experiment: (run, label).
    pub telemetry_runs: Vec<(i64, String)>,
    /// Each deployed deployment's startup (`analyses: [startup]`).
    pub startup: Vec<StartupRow>,
}

fn mean_std(v: &[f64]) -> (f64, f64) {
    if v.is_empty() {
        return (0.0, 0.0);
    }
    let m = v.iter().sum::<f64>() / v.len() as f64;
    let var = if v.len() > 1 {
        v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() - 1) as f64
    } else {
        0.0
    };
    (m, var.sqrt())
}

/// Loads and analyses experiment `name`.
pub fn analyze(store: &Store, name: &str) -> Result<ExpAnalysis, ExpError> {
    let e = store
        .experiment(name)?
        .ok_or_else(|| ExpError::Unknown(name.to_string()))?;
    let mut points = Vec::new();
    for row in store.exp_points(e.id)? {
        let Some(pr) = store
            .points(row.run_id)?
            .into_iter()
            .find(|p| p.id == row.point_id)
        else {
            continue;
        };
        let c = &pr.config;
        let facts = c.exp.clone().unwrap_or_else(|| ExpPointFacts {
            deployment: row.deployment.clone(),
            nominal: 0.0,
            input_tokens: 0,
            output_tokens: 0,
            workload_mode: "mixed".into(),
            gpus: 1,
            replicas: 1,
            labels: BTreeMap::new(),
        });
        let mut lags: Vec<f64> = store
            .point_requests(row.point_id)?
            .iter()
            .map(|r| r.dispatch_lag_ns as f64 / 1e6)
            .collect();
        let group = format!(
            "{}:{}/{}/{}",
            facts.input_tokens, facts.output_tokens, facts.workload_mode, facts.nominal
        );
        points.push(PointView {
            key: row.key,
            deployment: row.deployment,
            replicas: facts.replicas,
            gpus: facts.gpus,
            labels: facts.labels,
            group,
            nominal: facts.nominal,
            trial: c.trial as i64,
            status: row.status,
            detail: row.detail,
            run_id: row.run_id,
            point_id: row.point_id,
            aggregate: pr.aggregate,
            dispatch_lag_p99_ms: percentile(&mut lags, 99.0),
        });
    }
    let mut warnings = Vec::new();
    for p in &points {
        if p.dispatch_lag_p99_ms.is_some_and(|l| l > CLIENT_LAG_MS) {
            warnings.push(format!(
                "{}: the client lagged its schedule (dispatch lag p99 {:.1} ms): the client shards, not the servers, bounded this point — add shards or agents",
                p.key,
                p.dispatch_lag_p99_ms.unwrap_or(0.0)
            ));
        }
        if p.status != "done" {
            warnings.push(format!(
                "{}: FAILED — {}",
                p.key,
                p.detail.clone().unwrap_or_default()
            ));
        }
    }
    let scaling = scaling(&points);
    let matrix = matrix(&points);
    let mut preflight = None;
    let mut telemetry_runs = Vec::new();
    let mut startup = Vec::new();
    let prefix = format!("{}: ", e.name);
    for r in store.runs()? {
        let mine = store.run_links(r.id)?.experiment == Some(e.id);
        if r.kind == RunKind::FabricCheck && mine {
            preflight = store
                .run_args(r.id)?
                .get("findings")
                .and_then(|f| serde_json::from_value(f.clone()).ok());
        } else if r.kind == RunKind::Record && r.label.starts_with(&prefix) {
            telemetry_runs.push((r.id, r.label.clone()));
        } else if r.kind == RunKind::ExpStartup && mine {
            let args = store.run_args(r.id)?;
            if let Some(row) = args
                .get("startup")
                .and_then(|v| serde_json::from_value(v.clone()).ok())
            {
                startup.push(row);
            }
        }
    }
    Ok(ExpAnalysis {
        name: e.name,
        status: e.status,
        points,
        scaling,
        matrix,
        warnings,
        preflight,
        telemetry_runs,
        startup,
    })
}

/// (group, deployment) → the points of its trials, in first-seen order.
fn by_group_deployment(points: &[PointView]) -> Vec<((String, String), Vec<&PointView>)> {
    let mut v: Vec<((String, String), Vec<&PointView>)> = Vec::new();
    for p in points {
        let k = (p.group.clone(), p.deployment.clone());
        match v.iter_mut().find(|(key, _)| *key == k) {
            Some((_, ps)) => ps.push(p),
            None => v.push((k, vec![p])),
        }
    }
    v
}

fn scaling(points: &[PointView]) -> Vec<ScalingRow> {
    let mut rows = Vec::new();
    for ((group, dep), ps) in by_group_deployment(points) {
        let ok: Vec<&&PointView> = ps.iter().filter(|p| p.status == "done").collect();
        if ok.is_empty() {
            continue;
        }
        let (rps, _) = mean_std(
            &ok.iter()
                .map(|p| p.aggregate.request_throughput)
                .collect::<Vec<_>>(),
        );
        let (tps, _) = mean_std(
            &ok.iter()
                .map(|p| p.aggregate.output_throughput)
                .collect::<Vec<_>>(),
        );
        let (r, g) = (ok[0].replicas, ok[0].gpus);
        rows.push(ScalingRow {
            group,
            deployment: dep,
            replicas: r,
            gpus: g,
            request_throughput: rps,
            output_throughput: tps,
            per_replica_rps: rps / f64::from(r),
            per_gpu_output_tps: tps / f64::from(g),
            efficiency: None,
            client_bound: ok
                .iter()
                .any(|p| p.dispatch_lag_p99_ms.is_some_and(|l| l > CLIENT_LAG_MS)),
        });
    }
    let base: BTreeMap<String, f64> = rows
        .iter()
        .filter(|r| r.replicas == 1)
        .map(|r| (r.group.clone(), r.request_throughput))
        .collect();
    for r in &mut rows {
        if let Some(t1) = base.get(&r.group).filter(|t| **t > 0.0) {
            r.efficiency = Some(r.request_throughput / (f64::from(r.replicas) * t1));
        }
    }
    rows
}

type Metric = (&'static str, fn(&PointView) -> f64);

const METRICS: [Metric; 6] = [
    ("output tok/s per GPU", |p| {
        p.aggregate.output_throughput / f64::from(p.gpus.max(1))
    }),
    ("requests/s per GPU", |p| {
        p.aggregate.request_throughput / f64::from(p.gpus.max(1))
    }),
    ("TTFT p50 ms", |p| p.aggregate.ttft_ms.median),
    ("TTFT mean ms", |p| p.aggregate.ttft_ms.mean),
    ("TPOT p50 ms", |p| p.aggregate.tpot_ms.median),
    ("failure rate", |p| p.aggregate.failure_rate),
];

fn matrix(points: &[PointView]) -> Vec<MatrixRow> {
    let groups = by_group_deployment(points);
    let mut names: Vec<&String> = Vec::new();
    for ((g, _), _) in &groups {
        if !names.contains(&g) {
            names.push(g);
        }
    }
    let mut rows = Vec::new();
    for g in names {
        for (metric, f) in METRICS {
            let mut cells: Vec<MatrixCell> = Vec::new();
            for ((gg, dep), ps) in &groups {
                if gg != g {
                    continue;
                }
                let v: Vec<f64> = ps
                    .iter()
                    .filter(|p| p.status == "done")
                    .map(|p| f(p))
                    .filter(|x| x.is_finite())
                    .collect();
                let (mean, std) = mean_std(&v);
                cells.push(MatrixCell {
                    deployment: dep.clone(),
                    mean,
                    std,
                    n: v.len(),
                    delta: None,
                    within_noise: None,
                });
            }
            if let Some(first) = cells.first().cloned() {
                for c in cells.iter_mut().skip(1) {
                    c.delta = Some(c.mean - first.mean);
                    if c.n > 1 && first.n > 1 {
                        let se = (c.std.powi(2) / c.n as f64 + first.std.powi(2) / first.n as f64)
                            .sqrt();
                        c.within_noise = Some((c.mean - first.mean).abs() < 2.0 * se);
                    }
                }
            }
            rows.push(MatrixRow {
                group: g.clone(),
                metric,
                cells,
            });
        }
    }
    rows
}
