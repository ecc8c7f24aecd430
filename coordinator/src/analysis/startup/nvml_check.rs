//! NVML-inferred phases against ground-truth phase markers (a workload that prints
//! its own boundaries as JSON lines:
//! `{"marker": "weights_load", "edge": "begin"|"end", "t_ns": …, "pid": …}`), and
//! against a log's phases.

use std::collections::BTreeMap;

use super::phase::{PhaseKind, Timeline};

/// Ground-truth markers: name → (begin, end) ns. Unparseable lines are skipped.
pub fn parse_markers(text: &str) -> BTreeMap<String, (Option<i64>, Option<i64>)> {
    let mut out: BTreeMap<String, (Option<i64>, Option<i64>)> = BTreeMap::new();
    for line in text.lines().take(100_000) {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let (Some(m), Some(e), Some(t)) = (
            v.get("marker").and_then(|x| x.as_str()),
            v.get("edge").and_then(|x| x.as_str()),
            v.get("t_ns").and_then(|x| x.as_i64()),
        ) else {
            continue;
        };
        let slot = out.entry(m.chars().take(64).collect()).or_default();
        match e {
            "begin" => slot.0 = Some(t),
            "end" => slot.1 = Some(t),
            _ => {}
        }
    }
    out
}

/// Which inferred phase a phase_workload marker corresponds to.
pub fn kind_of_marker(m: &str) -> Option<PhaseKind> {
    Some(match m {
        "cuda_init" => PhaseKind::CudaContext,
        "weights_load" => PhaseKind::WeightLoad,
        "kv_alloc" => PhaseKind::KvCacheAllocation,
        "compile" => PhaseKind::TorchCompile,
        "graph_capture" => PhaseKind::CudaGraphCapture,
        "serving" => PhaseKind::GpuBusy,
        _ => return None,
    })
}

/// One row of the comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckRow {
    pub marker: String,
    pub kind: PhaseKind,
    pub truth: (Option<i64>, Option<i64>),
    pub inferred: Option<(Option<i64>, Option<i64>)>,
    /// Inferred − truth, ms.
    pub d_begin_ms: Option<f64>,
    pub d_end_ms: Option<f64>,
    pub truth_s: Option<f64>,
    pub inferred_s: Option<f64>,
    /// Every visible boundary within ±250 ms, and duration within 10 % when > 2 s.
    pub ok: bool,
}

pub const BOUNDARY_MS: f64 = 250.0;
pub const DURATION_FRACTION: f64 = 0.10;

pub fn compare(
    tl: &Timeline,
    markers: &BTreeMap<String, (Option<i64>, Option<i64>)>,
) -> Vec<CheckRow> {
    let mut rows = Vec::new();
    for (m, &(tb, te)) in markers {
        let Some(kind) = kind_of_marker(m) else {
            continue;
        };
        let ph = tl.get(kind);
        let d = |a: Option<i64>, b: Option<i64>| match (a, b) {
            (Some(a), Some(b)) => Some((a - b) as f64 / 1e6),
            _ => None,
        };
        let inferred = ph.map(|p| (p.start_ns, p.end_ns));
        let (db, de) = (
            d(ph.and_then(|p| p.start_ns), tb),
            d(ph.and_then(|p| p.end_ns), te),
        );
        let truth_s = d(te, tb).map(|v| v / 1e3);
        let inferred_s = ph.and_then(|p| d(p.end_ns, p.start_ns)).map(|v| v / 1e3);
        let within = |x: Option<f64>| x.is_none_or(|v| v.abs() <= BOUNDARY_MS);
        let dur_ok = match (truth_s, inferred_s) {
            (Some(t), Some(i)) if t > 2.0 => (i - t).abs() <= DURATION_FRACTION * t,
            _ => true,
        };
        rows.push(CheckRow {
            marker: m.clone(),
            kind,
            truth: (tb, te),
            inferred,
            d_begin_ms: db,
            d_end_ms: de,
            truth_s,
            inferred_s,
            ok: ph.is_some()
                && within(db)
                && within(de)
                && dur_ok
                && (db.is_some() || de.is_some()),
        });
    }
    rows.sort_by_key(|r| r.truth.0.or(r.truth.1));
    rows
}

/// Where a log timeline and an NVML-inferred one disagree on a phase both have:
/// durations differing by more than 20 % and 2 s, or boundaries more than 2 s apart.
pub fn cross_check(log: &Timeline, nvml: &Timeline) -> Vec<String> {
    let mut out = Vec::new();
    for kind in [
        PhaseKind::WeightLoad,
        PhaseKind::TorchCompile,
        PhaseKind::KvCacheAllocation,
        PhaseKind::CudaGraphCapture,
    ] {
        let (Some(l), Some(n)) = (log.get(kind), nvml.get(kind)) else {
            continue;
        };
        if let (Some(ls), Some(ns)) = (l.seconds(), n.seconds()) {
            if (ls - ns).abs() > 2.0 && (ls - ns).abs() > 0.2 * ls.max(ns) {
                out.push(format!(
                    "{}: the log says {ls:.1} s, NVML sees {ns:.1} s",
                    kind.label()
                ));
            }
        }
        let off = log.clock_offset_ns - nvml.clock_offset_ns;
        for (what, a, b) in [
            ("start", l.start_ns, n.start_ns),
            ("end", l.end_ns, n.end_ns),
        ] {
            if let (Some(a), Some(b)) = (a, b) {
                let d = (a + off - b) as f64 / 1e9;
                if d.abs() > 2.0 {
                    out.push(format!(
                        "{}: {what} differs by {d:+.1} s (log vs NVML)",
                        kind.label()
                    ));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::startup::phase::{Phase, Source};

    #[test]
    fn cross_check_reports_only_real_disagreements() {
        let mk = |src, s: i64, e: i64| {
            let mut t = Timeline::new(None);
            t.phases
                .push(Phase::new(PhaseKind::WeightLoad, src, 1.0).span(s, e));
            t
        };
        let log = mk(Source::Log, 0, 60_000_000_000);
        assert!(cross_check(&log, &mk(Source::Nvml, 500_000_000, 60_400_000_000)).is_empty());
        let d = cross_check(&log, &mk(Source::Nvml, 30_000_000_000, 60_000_000_000));
        assert_eq!(d.len(), 2, "{d:?}");
        assert!(d[0].contains("60.0 s") && d[0].contains("30.0 s"), "{d:?}");
    }
}
