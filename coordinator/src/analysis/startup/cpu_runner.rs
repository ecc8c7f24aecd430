//! Phases from the lines of vLLM's CPU model runner (0.20+), which prints no
//! "Model loading took" and captures no CUDA graph: the model load from its
//! "Starting to load model" / "Loading weights took" lines, and the compile warm-up
//! ("Warming up model for the compilation..." → "Warming up done."), in which the
//! profile run ("Initial profiling/warmup run took") happens.

use super::hits::Hit;
use super::patterns::Event;
use super::phase::{Phase, PhaseKind, Source};
use super::ranks::{figures, fmt_s};

fn first_ts(hits: &[Hit], e: Event) -> Option<(i64, usize)> {
    hits.iter()
        .filter(|h| h.event == e)
        .filter_map(|h| Some((h.ts_ns?, h.line)))
        .min()
}

/// In a CPU runner's log (it printed "Warming up model for the compilation"), which
/// has no "Model loading took" line: "Starting to load model" → the later of
/// "Loading weights took" and "Initializing model took". A GPU log that lost its
/// "Model loading took" line gets no model load.
pub(super) fn model_load(hits: &[Hit]) -> Option<Phase> {
    if !hits.iter().any(|h| h.event == Event::WarmupStart) {
        return None;
    }
    let (start, start_line) = first_ts(hits, Event::LoadStart)?;
    let ends = [Event::WeightsLoaded, Event::ModelInit]
        .into_iter()
        .filter_map(|e| figures(hits, e).into_iter().next())
        .filter_map(|f| Some((f.end?, f.lines.first().copied()?)))
        .max()?;
    let (end, end_line) = ends;
    if end < start {
        return None;
    }
    let mut p = Phase::new(PhaseKind::ModelLoad, Source::Log, 0.7).span(start, end);
    p.lines = vec![start_line, end_line];
    p.attrs.insert(
        "boundaries".into(),
        "no \"Model loading took\" line: \"Starting to load model\" → \"Loading weights took\""
            .into(),
    );
    Some(p)
}

/// The duration a line printed, as a fact on a phase (`key`, seconds).
pub(super) fn add_fact(p: &mut Phase, hits: &[Hit], e: Event, key: &str) {
    if let Some(d) = figures(hits, e).first().and_then(|f| f.dur) {
        p.attrs.insert(key.into(), fmt_s(d));
    }
}

/// The compile warm-up: "Warming up model for the compilation..." → "Warming up
/// done." (the process that finished last), with the profile run inside it as a fact.
pub(super) fn warmup(hits: &[Hit]) -> Option<Phase> {
    let done = figures(hits, Event::WarmupDone).into_iter().next()?;
    let end = done.end?;
    let start = hits
        .iter()
        .filter(|h| h.event == Event::WarmupStart)
        .filter(|h| h.proc.as_ref().map_or(0, |p| p.pid) == done.pid)
        .filter_map(|h| Some((h.ts_ns?, h.line)))
        .min()?;
    if end < start.0 {
        return None;
    }
    let mut p = Phase::new(PhaseKind::Warmup, Source::Log, 0.9).span(start.0, end);
    p.process = Some(done.proc.clone());
    p.lines = vec![start.1];
    p.lines.extend(done.lines.first());
    p.attrs.insert(
        "boundaries".into(),
        "\"Warming up model for the compilation\" → \"Warming up done.\" (compile warm-up)".into(),
    );
    let profile = figures(hits, Event::ProfileRun)
        .into_iter()
        .find(|f| f.end.is_some_and(|t| t >= start.0 && t <= end));
    if let Some(d) = profile.and_then(|f| f.dur) {
        p.attrs.insert("profile_run_s".into(), fmt_s(d));
    }
    Some(p)
}
