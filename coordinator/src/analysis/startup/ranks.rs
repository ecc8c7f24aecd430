//! Per-rank figures: every process of a tensor-parallel group prints its own
//! "Loading weights took …", "torch.compile takes …" and so on. Per event, each
//! process's figure is taken (summed over per-graph compile lines), and the process
//! that finished last supplies the phase; the others are kept as attributes
//! (`min_s`, `max_s`, `alternates`).

use std::collections::{BTreeMap, HashMap};

use super::hits::Hit;
use super::patterns::{Event, PATTERNS};
use super::phase::{s_to_ns, Phase, PhaseKind, Source};

/// The figure of one process for one event.
#[derive(Debug, Clone)]
pub(super) struct Fig {
    pub(super) end: Option<i64>,
    pub(super) dur: Option<f64>,
    pub(super) proc: String,
    pub(super) pid: u64,
    /// From the process prefix (`rank=N`, `Worker_TP<N>`).
    pub(super) rank: Option<String>,
    pub(super) lines: Vec<usize>,
    pub(super) inferred: bool,
    pub(super) confidence: f32,
    pub(super) nums: Vec<f64>,
    pub(super) texts: Vec<String>,
}

/// Which capture is the duration.
fn dur_index(e: Event) -> Option<usize> {
    match e {
        Event::ModelLoaded => Some(1),
        Event::Download
        | Event::WeightsLoaded
        | Event::StreamDone
        | Event::CacheDownload
        | Event::Dynamo
        | Event::Inductor
        | Event::CacheLoad
        | Event::CompileTotal
        | Event::ProfileRun
        | Event::ModelInit
        | Event::GraphDone
        | Event::InitEngine => Some(0),
        _ => None,
    }
}

/// Per-process figures of an event; the chosen one (finished last) first.
pub(super) fn figures(hits: &[Hit], event: Event) -> Vec<Fig> {
    let sum = matches!(event, Event::Inductor | Event::CacheLoad);
    let mut by_pid: BTreeMap<u64, Fig> = BTreeMap::new();
    for h in hits.iter().filter(|h| h.event == event) {
        let pid = h.proc.as_ref().map_or(0, |p| p.pid);
        let dur = dur_index(event).and_then(|i| h.nums.get(i).copied());
        let fig = Fig {
            end: h.ts_ns,
            dur,
            proc: h
                .proc
                .as_ref()
                .map_or_else(|| "driver".into(), |p| p.describe()),
            pid,
            rank: h.proc.as_ref().and_then(|p| p.rank.clone()),
            lines: vec![h.line],
            inferred: h.ts_inferred,
            confidence: PATTERNS[h.pattern].confidence,
            nums: h.nums.clone(),
            texts: h.texts.clone(),
        };
        match by_pid.get_mut(&pid) {
            Some(f) if sum => {
                f.dur = match (f.dur, dur) {
                    (Some(a), Some(b)) => Some(a + b),
                    (a, b) => a.or(b),
                };
                f.end = f.end.max(fig.end);
                f.lines.push(h.line);
            }
            _ => {
                by_pid.insert(pid, fig);
            }
        }
    }
    let mut v: Vec<Fig> = by_pid.into_values().collect();
    // Latest end first; ties: the longer duration; then the lower pid (stable).
    v.sort_by(|a, b| {
        b.end
            .cmp(&a.end)
            .then(
                b.dur
                    .partial_cmp(&a.dur)
                    .unwrap_or(std::cmp::Ordering::Equal),
            )
            .then(a.pid.cmp(&b.pid))
    });
    v
}

pub(super) fn fmt_s(v: f64) -> String {
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

/// A phase from the chosen figure of an event: it ends at the line, lasts the
/// printed duration.
pub(super) fn from_figs(
    kind: PhaseKind,
    figs: &[Fig],
    ranks: &HashMap<u64, String>,
) -> Option<Phase> {
    let f = figs.first()?;
    let conf = if f.inferred {
        f.confidence * 0.8
    } else {
        f.confidence
    };
    let mut p = Phase::new(kind, Source::Log, conf);
    p.duration_s = f.dur;
    p.end_ns = f.end;
    p.start_ns = match (f.end, f.dur) {
        (Some(e), Some(d)) => Some(e.saturating_sub(s_to_ns(d))),
        _ => None,
    };
    p.process = Some(f.proc.clone());
    p.rank = ranks.get(&f.pid).cloned().or_else(|| f.rank.clone());
    p.lines = f.lines.clone();
    if f.inferred {
        p.attrs.insert(
            "end".into(),
            "line has no timestamp: next line of its process".into(),
        );
    }
    if figs.len() > 1 {
        let durs: Vec<f64> = figs.iter().filter_map(|f| f.dur).collect();
        if let (Some(lo), Some(hi)) = (
            durs.iter().copied().reduce(f64::min),
            durs.iter().copied().reduce(f64::max),
        ) {
            p.attrs.insert("min_s".into(), fmt_s(lo));
            p.attrs.insert("max_s".into(), fmt_s(hi));
        }
        p.attrs.insert("processes".into(), figs.len().to_string());
        let alt: Vec<String> = figs[1..]
            .iter()
            .map(|f| match f.dur {
                Some(d) => format!("{}: {} s", f.proc, fmt_s(d)),
                None => f.proc.clone(),
            })
            .collect();
        p.attrs.insert("alternates".into(), alt.join("; "));
    }
    Some(p)
}
