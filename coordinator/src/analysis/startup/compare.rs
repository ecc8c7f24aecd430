//! `servescope startup compare`: many parsed logs → per-model tables (model ×
//! configuration, phases as columns, total), as text here and as an HTML page in
//! [`super::page`]. Logs that share a label are trials: mean, and min–max when there
//! are several.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::logparse::LogParse;
use super::phase::{ns_to_s, PhaseKind, Timeline};

/// A parsed log and the configuration it belongs to.
#[derive(Debug, Clone)]
pub struct Labeled {
    pub label: String,
    pub parse: LogParse,
}

/// Mean and range over trials.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stat {
    pub n: usize,
    pub mean: f64,
    pub min: f64,
    pub max: f64,
}

impl Stat {
    pub fn of(v: &[f64]) -> Option<Stat> {
        if v.is_empty() {
            return None;
        }
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        let min = v.iter().copied().fold(f64::INFINITY, f64::min);
        let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        Some(Stat {
            n: v.len(),
            mean,
            min,
            max,
        })
    }

    /// `213.5`, or `213.5 (212.0–215.1)` over several trials.
    pub fn cell(&self) -> String {
        if self.n > 1 {
            format!("{:.1} ({:.1}–{:.1})", self.mean, self.min, self.max)
        } else {
            format!("{:.1}", self.mean)
        }
    }

    /// [`Self::cell`], marked `[n/trials]` when only some trials have the value.
    pub fn cell_of(&self, trials: usize) -> String {
        if self.n < trials {
            format!("{} [{}/{trials}]", self.cell(), self.n)
        } else {
            self.cell()
        }
    }
}

/// What a column shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Seconds of a phase (summed for unattributed gaps).
    Phase(PhaseKind),
    /// Seconds from the first line to the end of a phase or an instant.
    Until(PhaseKind),
}

/// Table columns, in startup order. Columns no log has are left out.
pub const COLUMNS: &[(&str, Metric)] = &[
    ("actor start", Metric::Phase(PhaseKind::ActorStart)),
    ("fixed init", Metric::Phase(PhaseKind::FixedInit)),
    (
        "cache download",
        Metric::Phase(PhaseKind::CompileCacheDownload),
    ),
    ("download", Metric::Phase(PhaseKind::WeightDownload)),
    ("stream", Metric::Phase(PhaseKind::WeightStreaming)),
    ("model load", Metric::Phase(PhaseKind::ModelLoad)),
    ("torch.compile", Metric::Phase(PhaseKind::TorchCompile)),
    ("cache load", Metric::Phase(PhaseKind::CompileCacheLoad)),
    ("mem profiling", Metric::Phase(PhaseKind::MemoryProfiling)),
    ("kv cache", Metric::Phase(PhaseKind::KvCacheAllocation)),
    ("graph capture", Metric::Phase(PhaseKind::CudaGraphCapture)),
    ("warmup", Metric::Phase(PhaseKind::Warmup)),
    ("init engine", Metric::Phase(PhaseKind::InitEngine)),
    ("unattributed", Metric::Phase(PhaseKind::Unattributed)),
    ("to ready", Metric::Until(PhaseKind::ApiReady)),
    ("to 1st request", Metric::Until(PhaseKind::FirstRequest)),
];

fn value(p: &LogParse, m: Metric) -> Option<f64> {
    match m {
        Metric::Phase(k) => p.timeline.seconds(k),
        Metric::Until(k) => p.timeline.until(k),
    }
}

/// One configuration of one model.
#[derive(Debug, Clone)]
pub struct Row {
    pub model: String,
    pub label: String,
    /// The logs (trials).
    pub logs: Vec<String>,
    /// By column header.
    pub cells: BTreeMap<&'static str, Stat>,
    /// Waterfall phases, mean seconds over trials (a trial without the phase counts 0).
    pub stack: Vec<(PhaseKind, f64)>,
    /// Sum of the stack per trial.
    pub stacked_total: Option<Stat>,
}

/// Rows grouped by model, in the order the logs were given.
#[derive(Debug, Clone, Default)]
pub struct Comparison {
    pub rows: Vec<Row>,
    /// Headers of the columns some row has.
    pub columns: Vec<&'static str>,
}

/// Waterfall kinds in stacking order (a container stacks only in a timeline
/// without any of its parts: [`Timeline::is_row`]).
pub fn stack_kinds() -> Vec<PhaseKind> {
    PhaseKind::ALL
        .into_iter()
        .filter(|k| k.in_waterfall() || k.is_container())
        .collect()
}

pub fn compare(items: &[Labeled]) -> Comparison {
    let mut keys: Vec<(String, String)> = Vec::new();
    let mut groups: BTreeMap<(String, String), Vec<&LogParse>> = BTreeMap::new();
    for it in items {
        let model = it
            .parse
            .model
            .clone()
            .unwrap_or_else(|| "unknown model".into());
        let k = (model, it.label.clone());
        if !groups.contains_key(&k) {
            keys.push(k.clone());
        }
        groups.entry(k).or_default().push(&it.parse);
    }
    // Group rows by model, keeping first-appearance order of models and labels.
    let mut models: Vec<String> = Vec::new();
    for (m, _) in &keys {
        if !models.contains(m) {
            models.push(m.clone());
        }
    }
    keys.sort_by_key(|(m, _)| models.iter().position(|x| x == m));
    let kinds = stack_kinds();
    let mut rows = Vec::new();
    for k in keys {
        let logs = groups.remove(&k).unwrap_or_default();
        let mut cells = BTreeMap::new();
        for (h, m) in COLUMNS {
            let v: Vec<f64> = logs.iter().filter_map(|p| value(p, *m)).collect();
            if let Some(s) = Stat::of(&v) {
                cells.insert(*h, s);
            }
        }
        let n = logs.len().max(1) as f64;
        let stack = kinds
            .iter()
            .map(|kind| {
                let sum: f64 = logs.iter().filter_map(|p| span_s(&p.timeline, *kind)).sum();
                (*kind, sum / n)
            })
            .filter(|(_, v)| *v > 0.0)
            .collect();
        let totals: Vec<f64> = logs
            .iter()
            .map(|p| kinds.iter().filter_map(|k| span_s(&p.timeline, *k)).sum())
            .collect();
        rows.push(Row {
            model: k.0,
            label: k.1,
            logs: logs.iter().map(|p| p.name.clone()).collect(),
            cells,
            stack,
            stacked_total: Stat::of(&totals),
        });
    }
    let columns = COLUMNS
        .iter()
        .map(|(h, _)| *h)
        .filter(|h| rows.iter().any(|r| r.cells.contains_key(h)))
        .collect();
    Comparison { rows, columns }
}

/// The terminal table: one block per model, seconds.
pub fn text_table(c: &Comparison) -> String {
    let mut out = String::new();
    let mut model: Option<&str> = None;
    let label_w = c
        .rows
        .iter()
        .map(|r| r.label.chars().count())
        .max()
        .unwrap_or(5)
        .max(6);
    let widths: Vec<usize> = c
        .columns
        .iter()
        .map(|h| {
            c.rows
                .iter()
                .filter_map(|r| {
                    r.cells
                        .get(h)
                        .map(|s| s.cell_of(r.logs.len()).chars().count())
                })
                .max()
                .unwrap_or(0)
                .max(h.chars().count())
        })
        .collect();
    for r in &c.rows {
        if model != Some(r.model.as_str()) {
            if model.is_some() {
                out.push('\n');
            }
            model = Some(r.model.as_str());
            let _ = writeln!(out, "== {} (seconds)", r.model);
            let _ = write!(out, "{:<label_w$} {:>2}", "config", "n");
            for (h, w) in c.columns.iter().zip(&widths) {
                let _ = write!(out, "  {h:>w$}");
            }
            out.push('\n');
        }
        let _ = write!(out, "{:<label_w$} {:>2}", r.label, r.logs.len());
        for (h, w) in c.columns.iter().zip(&widths) {
            let cell = r
                .cells
                .get(h)
                .map_or("–".to_string(), |s| s.cell_of(r.logs.len()));
            let _ = write!(out, "  {cell:>w$}");
        }
        out.push('\n');
    }
    out
}

/// Wall-clock seconds of a waterfall phase in one timeline (summed for gaps), so
/// that a bar adds up to the elapsed time; tables show the engine's own figures.
fn span_s(t: &Timeline, k: PhaseKind) -> Option<f64> {
    let v: Vec<f64> = t
        .of(k)
        .filter(|p| t.is_row(p))
        .filter_map(|p| match (p.start_ns, p.end_ns) {
            (Some(s), Some(e)) => Some(ns_to_s(e.saturating_sub(s))),
            _ => p.duration_s,
        })
        .collect();
    (!v.is_empty()).then(|| v.iter().sum())
}
