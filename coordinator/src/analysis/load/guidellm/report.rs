//! A GuideLLM report as imported: benchmarks, their distributions (in ms) and the
//! per-request records GuideLLM kept.

use std::collections::BTreeMap;

use serde::Serialize;

/// One of GuideLLM's distributions, in the unit of the metric it belongs to (this
/// module scales seconds to milliseconds).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GuidellmStat {
    pub mean: Option<f64>,
    pub median: Option<f64>,
    pub std_dev: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub count: Option<u64>,
    /// GuideLLM's keys (`p001` = 0.1, `p01` = 1, `p99` = 99, `p999` = 99.9) → value.
    pub percentiles: BTreeMap<String, f64>,
}

impl GuidellmStat {
    /// The tool's own percentile `p` (0.1, 1, 5, 10, 25, 50, 75, 90, 95, 99, 99.9).
    pub fn percentile(&self, p: f64) -> Option<f64> {
        let key = if (p - 0.1).abs() < 1e-9 {
            "p001".to_string()
        } else if (p - 99.9).abs() < 1e-9 {
            "p999".to_string()
        } else if p.fract() == 0.0 && (0.0..100.0).contains(&p) {
            format!("p{:02}", p as u32)
        } else {
            return None;
        };
        self.percentiles.get(&key).copied()
    }

    pub(super) fn scaled(mut self, k: f64) -> GuidellmStat {
        for v in [
            &mut self.mean,
            &mut self.median,
            &mut self.std_dev,
            &mut self.min,
            &mut self.max,
        ]
        .into_iter()
        .flatten()
        {
            *v *= k;
        }
        for v in self.percentiles.values_mut() {
            *v *= k;
        }
        self
    }
}

/// Which of GuideLLM's request lists a record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestStatus {
    Successful,
    Errored,
    Incomplete,
}

/// One per-request record, converted to milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GuidellmRequest {
    pub status: RequestStatus,
    pub request_id: Option<String>,
    /// Unix seconds.
    pub start_time_s: Option<f64>,
    pub end_time_s: Option<f64>,
    pub ttft_ms: Option<f64>,
    pub itl_ms: Option<f64>,
    pub tpot_ms: Option<f64>,
    /// `request_latency` (seconds in the file).
    pub e2e_ms: Option<f64>,
    pub prompt_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    /// `info.error`, when the request failed.
    pub error: Option<String>,
}

/// Request counts of one benchmark (over all requests, sampled or not).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RequestTotals {
    pub successful: u64,
    pub errored: u64,
    pub incomplete: u64,
    pub total: u64,
}

/// One benchmark (one strategy point) of a GuideLLM run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GuidellmBenchmark {
    /// `config.strategy.type_`: `concurrent`, `synchronous`, `throughput`, `constant`, `poisson`…
    pub strategy: Option<String>,
    /// `config.strategy.streams` (concurrent).
    pub streams: Option<u64>,
    /// `config.strategy.rate` (constant/poisson), requests/s.
    pub rate: Option<f64>,
    pub totals: RequestTotals,
    pub duration_s: Option<f64>,
    /// Successful requests' distributions, in ms.
    pub ttft_ms: Option<GuidellmStat>,
    pub itl_ms: Option<GuidellmStat>,
    pub tpot_ms: Option<GuidellmStat>,
    pub e2e_ms: Option<GuidellmStat>,
    /// `requests_per_second.successful.mean`.
    pub request_throughput: Option<f64>,
    /// `output_tokens_per_second.total.mean` (what GuideLLM prints as server output tok/s).
    pub output_throughput: Option<f64>,
    /// `tokens_per_second.total.mean`.
    pub total_token_throughput: Option<f64>,
    pub requests: Vec<GuidellmRequest>,
}

impl GuidellmBenchmark {
    /// Samples of one per-request field over the successful records.
    pub fn successful_samples(&self, f: impl Fn(&GuidellmRequest) -> Option<f64>) -> Vec<f64> {
        self.requests
            .iter()
            .filter(|r| r.status == RequestStatus::Successful)
            .filter_map(f)
            .collect()
    }

    /// Mean TTFT recomputed from the per-request records (ms), to check the tool's own.
    pub fn recomputed_mean_ttft_ms(&self) -> Option<f64> {
        servescope_loadgen::stats::mean(&self.successful_samples(|r| r.ttft_ms))
    }

    /// Mean end-to-end latency recomputed from the per-request records (ms).
    pub fn recomputed_mean_e2e_ms(&self) -> Option<f64> {
        servescope_loadgen::stats::mean(&self.successful_samples(|r| r.e2e_ms))
    }

    /// Percentile `p` of TTFT recomputed with numpy's linear method (ms).
    pub fn recomputed_ttft_percentile_ms(&self, p: f64) -> Option<f64> {
        servescope_loadgen::stats::percentile(&mut self.successful_samples(|r| r.ttft_ms), p)
    }
}

/// A whole GuideLLM export.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GuidellmReport {
    /// `metadata.guidellm_version`.
    pub guidellm_version: Option<String>,
    /// `metadata.version` (the report schema).
    pub schema_version: Option<u64>,
    /// `config.spec.backend.model` (or the first benchmark's `config.backend.model`).
    pub model: Option<String>,
    pub target: Option<String>,
    pub benchmarks: Vec<GuidellmBenchmark>,
}
