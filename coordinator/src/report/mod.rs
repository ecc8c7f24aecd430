//! `servescope report`: one self-contained HTML file (inline CSS and SVG, no script,
//! no external resource) for whatever the given runs hold ([`unified`]): findings,
//! load results (throughput, TTFT and TPOT against concurrency or request rate, the
//! throughput–latency curve, latency CDFs, a summary and a failure table), the TTFT
//! decomposition, node telemetry on the requests' clock, fabric probes and startup
//! waterfalls. The chart kit ([`chart`], [`bars`], [`svg`]) and the page frame
//! ([`frame`]) are shared by every page servescope writes.
//!
//! [`load_runs`] reads load runs (aggregates and per-request latency samples through
//! [`Store`]); [`render_html`] turns them into the load-only page; [`write_report`]
//! writes the unified page.

pub mod bars;
mod cdf;
pub mod chart;
pub mod exp;
pub mod export;
mod figures;
pub mod findings;
pub mod frame;
pub mod html;
mod layout;
pub mod matrix;
pub mod pd;
pub mod startup;
pub mod svg;
mod sweep;
pub mod unified;

use std::collections::BTreeMap;
use std::path::Path;

use crate::store::{ErrorSample, PointRow, RunRow, Store, StoreError, ERRORS_SHOWN};

pub use html::render_html;

/// Report errors.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("no store at {0}")]
    NoStore(String),
    #[error("no runs given")]
    NoRuns,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("run {0} has no load points (is it a load run? `servescope runs` lists kinds)")]
    NoPoints(i64),
    #[error(transparent)]
    Pd(#[from] crate::analysis::pd::PdError),
    #[error(transparent)]
    Diagnose(#[from] crate::analysis::diagnose::DiagnoseError),
    #[error("run(s) {0:?} hold nothing a report can show (no load points, telemetry, fabric probes, startup trials or findings)")]
    Empty(Vec<i64>),
    #[error("writing {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

pub type Result<T> = std::result::Result<T, ReportError>;

/// Latency samples (ms) of one point's successful, measured requests.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LatencySamples {
    pub ttft_ms: Vec<f64>,
    pub tpot_ms: Vec<f64>,
    pub e2el_ms: Vec<f64>,
}

/// One run with what the report needs.
#[derive(Debug, Clone)]
pub struct RunData {
    pub run: RunRow,
    pub points: Vec<PointRow>,
    /// Per point id; points without stored requests are absent.
    pub samples: BTreeMap<i64, LatencySamples>,
    /// Per point id: what its failed requests said; points without failures are absent.
    pub errors: BTreeMap<i64, Vec<ErrorSample>>,
}

/// Reads the runs (in the order given) from the store at `db`.
pub fn load_runs(db: &Path, runs: &[i64]) -> Result<Vec<RunData>> {
    if runs.is_empty() {
        return Err(ReportError::NoRuns);
    }
    if !db.exists() {
        return Err(ReportError::NoStore(db.display().to_string()));
    }
    let store = Store::open(db)?;
    let mut out = Vec::with_capacity(runs.len());
    for &id in runs {
        out.push(run_data(&store, id)?.ok_or(ReportError::NoPoints(id))?);
    }
    Ok(out)
}

/// A run with its points and latency samples; `None` when it has no load points.
pub fn run_data(store: &Store, id: i64) -> Result<Option<RunData>> {
    let run = store.run(id)?;
    let points = store.points(id)?;
    if points.is_empty() {
        return Ok(None);
    }
    let mut samples = BTreeMap::new();
    let mut errors = BTreeMap::new();
    for p in &points {
        if let Some(s) = point_samples(store, p.id)? {
            samples.insert(p.id, s);
        }
        let e = store.point_errors(p.id, ERRORS_SHOWN)?;
        if !e.is_empty() {
            errors.insert(p.id, e);
        }
    }
    Ok(Some(RunData {
        run,
        points,
        samples,
        errors,
    }))
}

/// The latency samples of a point's measured successes; `None` when the point has
/// no stored requests (e.g. imported aggregates).
pub fn point_samples(store: &Store, point_id: i64) -> Result<Option<LatencySamples>> {
    let records = store.measured_records(point_id)?;
    if records.is_empty() {
        return Ok(None);
    }
    let mut s = LatencySamples::default();
    for rec in records.iter().filter(|r| r.is_success()) {
        let l = rec.latencies();
        s.ttft_ms.extend(l.ttft_ms);
        s.tpot_ms.extend(l.tpot_ms);
        s.e2el_ms.push(l.e2el_ms);
    }
    Ok(Some(s))
}

/// Reads the runs (and the runs they link to) from `db`, renders the unified report
/// and writes it to `out`.
pub fn write_report(db: &Path, runs: &[i64], out: &Path) -> Result<()> {
    unified::write(db, runs, out)
}
