//! What an attribution produces: per-point and per-run figures and the named
//! findings the diagnosis rules add to them. [`analyze`](super::analyze) fills these
//! types, [`diagnose`](super::diagnose) reads them, [`report`](super::report) draws them.

use std::collections::BTreeMap;

use serde::Serialize;

use super::decompose::Breakdown;
use super::join::JoinStats;
use super::kv::KvAnalysis;
use super::runlevel::RunLevel;
pub use crate::analysis::finding::{Finding, Severity};

/// Decode-side gauges averaged over a point's scrapes.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Gauges {
    pub scrapes: usize,
    pub running: f64,
    pub waiting_capacity: f64,
    pub waiting_deferred: f64,
    pub kv_waiting_to_start: f64,
    pub kv_in_progress: f64,
}

/// Decode-side time per token at a point.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DecodeSummary {
    pub client_tpot_p50_ms: Option<f64>,
    pub engine_itl_p50_ms: Option<f64>,
    pub streaming_overhead_p50_ms: Option<f64>,
    pub tokens_per_burst_mean: Option<f64>,
    pub burst_gap_p50_ms: Option<f64>,
}

/// One point of the sweep, attributed.
#[derive(Debug, Clone, Serialize)]
pub struct PointAttribution {
    pub point_id: i64,
    pub point: i64,
    pub trial: i64,
    pub label: String,
    pub concurrency: Option<f64>,
    pub requests: usize,
    pub failed: usize,
    pub errors_by_class: BTreeMap<String, u64>,
    pub ttft_p50_ms: Option<f64>,
    pub ttft_mean_ms: Option<f64>,
    pub tpot_p50_ms: Option<f64>,
    /// Mean of each per-request component (ms), in pipeline order.
    pub components_mean: Vec<(String, f64)>,
    pub breakdowns: Vec<Breakdown>,
    pub run_level: Option<RunLevel>,
    pub decode: DecodeSummary,
    pub gauges: Gauges,
    pub probe_ok: Option<bool>,
    pub probe_detail: Option<String>,
    pub dispatch_lag_p99_ms: Option<f64>,
    pub dispatch_lag_max_ms: f64,
}

impl PointAttribution {
    pub fn component(&self, name: &str) -> Option<f64> {
        self.components_mean
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| *v)
    }
}

/// A run, attributed.
#[derive(Debug, Clone, Serialize)]
pub struct Attribution {
    pub run_id: i64,
    pub join: JoinStats,
    pub points: Vec<PointAttribution>,
    pub kv: KvAnalysis,
    pub notes: Vec<String>,
    /// Whether the run is disaggregated (a pd run, prefill instances scraped, or KV
    /// transfers counted): the P/D-only rules need it.
    pub disaggregated: bool,
    pub findings: Vec<Finding>,
}
