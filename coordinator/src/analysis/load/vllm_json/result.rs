//! The typed result object ([`VllmBenchResult`]) with its metric names and what a
//! result says about failures, provenance and stored statistics.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::field::{Field, RequestRate};

/// The latency metrics vLLM reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Time to first token.
    Ttft,
    /// Time per output token (excl. the first).
    Tpot,
    /// Inter-token (chunk) latency.
    Itl,
    /// End-to-end latency.
    E2el,
}

impl Metric {
    /// All four, in vLLM's order.
    pub const ALL: [Metric; 4] = [Metric::Ttft, Metric::Tpot, Metric::Itl, Metric::E2el];
    /// Name used in keys (`ttft`, …).
    pub fn name(self) -> &'static str {
        match self {
            Metric::Ttft => "ttft",
            Metric::Tpot => "tpot",
            Metric::Itl => "itl",
            Metric::E2el => "e2el",
        }
    }
}

macro_rules! result_struct {
    ($($(#[doc = $doc:literal])* $name:ident : $ty:ty,)*) => {
        /// One `vllm bench serve --save-result` object: typed known keys plus the rest.
        #[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
        pub struct VllmBenchResult {
            $(
                $(#[doc = $doc])*
                #[serde(default, skip_serializing_if = "Field::is_absent")]
                pub $name: Field<$ty>,
            )*
            /// Every other key, verbatim (percentiles `pXX_*_ms`, metadata, …).
            #[serde(flatten)]
            pub extra: Map<String, Value>,
        }

        impl VllmBenchResult {
            /// Names of the typed keys.
            pub const KNOWN_KEYS: &'static [&'static str] = &[$(stringify!($name)),*];
        }
    };
}

result_struct! {
    /// `YYYYmmdd-HHMMSS`.
    date: String,
    /// Same as `backend`.
    endpoint_type: String,
    /// `vllm`, `openai-chat`, …
    backend: String,
    /// `--label`.
    label: String,
    /// Served model.
    model_id: String,
    /// Tokenizer used to count tokens.
    tokenizer_id: String,
    /// Requests issued.
    num_prompts: u64,
    /// Configured request rate.
    request_rate: RequestRate,
    /// Gamma shape of inter-arrivals (1 = Poisson).
    burstiness: f64,
    /// `--max-concurrency` (null when unset).
    max_concurrency: u64,
    /// Benchmark duration, s.
    duration: f64,
    /// Successful requests.
    completed: u64,
    /// Failed requests (absent in vLLM ≤ 0.11).
    failed: u64,
    /// Prompt tokens of successful requests.
    total_input_tokens: u64,
    /// Output tokens of successful requests.
    total_output_tokens: u64,
    /// completed / duration.
    request_throughput: f64,
    /// Good requests/s (null unless `--goodput`).
    request_goodput: f64,
    /// Output tokens/s.
    output_throughput: f64,
    /// (Input + output) tokens/s.
    total_token_throughput: f64,
    /// Peak output tokens in a 1-s bucket.
    max_output_tokens_per_s: f64,
    /// Peak requests overlapping a 1-s bucket.
    max_concurrent_requests: u64,
    /// ms.
    mean_ttft_ms: f64,
    /// ms.
    median_ttft_ms: f64,
    /// ms.
    std_ttft_ms: f64,
    /// ms.
    mean_tpot_ms: f64,
    /// ms.
    median_tpot_ms: f64,
    /// ms.
    std_tpot_ms: f64,
    /// ms.
    mean_itl_ms: f64,
    /// ms.
    median_itl_ms: f64,
    /// ms.
    std_itl_ms: f64,
    /// ms.
    mean_e2el_ms: f64,
    /// ms.
    median_e2el_ms: f64,
    /// ms.
    std_e2el_ms: f64,
    /// Per request (`--save-detailed`), failures included.
    input_lens: Vec<u64>,
    /// Per request; 0 for failures.
    output_lens: Vec<u64>,
    /// Per request, s; 0 for failures.
    ttfts: Vec<f64>,
    /// Per request, chunk gaps in s.
    itls: Vec<Vec<f64>>,
    /// Per request.
    generated_texts: Vec<String>,
    /// Per request; empty string for a success.
    errors: Vec<String>,
}

/// How many requests failed, and how we know.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailureReport {
    /// `num_prompts`.
    pub num_prompts: Option<u64>,
    /// `completed`.
    pub completed: Option<u64>,
    /// The `failed` key, when the file has one (vLLM ≥ 0.12).
    pub failed_key: Option<u64>,
    /// Best count: `failed`, else `num_prompts − completed`.
    pub failed: Option<u64>,
    /// failed / num_prompts.
    pub failure_rate: Option<f64>,
    /// Non-empty entries of the `errors` array, when present.
    pub error_entries: Option<usize>,
    /// Failures exist but the file has no `failed` key: a reader of the summary
    /// would not see them.
    pub silent: bool,
}

/// Whether a file is one client's result or an aggregate of client parts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Provenance {
    /// One `vllm bench serve` client.
    PerClient,
    /// An "all-parts" aggregate (summed throughputs, averaged percentiles).
    AveragedAggregate {
        /// Why it was classified so.
        reasons: Vec<String>,
    },
}

/// Statistics of one metric as stored in a file (ms).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StoredStats {
    /// `mean_*_ms`.
    pub mean: Option<f64>,
    /// `median_*_ms`.
    pub median: Option<f64>,
    /// `std_*_ms`.
    pub std: Option<f64>,
    /// Every `pXX_*_ms` key, sorted by percentile.
    pub percentiles: Vec<(f64, f64)>,
}
