//! `servescope report`: one self-contained HTML file (inline CSS and SVG, no script,
//! no external resource) comparing load runs: throughput, TTFT and TPOT against
//! concurrency or request rate, the throughput–latency curve, latency CDFs, a
//! summary and a failure table.
//!
//! [`load_runs`] reads the store (aggregates and per-request latency samples through
//! [`Store`]); [`render_html`] turns them into the page; [`write_report`] does both
//! and writes the file.

mod cdf;
pub mod chart;
mod figures;
pub mod frame;
pub mod html;
mod layout;
pub mod svg;
mod sweep;

use std::collections::BTreeMap;
use std::path::Path;

use crate::load::runner::ERRORS_SHOWN;
use crate::store::{ErrorSample, PointRow, RunRow, Store, StoreError};

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
        let run = store.run(id)?;
        let points = store.points(id)?;
        if points.is_empty() {
            return Err(ReportError::NoPoints(id));
        }
        let mut samples = BTreeMap::new();
        let mut errors = BTreeMap::new();
        for p in &points {
            if let Some(s) = point_samples(&store, p.id)? {
                samples.insert(p.id, s);
            }
            let e = store.point_errors(p.id, ERRORS_SHOWN)?;
            if !e.is_empty() {
                errors.insert(p.id, e);
            }
        }
        out.push(RunData {
            run,
            points,
            samples,
            errors,
        });
    }
    Ok(out)
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

/// Reads the runs from `db`, renders the report and writes it to `out`.
pub fn write_report(db: &Path, runs: &[i64], out: &Path) -> Result<()> {
    let data = load_runs(db, runs)?;
    let html = render_html(&data);
    std::fs::write(out, html).map_err(|source| ReportError::Write {
        path: out.display().to_string(),
        source,
    })
}
