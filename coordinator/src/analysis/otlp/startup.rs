//! vLLM startup spans → [`Phase`]s ([`Source::Otlp`]).
//!
//! Spans are aggregated per service/host, name and process as they arrive
//! ([`SpanAgg`]: count, earliest start, latest end), so repeated spans (one
//! `Compile graph` per piecewise graph) and memory stay bounded. For each name the
//! process that finished last is taken (as the log source takes the rank that
//! finished last). [`PHASE_SPANS`] maps names to kinds; a name not in it is an
//! [`OtherSpan`], never a phase.
//!
//! Two phases are derived from spans, and marked so in their attributes:
//! `torch_compile` is the envelope of the Dynamo and Inductor/`Compile graph`
//! phases, and `warmup` (vLLM's `Warmup (GPU)` contains `Capture model`) starts
//! where the capture ends, so the waterfall does not count the capture twice.

use std::collections::BTreeMap;

use super::{OtherSpan, RequestSpan, ServiceKey, StartupTimeline};
use crate::analysis::startup::phase::s_to_ns;
use crate::analysis::startup::{Phase, PhaseKind, Source, Timeline};

/// vLLM span name → phase kind and confidence (vLLM 0.16 → 0.33 `@instrument`
/// names). For one kind, the first name present wins (`Loading (GPU)` is the
/// worker's whole model load; `Load model`, the loader call inside it, is a
/// fallback; `Compile graph` covers cache loads too, so it only stands in for
/// `Inductor compilation`).
pub const PHASE_SPANS: [(&str, PhaseKind, f32); 13] = [
    ("Loading (GPU)", PhaseKind::ModelLoad, 1.0),
    ("Loading (CPU)", PhaseKind::ModelLoad, 1.0),
    ("Load model", PhaseKind::ModelLoad, 0.9),
    ("Download weights - HF", PhaseKind::WeightDownload, 1.0),
    ("Load weights", PhaseKind::WeightLoad, 1.0),
    ("Dynamo bytecode transform", PhaseKind::DynamoTransform, 1.0),
    ("Inductor compilation", PhaseKind::InductorCompile, 1.0),
    ("Compile graph", PhaseKind::InductorCompile, 0.8),
    ("Allocate KV cache", PhaseKind::KvCacheAllocation, 1.0),
    // The engine core's `_initialize_kv_caches`: what the log's "init engine
    // (profile, create kv cache, warmup model) took" times.
    ("Prepare model", PhaseKind::InitEngine, 1.0),
    ("Capture model", PhaseKind::CudaGraphCapture, 1.0),
    ("Warmup (GPU)", PhaseKind::Warmup, 1.0),
    ("Warmup (CPU)", PhaseKind::Warmup, 1.0),
];

/// The phase kind a span name may give.
pub fn kind_of(name: &str) -> Option<PhaseKind> {
    PHASE_SPANS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, k, _)| *k)
}

/// Spans of one name from one process.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanAgg {
    pub count: u64,
    pub start_ns: i64,
    pub end_ns: i64,
    /// Attributes of the span that ended last.
    pub attrs: BTreeMap<String, String>,
}

impl SpanAgg {
    pub fn new(start_ns: i64, end_ns: i64, attrs: BTreeMap<String, String>) -> SpanAgg {
        SpanAgg {
            count: 1,
            start_ns,
            end_ns,
            attrs,
        }
    }

    /// Adds a span; `attrs` is called only when this span ends last.
    pub fn add(
        &mut self,
        start_ns: i64,
        end_ns: i64,
        attrs: impl FnOnce() -> BTreeMap<String, String>,
    ) {
        self.count = self.count.saturating_add(1);
        self.start_ns = self.start_ns.min(start_ns);
        if end_ns > self.end_ns {
            self.end_ns = end_ns;
            self.attrs = attrs();
        }
    }
}

impl SpanAgg {
    /// Adds the spans of another aggregate (of the same name and process).
    pub fn merge(&mut self, o: &SpanAgg) {
        self.count = self.count.saturating_add(o.count);
        self.start_ns = self.start_ns.min(o.start_ns);
        if o.end_ns > self.end_ns {
            self.end_ns = o.end_ns;
            self.attrs = o.attrs.clone();
        }
    }
}

/// Aggregates of one service/host: (span name, process) → spans.
pub type Aggs = BTreeMap<(String, Option<String>), SpanAgg>;

/// Per name: the process that finished last, total count, number of processes.
struct Chosen<'a> {
    agg: &'a SpanAgg,
    process: Option<&'a str>,
    count: u64,
    processes: usize,
}

fn choose(aggs: &Aggs) -> BTreeMap<&str, Chosen<'_>> {
    let mut out: BTreeMap<&str, Chosen> = BTreeMap::new();
    for ((name, process), agg) in aggs {
        let c = out.entry(name.as_str()).or_insert(Chosen {
            agg,
            process: process.as_deref(),
            count: 0,
            processes: 0,
        });
        c.count = c.count.saturating_add(agg.count);
        c.processes += 1;
        if agg.end_ns > c.agg.end_ns {
            c.agg = agg;
            c.process = process.as_deref();
        }
    }
    out
}

fn phase(name: &str, c: &Chosen, kind: PhaseKind, confidence: f32) -> Phase {
    let mut p = Phase::new(kind, Source::Otlp, confidence).span(c.agg.start_ns, c.agg.end_ns);
    p.process = c.process.map(str::to_string);
    p.attrs = c.agg.attrs.clone();
    p.attrs.insert("otlp.span".into(), name.to_string());
    if c.count > 1 {
        p.attrs.insert("otlp.spans".into(), c.count.to_string());
    }
    if c.processes > 1 {
        p.attrs
            .insert("otlp.processes".into(), c.processes.to_string());
    }
    p
}

fn instant(kind: PhaseKind, t: i64, request_id: Option<&str>) -> Phase {
    let mut p = Phase::new(kind, Source::Otlp, 1.0);
    p.start_ns = Some(t);
    p.end_ns = Some(t);
    p.duration_s = Some(0.0);
    if let Some(id) = request_id {
        p.attrs.insert("request_id".into(), id.to_string());
    }
    p
}

/// The startup timeline of one service/host from its span aggregates, with the
/// first request and first token from `first_request` (the earliest `llm_request`
/// span of the same service/host) when it comes after the startup phases.
/// Gaps ≥ 1 s between waterfall phases become `unattributed`.
pub fn build(
    key: &ServiceKey,
    aggs: &Aggs,
    first_request: Option<&RequestSpan>,
) -> StartupTimeline {
    let chosen = choose(aggs);
    let mut timeline = Timeline::new(key.host.clone());
    let mut used: Vec<&str> = Vec::new();
    for (name, kind, conf) in PHASE_SPANS {
        if timeline.get(kind).is_some() {
            continue;
        }
        if let Some(c) = chosen.get(name) {
            timeline.phases.push(phase(name, c, kind, conf));
            used.push(name);
        }
    }
    trim_warmup(&mut timeline);
    derive_compile(&mut timeline);
    if let Some(c) = chosen.get(OVERALL) {
        overall_loading(&mut timeline, c);
        used.push(OVERALL);
    }
    if let Some(c) = chosen.get(MODEL_INIT) {
        model_init(&mut timeline, c);
        used.push(MODEL_INIT);
    }
    if !timeline.phases.is_empty() {
        add_first_request(&mut timeline, first_request);
        timeline.fill_gaps(1.0);
    }
    timeline.sort();
    let other_spans = chosen
        .iter()
        .filter(|(name, _)| !used.contains(name))
        .map(|(name, c)| OtherSpan {
            name: name.to_string(),
            count: c.count,
            start_ns: c.agg.start_ns,
            end_ns: c.agg.end_ns,
            processes: c.processes,
        })
        .collect();
    let processes: std::collections::BTreeSet<String> =
        aggs.keys().filter_map(|(_, p)| p.clone()).collect();
    StartupTimeline {
        service: key.service.clone(),
        timeline,
        other_spans,
        processes: processes.into_iter().collect(),
    }
}

/// vLLM's root startup span (API server: from making the engine client to the
/// engine being ready, every other startup span inside it).
pub const OVERALL: &str = "Overall Loading";
/// The model object built, inside the model load.
const MODEL_INIT: &str = "Initialize model";

/// `Overall Loading`: its start → the model load is the fixed init (process
/// spawn, engine config, executor and worker init), its end the API-ready point.
fn overall_loading(t: &mut Timeline, c: &Chosen) {
    let (s, e) = (c.agg.start_ns, c.agg.end_ns);
    let load = t.get(PhaseKind::ModelLoad).and_then(|p| p.start_ns);
    if let Some(l) = load.filter(|l| *l > s) {
        let mut p = Phase::new(PhaseKind::FixedInit, Source::Otlp, 0.9).span(s, l);
        p.process = c.process.map(str::to_string);
        p.attrs.insert(
            "otlp.derived_from".into(),
            format!("start of {OVERALL} → start of the model load"),
        );
        t.phases.push(p);
    }
    let mut ready = instant(PhaseKind::ApiReady, e, None);
    ready.confidence = 0.9;
    ready.process = c.process.map(str::to_string);
    ready.attrs.insert("otlp.span".into(), OVERALL.into());
    ready.attrs.insert(
        "evidence".into(),
        format!("end of {OVERALL}: the engine client is ready, the HTTP server starts"),
    );
    ready.attrs.insert(
        "otlp.total_s".into(),
        format!("{:.3}", (e - s) as f64 / 1e9),
    );
    t.phases.push(ready);
}

/// `Initialize model` as a fact of the model load (`model_init_s`).
fn model_init(t: &mut Timeline, c: &Chosen) {
    if let Some(p) = t.phases.iter_mut().find(|p| p.kind == PhaseKind::ModelLoad) {
        let d = (c.agg.end_ns - c.agg.start_ns) as f64 / 1e9;
        p.attrs.insert("model_init_s".into(), format!("{d:.3}"));
    }
}

/// `Warmup (GPU)` wraps `Capture model`: the warmup phase starts where capture ends.
fn trim_warmup(t: &mut Timeline) {
    let Some((cs, ce)) = t
        .get(PhaseKind::CudaGraphCapture)
        .and_then(|p| Some((p.start_ns?, p.end_ns?)))
    else {
        return;
    };
    let Some(w) = t.phases.iter_mut().find(|p| p.kind == PhaseKind::Warmup) else {
        return;
    };
    let (Some(ws), Some(we)) = (w.start_ns, w.end_ns) else {
        return;
    };
    if ws <= cs && ce <= we {
        let mut trimmed = Phase::new(PhaseKind::Warmup, Source::Otlp, w.confidence).span(ce, we);
        trimmed.process = w.process.take();
        trimmed.attrs = std::mem::take(&mut w.attrs);
        trimmed
            .attrs
            .insert("otlp.span_start_ns".into(), ws.to_string());
        trimmed.attrs.insert(
            "otlp.trimmed".into(),
            "starts at the end of the capture".into(),
        );
        *w = trimmed;
    }
}

/// torch.compile = Dynamo transform + Inductor compile (or graph compile / cache
/// load): the envelope of those phases, when there is at least one.
fn derive_compile(t: &mut Timeline) {
    let parts: Vec<&Phase> = t
        .phases
        .iter()
        .filter(|p| {
            matches!(
                p.kind,
                PhaseKind::DynamoTransform | PhaseKind::InductorCompile
            )
        })
        .collect();
    let start = parts.iter().filter_map(|p| p.start_ns).min();
    let end = parts.iter().filter_map(|p| p.end_ns).max();
    let (Some(s), Some(e)) = (start, end) else {
        return;
    };
    let conf = parts.iter().map(|p| p.confidence).fold(1.0f32, f32::min) * 0.9;
    let from: Vec<&str> = parts
        .iter()
        .filter_map(|p| p.attrs.get("otlp.span").map(String::as_str))
        .collect();
    let mut p = Phase::new(PhaseKind::TorchCompile, Source::Otlp, conf).span(s, e);
    p.attrs.insert("otlp.derived_from".into(), from.join(", "));
    t.phases.push(p);
}

fn add_first_request(t: &mut Timeline, first: Option<&RequestSpan>) {
    let (Some(r), Some(after)) = (first, t.last_ns()) else {
        return;
    };
    let Some(start) = r.start_ns.filter(|s| *s >= after) else {
        return;
    };
    let id = r.request_id.as_deref();
    t.phases.push(instant(PhaseKind::FirstRequest, start, id));
    if let Some(ttft) = r.ttft_s {
        let ft = start.saturating_add(s_to_ns(ttft));
        t.phases.push(instant(PhaseKind::FirstToken, ft, id));
    }
}
