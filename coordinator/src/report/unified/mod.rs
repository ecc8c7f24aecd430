//! `servescope report RUN…`: one page for whatever the runs hold. Findings first;
//! then the runs; the load results; the TTFT decomposition and the slowest
//! requests' waterfall (P/D attribution); requests and node telemetry on one time
//! axis; fabric probes with their transport truth; startup waterfalls. A section
//! appears only when a run holds its data; linked runs (a pd run's telemetry
//! recording, its fabric probe) come through the store's link columns.

pub mod fabric;
mod page;
pub mod startup;
pub mod telemetry;
pub mod timeline;

use super::{run_data, ReportError, Result, RunData};
use crate::analysis::pd::attribution::{Attribution, Finding};
use crate::analysis::pd::{self, analyze::AttributeOptions};
use crate::store::{RunKind, RunRow, Store};

pub use page::render;

/// Requests shown in the slowest-request waterfall.
pub const SLOWEST: usize = 8;

/// The findings of a run, from the one diagnosis registry every run kind goes
/// through (`servescope diagnose RUN` prints the same).
pub fn findings_of(store: &Store, run: &RunRow) -> Result<Vec<Finding>> {
    Ok(crate::analysis::diagnose::diagnose_run(store, run.id)?)
}

/// Everything the page draws, read from the store.
#[derive(Debug, Default)]
pub struct Sources {
    pub runs: Vec<RunRow>,
    /// Per given run: its findings.
    pub findings: Vec<(RunRow, Vec<Finding>)>,
    pub load: Vec<RunData>,
    pub requests: Vec<timeline::RunRequests>,
    pub attributions: Vec<Attribution>,
    pub telemetry: telemetry::Telemetry,
    /// Runs whose samples the telemetry holds.
    pub telemetry_runs: Vec<i64>,
    pub fabric: Vec<fabric::FabricRun>,
    pub startup: Vec<startup::StartupRun>,
    /// What could not be read, said on the page.
    pub notes: Vec<String>,
}

fn push_once(v: &mut Vec<i64>, id: i64) {
    if !v.contains(&id) {
        v.push(id);
    }
}

/// Reads what the runs (and the runs they link to) hold.
pub fn gather(store: &Store, ids: &[i64]) -> Result<Sources> {
    if ids.is_empty() {
        return Err(ReportError::NoRuns);
    }
    let mut s = Sources::default();
    let (mut tele, mut fab) = (Vec::new(), Vec::new());
    for &id in ids {
        let run = store.run(id)?;
        let links = store.run_links(id)?;
        s.findings.push((run.clone(), findings_of(store, &run)?));
        if let Some(d) = run_data(store, id)? {
            s.requests.push(timeline::read_requests(
                store,
                id,
                &super::sweep::run_name(&d),
            )?);
            s.load.push(d);
        }
        if run.kind == RunKind::Pd {
            let opts = AttributeOptions {
                slowest: SLOWEST,
                ..Default::default()
            };
            match pd::attribute(store, id, &opts) {
                Ok(a) => s.attributions.push(a),
                Err(e) => s.notes.push(format!("run {id}: no attribution: {e}")),
            }
        }
        if run.samples > 0 {
            push_once(&mut tele, id);
        }
        if let Some(t) = links.telemetry_run {
            push_once(&mut tele, t);
        }
        if matches!(
            run.kind,
            RunKind::Fabric | RunKind::FabricMatrix | RunKind::FabricCheck
        ) {
            push_once(&mut fab, id);
        }
        if let Some(f) = links.fabric_run {
            push_once(&mut fab, f);
        }
        if run.kind == RunKind::Startup {
            let timelines = startup::timelines(&store.run_args(id)?);
            if timelines.is_empty() {
                s.notes
                    .push(format!("run {id}: no startup trial with a timeline"));
            } else {
                s.startup.push(startup::StartupRun {
                    run: id,
                    label: run.label.clone(),
                    timelines,
                });
            }
        }
        s.runs.push(run);
    }
    for t in tele {
        telemetry::read(store, t, &mut s.telemetry)?;
        s.telemetry_runs.push(t);
    }
    // With requests on the page, telemetry is cut to their minutes (± 10 s): a
    // recording's history can reach far before the load.
    let req_span = s
        .requests
        .iter()
        .filter_map(|r| r.span())
        .reduce(|a, b| (a.0.min(b.0), a.1.max(b.1)));
    if let Some((a, b)) = req_span {
        s.telemetry.clip(a - 10_000_000_000, b + 10_000_000_000);
    } else {
        s.telemetry.clip(i64::MIN, i64::MAX);
    }
    for f in fab {
        let probes = store.fabric_probes(f)?;
        if !probes.is_empty() {
            let label = store.run(f)?.label;
            s.fabric.push(fabric::FabricRun {
                run: f,
                label,
                probes,
            });
        }
    }
    let empty = s.load.is_empty()
        && s.telemetry.is_empty()
        && s.fabric.is_empty()
        && s.startup.is_empty()
        && s.findings.iter().all(|f| f.1.is_empty());
    if empty {
        return Err(ReportError::Empty(ids.to_vec()));
    }
    Ok(s)
}

/// Reads the runs from the store at `db`, renders the page and writes it to `out`.
pub fn write(db: &std::path::Path, ids: &[i64], out: &std::path::Path) -> Result<()> {
    if !db.exists() {
        return Err(ReportError::NoStore(db.display().to_string()));
    }
    let store = Store::open(db)?;
    let html = render(&gather(&store, ids)?);
    std::fs::write(out, html).map_err(|source| ReportError::Write {
        path: out.display().to_string(),
        source,
    })
}

#[cfg(test)]
mod tests;
