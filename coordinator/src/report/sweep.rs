//! A run's sweep: its points grouped by sweep point (trials together), where each
//! point sits on the x axis (concurrency, closed loop; request rate, open loop), and
//! the names and sizes every sweep chart shares.

use super::svg::format_value;
use super::RunData;
use crate::store::PointRow;
use servescope_loadgen::schedule::Arrival;

pub(crate) const WIDTH: f64 = 640.0;
pub(crate) const HEIGHT: f64 = 390.0;

/// The trials of one sweep point.
pub(crate) struct Group<'a> {
    pub x: f64,
    /// "c=8" or "4/s".
    pub short: String,
    pub trials: Vec<&'a PointRow>,
}

pub(crate) fn is_open(p: &PointRow) -> bool {
    p.config.request_rate().is_some()
}

/// Concurrency (closed loop) or request rate (open loop).
pub(crate) fn x_of(p: &PointRow) -> f64 {
    match p.config.arrival {
        Arrival::Closed { concurrency } => concurrency as f64,
        Arrival::Open { rate, .. } => rate,
    }
}

pub(crate) fn short_label(p: &PointRow) -> String {
    let v = x_of(p);
    let x = if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format_value(v)
    };
    if is_open(p) {
        format!("{x}/s")
    } else {
        format!("c={x}")
    }
}

/// A run's points grouped by sweep point, in sweep order.
pub(crate) fn groups(run: &RunData) -> Vec<Group<'_>> {
    let mut out: Vec<(i64, Group<'_>)> = Vec::new();
    for p in &run.points {
        match out.iter_mut().find(|(k, _)| *k == p.point) {
            Some((_, g)) => g.trials.push(p),
            None => out.push((
                p.point,
                Group {
                    x: x_of(p),
                    short: short_label(p),
                    trials: vec![p],
                },
            )),
        }
    }
    out.into_iter().map(|(_, g)| g).collect()
}

pub(crate) fn run_name(r: &RunData) -> String {
    if r.run.label.is_empty() {
        format!("run {}", r.run.id)
    } else {
        format!("run {} · {}", r.run.id, r.run.label)
    }
}

pub(crate) fn x_label(runs: &[RunData]) -> &'static str {
    let pts = || runs.iter().flat_map(|r| r.points.iter());
    match (pts().any(is_open), pts().all(is_open)) {
        (_, true) => "request rate (req/s)",
        (false, _) => "concurrency (requests in flight)",
        _ => "concurrency (closed loop) · request rate, req/s (open loop)",
    }
}
