//! `servescope report`: one self-contained HTML file (inline CSS and SVG, no script,
//! no external resource) comparing load runs: throughput, TTFT and TPOT against
//! concurrency or request rate, the throughput–latency curve, latency CDFs, a
//! summary and a failure table.
//!
//! [`load_runs`] reads the store (aggregates through [`Store`], per-request latency
//! samples through a read-only SQLite connection); [`render_html`] turns them into
//! the page; [`write_report`] does both and writes the file.

mod cdf;
pub mod chart;
mod figures;
pub mod html;
mod layout;
pub mod svg;
mod sweep;

use std::collections::BTreeMap;
use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use crate::load::metrics::RequestRecord;
use crate::store::{PointRow, RunRow, Store, StoreError};

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
    #[error("reading requests: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("run {0} has no load points (is it a load run? `servescope runs` lists kinds)")]
    NoPoints(i64),
    #[error("run {run}: request record of point {point_id} is corrupt: {message}")]
    CorruptRecord {
        run: i64,
        point_id: i64,
        message: String,
    },
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
    let conn = Connection::open_with_flags(
        db,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    let mut out = Vec::with_capacity(runs.len());
    for &id in runs {
        let run = store.run(id)?;
        let points = store.points(id)?;
        if points.is_empty() {
            return Err(ReportError::NoPoints(id));
        }
        let mut samples = BTreeMap::new();
        for p in &points {
            if let Some(s) = point_samples(&conn, id, p.id)? {
                samples.insert(p.id, s);
            }
        }
        out.push(RunData {
            run,
            points,
            samples,
        });
    }
    Ok(out)
}

/// The latency samples of a point's measured successes; `None` when the point has
/// no stored requests (e.g. imported aggregates).
pub fn point_samples(conn: &Connection, run: i64, point_id: i64) -> Result<Option<LatencySamples>> {
    let mut st =
        conn.prepare_cached("SELECT record FROM requests WHERE point_id = ?1 AND warmup = 0")?;
    let mut rows = st.query([point_id])?;
    let mut s = LatencySamples::default();
    let mut any = false;
    while let Some(row) = rows.next()? {
        any = true;
        let text: String = row.get(0)?;
        let rec: RequestRecord =
            serde_json::from_str(&text).map_err(|e| ReportError::CorruptRecord {
                run,
                point_id,
                message: e.to_string(),
            })?;
        if !rec.is_success() {
            continue;
        }
        let l = rec.latencies();
        s.ttft_ms.extend(l.ttft_ms);
        s.tpot_ms.extend(l.tpot_ms);
        s.e2el_ms.push(l.e2el_ms);
    }
    Ok(any.then_some(s))
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
