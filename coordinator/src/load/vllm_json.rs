//! Import and export of `vllm bench serve --save-result` JSON (vLLM 0.11–0.33 keys).
//!
//! * [`VllmBenchResult`] types the known keys and keeps every other key (the
//!   `pXX_*_ms` percentiles, `--metadata` pairs, aggregator additions…) in
//!   [`VllmBenchResult::extra`]. Each typed key is a [`Field`]: absent, `null` or a value,
//!   so export writes back exactly the keys that were read: import → export → import is
//!   lossless (compared as `serde_json::Value`). The one formatting caveat: an integer
//!   literal in a float key (`"duration": 23`) is written back as `23.0`.
//! * [`VllmBenchResult::failures`] says how many requests failed: vLLM ≤ 0.11 writes no
//!   `failed` key, so `num_prompts − completed` is the only trace of failures there.
//! * [`VllmBenchResult::provenance`] tells a per-client file from an "all-parts"
//!   aggregate written by the seed's `aggregate_results.py` (summed throughputs and
//!   *averaged* percentiles): in a genuine vLLM file `request_throughput` is exactly
//!   `completed / duration`; an aggregate breaks that identity.
//! * [`pool_parts`] pools `partN/` files from their per-request arrays (`--save-detailed`:
//!   `ttfts`, `itls`, `output_lens`, `errors`) and recomputes every statistic as vLLM
//!   would over all samples; [`compare_parts`] sets pooled percentiles (when arrays
//!   exist) beside the averaged ones and the range the pooled value must lie in.
//! * [`VllmBenchResult::from_aggregate`] exports servescope's own [`Aggregate`] with the
//!   same key names and units (ms for latency keys), so existing plotting scripts work.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use thiserror::Error;

use super::metrics::{Aggregate, AggregationMethod};
use super::stats::{percentile_word, validate_percentiles, StatsError, Summary};

/// Errors from reading or writing vLLM bench JSON.
#[derive(Debug, Error)]
pub enum VllmJsonError {
    /// The file could not be read or written.
    #[error("{file}: {source}")]
    Io {
        /// File name.
        file: String,
        /// Underlying error.
        source: std::io::Error,
    },
    /// Not JSON.
    #[error("{file}: not valid JSON: {message}")]
    Parse {
        /// File name.
        file: String,
        /// Parser message (with line and column).
        message: String,
    },
    /// The top level is not an object.
    #[error("{file}: expected a JSON object at the top level")]
    NotAnObject {
        /// File name.
        file: String,
    },
    /// A known key has a value of the wrong type.
    #[error("{file}: key {key:?}: {message}")]
    BadKey {
        /// File name.
        file: String,
        /// The key.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// The file holds another number of results than expected.
    #[error("{file}: holds {count} results, expected exactly one (use import_file_all)")]
    NotOneResult {
        /// File name.
        file: String,
        /// How many results it holds.
        count: usize,
    },
    /// Per-request arrays needed for pooling are missing or inconsistent.
    #[error("{file}: cannot pool: {message}")]
    NoPerRequestData {
        /// File name.
        file: String,
        /// What is missing.
        message: String,
    },
    /// Serialisation failed (non-finite number).
    #[error("cannot write JSON: {0}")]
    Serialize(String),
    /// Statistics error.
    #[error(transparent)]
    Stats(#[from] StatsError),
}

/// A key that may be absent, `null`, or hold a value; absent keys are not written.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Field<T> {
    /// The key is not in the file.
    #[default]
    Absent,
    /// The key is `null`.
    Null,
    /// The key holds a value.
    Value(T),
}

impl<T> Field<T> {
    /// Whether the key is absent (then it is not serialised).
    pub fn is_absent(&self) -> bool {
        matches!(self, Field::Absent)
    }
    /// The value, if any.
    pub fn get(&self) -> Option<&T> {
        match self {
            Field::Value(v) => Some(v),
            _ => None,
        }
    }
    /// `Some(v)` → value, `None` → `null`.
    pub fn from_option(v: Option<T>) -> Field<T> {
        v.map_or(Field::Null, Field::Value)
    }
}

impl<T: Copy> Field<T> {
    /// The value, if any, by copy.
    pub fn value(&self) -> Option<T> {
        self.get().copied()
    }
}

impl<T: Serialize> Serialize for Field<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Field::Value(v) => v.serialize(s),
            _ => s.serialize_none(),
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Field<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Field::from_option(Option::<T>::deserialize(d)?))
    }
}

/// `request_rate`: a number, or the string `"inf"` (vLLM 0.11 may also write a huge
/// float such as `1e9` for "all at once").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RequestRate {
    /// Requests per second.
    Rate(f64),
    /// Text, normally `"inf"`.
    Text(String),
}

impl RequestRate {
    /// Requests per second (`inf` for `"inf"` and unparsable text).
    pub fn as_f64(&self) -> f64 {
        match self {
            RequestRate::Rate(r) => *r,
            RequestRate::Text(t) => t.parse().unwrap_or(f64::INFINITY),
        }
    }
}

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

fn key_name(file: &str, key: &str, e: serde_json::Error) -> VllmJsonError {
    VllmJsonError::BadKey {
        file: file.to_string(),
        key: key.to_string(),
        message: e.to_string(),
    }
}

/// Parses one result object; `file` names the source in errors.
pub fn parse_value(value: Value, file: &str) -> Result<VllmBenchResult, VllmJsonError> {
    let Value::Object(map) = value else {
        return Err(VllmJsonError::NotAnObject {
            file: file.to_string(),
        });
    };
    // Check the known keys one by one so that an error names the key.
    for key in VllmBenchResult::KNOWN_KEYS {
        if let Some(v) = map.get(*key) {
            let mut one = Map::new();
            one.insert((*key).to_string(), v.clone());
            serde_json::from_value::<VllmBenchResult>(Value::Object(one))
                .map_err(|e| key_name(file, key, e))?;
        }
    }
    serde_json::from_value(Value::Object(map)).map_err(|e| VllmJsonError::Parse {
        file: file.to_string(),
        message: e.to_string(),
    })
}

/// Parses every result object in `text` (one, or several with `--append-result`).
pub fn parse_all(text: &str, file: &str) -> Result<Vec<VllmBenchResult>, VllmJsonError> {
    serde_json::Deserializer::from_str(text)
        .into_iter::<Value>()
        .map(|v| {
            let v = v.map_err(|e| VllmJsonError::Parse {
                file: file.to_string(),
                message: e.to_string(),
            })?;
            parse_value(v, file)
        })
        .collect()
}

/// Parses text holding exactly one result.
pub fn parse_str(text: &str, file: &str) -> Result<VllmBenchResult, VllmJsonError> {
    let mut all = parse_all(text, file)?;
    if all.len() != 1 {
        return Err(VllmJsonError::NotOneResult {
            file: file.to_string(),
            count: all.len(),
        });
    }
    Ok(all.remove(0))
}

fn read(path: &Path) -> Result<String, VllmJsonError> {
    std::fs::read_to_string(path).map_err(|source| VllmJsonError::Io {
        file: path.display().to_string(),
        source,
    })
}

/// Imports a file holding exactly one result.
pub fn import_file(path: &Path) -> Result<VllmBenchResult, VllmJsonError> {
    parse_str(&read(path)?, &path.display().to_string())
}

/// Imports every result of a file (`--append-result` files hold several).
pub fn import_file_all(path: &Path) -> Result<Vec<VllmBenchResult>, VllmJsonError> {
    parse_all(&read(path)?, &path.display().to_string())
}

/// Serialises to pretty JSON (every key that was read, typed keys first).
pub fn to_json_string(result: &VllmBenchResult) -> Result<String, VllmJsonError> {
    serde_json::to_string_pretty(result).map_err(|e| VllmJsonError::Serialize(e.to_string()))
}

/// Writes a result as pretty JSON.
pub fn export_file(path: &Path, result: &VllmBenchResult) -> Result<(), VllmJsonError> {
    std::fs::write(path, to_json_string(result)?).map_err(|source| VllmJsonError::Io {
        file: path.display().to_string(),
        source,
    })
}

fn rel_differs(a: f64, b: f64) -> bool {
    (a - b).abs() > 1e-9 * a.abs().max(b.abs()).max(1e-300)
}

impl VllmBenchResult {
    /// The stored `p{word}_{metric}_ms` value.
    pub fn percentile_ms(&self, metric: Metric, p: f64) -> Option<f64> {
        let key = format!("p{}_{}_ms", percentile_word(p), metric.name());
        self.extra.get(&key).and_then(Value::as_f64)
    }

    /// Mean, median, std and every stored percentile of a metric.
    pub fn stored_stats(&self, metric: Metric) -> StoredStats {
        let (mean, median, std) = match metric {
            Metric::Ttft => (&self.mean_ttft_ms, &self.median_ttft_ms, &self.std_ttft_ms),
            Metric::Tpot => (&self.mean_tpot_ms, &self.median_tpot_ms, &self.std_tpot_ms),
            Metric::Itl => (&self.mean_itl_ms, &self.median_itl_ms, &self.std_itl_ms),
            Metric::E2el => (&self.mean_e2el_ms, &self.median_e2el_ms, &self.std_e2el_ms),
        };
        let suffix = format!("_{}_ms", metric.name());
        let mut percentiles: Vec<(f64, f64)> = self
            .extra
            .iter()
            .filter_map(|(k, v)| {
                let p = k.strip_prefix('p')?.strip_suffix(&suffix)?.parse().ok()?;
                Some((p, v.as_f64()?))
            })
            .collect();
        percentiles.sort_by(|a, b| a.0.total_cmp(&b.0));
        StoredStats {
            mean: mean.value(),
            median: median.value(),
            std: std.value(),
            percentiles,
        }
    }

    /// How many requests failed.
    pub fn failures(&self) -> FailureReport {
        let num_prompts = self.num_prompts.value();
        let completed = self.completed.value();
        let failed_key = self.failed.value();
        let missing = num_prompts.zip(completed).map(|(n, c)| n.saturating_sub(c));
        let failed = failed_key.or(missing);
        FailureReport {
            num_prompts,
            completed,
            failed_key,
            failed,
            failure_rate: failed
                .zip(num_prompts)
                .filter(|(_, n)| *n > 0)
                .map(|(f, n)| f as f64 / n as f64),
            error_entries: self
                .errors
                .get()
                .map(|e| e.iter().filter(|s| !s.is_empty()).count()),
            silent: failed_key.is_none() && failed.is_some_and(|f| f > 0),
        }
    }

    /// Per-client result or averaged "all-parts" aggregate; `path` adds the directory
    /// name as evidence.
    pub fn provenance(&self, path: Option<&Path>) -> Provenance {
        let mut reasons = Vec::new();
        if let Some(p) = path {
            if p.components().any(|c| c.as_os_str() == "all-parts") {
                reasons.push("path contains an `all-parts` directory".to_string());
            }
        }
        if let (Some(c), Some(d), Some(rt)) = (
            self.completed.value(),
            self.duration.value(),
            self.request_throughput.value(),
        ) {
            if d > 0.0 && rel_differs(c as f64 / d, rt) {
                reasons.push(format!(
                    "request_throughput {rt} != completed/duration {} (summed per-part throughputs over an averaged duration)",
                    c as f64 / d
                ));
            }
        }
        if let (Some(t), Some(d), Some(ot)) = (
            self.total_output_tokens.value(),
            self.duration.value(),
            self.output_throughput.value(),
        ) {
            if d > 0.0 && rel_differs(t as f64 / d, ot) {
                reasons.push("output_throughput != total_output_tokens/duration".to_string());
            }
        }
        if reasons.is_empty() {
            Provenance::PerClient
        } else {
            Provenance::AveragedAggregate { reasons }
        }
    }

    /// Exports servescope's aggregate as a vllm-bench result (latency keys in ms,
    /// from the scheduled time; extra `servescope_*` keys carry what vLLM lacks).
    pub fn from_aggregate(agg: &Aggregate, meta: &ExportMeta) -> VllmBenchResult {
        let mut r = VllmBenchResult {
            date: Field::Value(meta.date.clone()),
            endpoint_type: Field::Value(meta.backend.clone()),
            backend: Field::Value(meta.backend.clone()),
            label: Field::from_option(meta.label.clone()),
            model_id: Field::Value(meta.model_id.clone()),
            tokenizer_id: Field::Value(meta.tokenizer_id.clone()),
            num_prompts: Field::Value(agg.num_requests),
            request_rate: Field::Value(match meta.request_rate {
                Some(r) if r.is_finite() => RequestRate::Rate(r),
                _ => RequestRate::Text("inf".into()),
            }),
            burstiness: Field::Value(meta.burstiness),
            max_concurrency: Field::from_option(meta.max_concurrency),
            duration: Field::Value(agg.duration_s),
            completed: Field::Value(agg.completed),
            failed: Field::Value(agg.failed),
            total_input_tokens: Field::Value(agg.total_input_tokens),
            total_output_tokens: Field::Value(agg.total_output_tokens),
            request_throughput: Field::Value(agg.request_throughput),
            request_goodput: Field::from_option(agg.request_goodput),
            output_throughput: Field::Value(agg.output_throughput),
            total_token_throughput: Field::Value(agg.total_token_throughput),
            max_output_tokens_per_s: Field::Value(agg.peak_output_tokens_per_s),
            max_concurrent_requests: Field::Value(agg.peak_concurrency),
            ..VllmBenchResult::default()
        };
        for (metric, s) in [
            (Metric::Ttft, &agg.ttft_ms),
            (Metric::Tpot, &agg.tpot_ms),
            (Metric::Itl, &agg.itl_ms),
            (Metric::E2el, &agg.e2el_ms),
        ] {
            r.set_stats(metric, s);
        }
        let x = &mut r.extra;
        let origin = "scheduled (includes client-side queueing; vLLM counts from send)";
        x.insert("servescope_latency_origin".into(), origin.into());
        let method = match agg.method {
            AggregationMethod::Pooled => "pooled",
            AggregationMethod::AveragedShards => "averaged_shards",
        };
        x.insert("servescope_aggregation".into(), method.into());
        x.insert("servescope_shards".into(), agg.shards.into());
        x.insert("servescope_failure_rate".into(), agg.failure_rate.into());
        let classes: Map<String, Value> = agg
            .errors_by_class
            .iter()
            .map(|(k, v)| (k.clone(), (*v).into()))
            .collect();
        x.insert("servescope_errors_by_class".into(), Value::Object(classes));
        x.insert(
            "servescope_mean_ttft_from_send_ms".into(),
            agg.ttft_from_send_ms.mean.into(),
        );
        x.insert(
            "servescope_mean_queue_wait_ms".into(),
            agg.queue_wait_ms.mean.into(),
        );
        x.insert(
            "servescope_mean_itl_per_token_ms".into(),
            agg.itl_per_token_ms.mean.into(),
        );
        for (name, n) in [("gpu", agg.per_gpu), ("replica", agg.per_replica)] {
            if let Some(n) = n {
                x.insert(format!("servescope_{name}s"), n.divisor.into());
                x.insert(
                    format!("servescope_output_throughput_per_{name}"),
                    n.output_throughput.into(),
                );
                x.insert(
                    format!("servescope_request_throughput_per_{name}"),
                    n.request_throughput.into(),
                );
            }
        }
        r
    }

    /// Writes mean/median/std and every `pXX` of a summary (ms) under vLLM's keys.
    pub fn set_stats(&mut self, metric: Metric, s: &Summary) {
        let (mean, median, std) = match metric {
            Metric::Ttft => (
                &mut self.mean_ttft_ms,
                &mut self.median_ttft_ms,
                &mut self.std_ttft_ms,
            ),
            Metric::Tpot => (
                &mut self.mean_tpot_ms,
                &mut self.median_tpot_ms,
                &mut self.std_tpot_ms,
            ),
            Metric::Itl => (
                &mut self.mean_itl_ms,
                &mut self.median_itl_ms,
                &mut self.std_itl_ms,
            ),
            Metric::E2el => (
                &mut self.mean_e2el_ms,
                &mut self.median_e2el_ms,
                &mut self.std_e2el_ms,
            ),
        };
        *mean = Field::Value(s.mean);
        *median = Field::Value(s.median);
        *std = Field::Value(s.std);
        for (p, v) in &s.percentiles {
            let key = format!("p{}_{}_ms", percentile_word(*p), metric.name());
            self.extra.insert(key, (*v).into());
        }
    }
}

/// What an exported result says about the run beyond the metrics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportMeta {
    /// `YYYYmmdd-HHMMSS`.
    pub date: String,
    /// Written to `backend` and `endpoint_type` (`openai`, `openai-chat`, `vllm`).
    pub backend: String,
    /// `label` (null when `None`).
    pub label: Option<String>,
    /// Served model.
    pub model_id: String,
    /// Tokenizer.
    pub tokenizer_id: String,
    /// Request rate; `None` (closed loop) is written as `"inf"`.
    pub request_rate: Option<f64>,
    /// Gamma shape (1.0 = Poisson).
    pub burstiness: f64,
    /// Concurrency limit (null when `None`).
    pub max_concurrency: Option<u64>,
}

/// Latency samples (s, vLLM's unit) of one file's successful requests.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RequestSamples {
    /// TTFT per success.
    pub ttft_s: Vec<f64>,
    /// TPOT per success with > 1 output token: Σitl/(n − 1). vLLM's (latency −
    /// ttft)/(n − 1) equals it up to rounding for completions backends (chat's latency
    /// also covers the final usage chunk, not in the arrays).
    pub tpot_s: Vec<f64>,
    /// Every chunk gap.
    pub itl_s: Vec<f64>,
    /// ttft + Σitl per success (vLLM's completions latency, up to rounding).
    pub e2el_s: Vec<f64>,
    /// Input tokens of successes.
    pub input_tokens: u64,
    /// Output tokens of successes.
    pub output_tokens: u64,
    /// Successful requests.
    pub completed: u64,
    /// Requests in the arrays.
    pub requests: u64,
}

/// Per-request samples from a file's `--save-detailed` arrays. A request succeeded
/// when its `errors` entry is empty (without `errors`: when its output length is > 0).
pub fn request_samples(r: &VllmBenchResult, file: &str) -> Result<RequestSamples, VllmJsonError> {
    let missing = |what: &str| VllmJsonError::NoPerRequestData {
        file: file.to_string(),
        message: what.to_string(),
    };
    let ttfts = r
        .ttfts
        .get()
        .ok_or_else(|| missing("no `ttfts` array (run vllm bench serve with --save-detailed)"))?;
    let itls = r.itls.get().ok_or_else(|| missing("no `itls` array"))?;
    let outs = r
        .output_lens
        .get()
        .ok_or_else(|| missing("no `output_lens` array"))?;
    let n = ttfts.len();
    if itls.len() != n || outs.len() != n {
        return Err(missing(
            "`ttfts`, `itls` and `output_lens` differ in length",
        ));
    }
    let ins = r.input_lens.get();
    let errs = r.errors.get();
    if ins.is_some_and(|v| v.len() != n) || errs.is_some_and(|v| v.len() != n) {
        return Err(missing("`input_lens`/`errors` length differs from `ttfts`"));
    }
    let mut s = RequestSamples {
        requests: n as u64,
        ..RequestSamples::default()
    };
    for i in 0..n {
        let ok = match errs {
            Some(e) => e[i].is_empty(),
            None => outs[i] > 0,
        };
        if !ok {
            continue;
        }
        s.completed += 1;
        s.output_tokens += outs[i];
        s.input_tokens += ins.map_or(0, |v| v[i]);
        let decode = itls[i].iter().sum::<f64>();
        s.ttft_s.push(ttfts[i]);
        s.e2el_s.push(ttfts[i] + decode);
        if outs[i] > 1 {
            s.tpot_s.push(decode / (outs[i] - 1) as f64);
        }
        s.itl_s.extend_from_slice(&itls[i]);
    }
    Ok(s)
}

/// Pools client parts from their per-request arrays into one result: counts and tokens
/// summed, duration = the longest part (the clients ran concurrently), throughputs over
/// that duration, every statistic recomputed over all samples (as vLLM: seconds, then
/// ×1000). `parts` pairs each result with its file name for errors.
pub fn pool_parts(
    parts: &[(&str, &VllmBenchResult)],
    percentiles: &[f64],
) -> Result<VllmBenchResult, VllmJsonError> {
    validate_percentiles(percentiles)?;
    let mut all = RequestSamples::default();
    let mut duration: f64 = 0.0;
    for (file, r) in parts {
        let s = request_samples(r, file)?;
        all.ttft_s.extend(s.ttft_s);
        all.tpot_s.extend(s.tpot_s);
        all.itl_s.extend(s.itl_s);
        all.e2el_s.extend(s.e2el_s);
        all.input_tokens += s.input_tokens;
        all.output_tokens += s.output_tokens;
        all.completed += s.completed;
        all.requests += s.requests;
        duration = duration.max(r.duration.value().unwrap_or(0.0));
    }
    let mut out = parts
        .first()
        .map(|(_, r)| VllmBenchResult {
            date: r.date.clone(),
            endpoint_type: r.endpoint_type.clone(),
            backend: r.backend.clone(),
            label: r.label.clone(),
            model_id: r.model_id.clone(),
            tokenizer_id: r.tokenizer_id.clone(),
            request_rate: r.request_rate.clone(),
            burstiness: r.burstiness.clone(),
            max_concurrency: r.max_concurrency.clone(),
            ..VllmBenchResult::default()
        })
        .unwrap_or_default();
    let rate = |x: f64| if duration > 0.0 { x / duration } else { 0.0 };
    out.num_prompts = Field::Value(all.requests);
    out.duration = Field::Value(duration);
    out.completed = Field::Value(all.completed);
    out.failed = Field::Value(all.requests - all.completed);
    out.total_input_tokens = Field::Value(all.input_tokens);
    out.total_output_tokens = Field::Value(all.output_tokens);
    out.request_throughput = Field::Value(rate(all.completed as f64));
    out.output_throughput = Field::Value(rate(all.output_tokens as f64));
    out.total_token_throughput = Field::Value(rate((all.input_tokens + all.output_tokens) as f64));
    for (metric, xs) in [
        (Metric::Ttft, &mut all.ttft_s),
        (Metric::Tpot, &mut all.tpot_s),
        (Metric::Itl, &mut all.itl_s),
        (Metric::E2el, &mut all.e2el_s),
    ] {
        let s = Summary::of(xs, percentiles)?.scaled(1000.0);
        out.set_stats(metric, &s);
    }
    out.extra
        .insert("servescope_aggregation".into(), "pooled".into());
    out.extra
        .insert("servescope_shards".into(), parts.len().into());
    Ok(out)
}

/// One metric's percentile across client parts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricComparison {
    /// The metric.
    pub metric: Metric,
    /// Each part's stored value (ms).
    pub parts: Vec<Option<f64>>,
    /// Mean of the parts' values: what an averaging aggregator writes.
    pub averaged: Option<f64>,
    /// Value stored in the all-parts file, when given.
    pub all_parts_file: Option<f64>,
    /// Smallest and largest part value: the pooled percentile lies in this range (up to
    /// interpolation), whatever the per-request data.
    pub pooled_range: Option<(f64, f64)>,
    /// Exact pooled value, when every part has per-request arrays.
    pub pooled: Option<f64>,
    /// Pooled mean weighted by `completed` (exact for TTFT and E2EL from the scalars).
    pub pooled_mean: Option<f64>,
}

/// Pooled versus averaged percentile for every metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartsComparison {
    /// The percentile compared.
    pub percentile: f64,
    /// Per metric (only metrics that some part reports).
    pub metrics: Vec<MetricComparison>,
    /// Why exact pooling was not possible (no per-request arrays), if so.
    pub pooled_unavailable: Option<String>,
}

/// Compares the percentile `p` of client parts: averaged (the seed's method), the
/// value in an all-parts file, the range the pooled value must lie in, and the exact
/// pooled value when the parts carry `--save-detailed` arrays.
pub fn compare_parts(
    parts: &[(&str, &VllmBenchResult)],
    all_parts: Option<&VllmBenchResult>,
    p: f64,
) -> Result<PartsComparison, VllmJsonError> {
    validate_percentiles(&[p])?;
    let (pooled, pooled_unavailable) = match pool_parts(parts, &[p]) {
        Ok(r) => (Some(r), None),
        Err(VllmJsonError::NoPerRequestData { file, message }) => {
            (None, Some(format!("{file}: {message}")))
        }
        Err(e) => return Err(e),
    };
    let mut metrics = Vec::new();
    for metric in Metric::ALL {
        let values: Vec<Option<f64>> = parts
            .iter()
            .map(|(_, r)| r.percentile_ms(metric, p))
            .collect();
        let present: Vec<f64> = values.iter().flatten().copied().collect();
        if present.is_empty() {
            continue;
        }
        let complete = present.len() == values.len();
        let averaged = complete.then(|| present.iter().sum::<f64>() / present.len() as f64);
        let pooled_range = complete.then(|| {
            let lo = present.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = present.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            (lo, hi)
        });
        let mean_of = |r: &VllmBenchResult| match metric {
            Metric::Ttft => r.mean_ttft_ms.value(),
            Metric::E2el => r.mean_e2el_ms.value(),
            _ => None,
        };
        let weighted: Option<(f64, f64)> = parts.iter().try_fold((0.0, 0.0), |(s, w), (_, r)| {
            let c = r.completed.value()? as f64;
            Some((s + mean_of(r)? * c, w + c))
        });
        metrics.push(MetricComparison {
            metric,
            parts: values,
            averaged,
            all_parts_file: all_parts.and_then(|a| a.percentile_ms(metric, p)),
            pooled_range,
            pooled: pooled.as_ref().and_then(|r| r.percentile_ms(metric, p)),
            pooled_mean: weighted.filter(|(_, w)| *w > 0.0).map(|(s, w)| s / w),
        });
    }
    Ok(PartsComparison {
        percentile: p,
        metrics,
        pooled_unavailable,
    })
}

/// A path and what it holds, for listing a directory of results.
pub fn import_dir(dir: &Path) -> Result<Vec<(PathBuf, VllmBenchResult)>, VllmJsonError> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).map_err(|source| VllmJsonError::Io {
            file: d.display().to_string(),
            source,
        })?;
        for e in entries {
            let path = e
                .map_err(|source| VllmJsonError::Io {
                    file: d.display().to_string(),
                    source,
                })?
                .path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|x| x == "json") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
        .into_iter()
        .map(|p| import_file(&p).map(|r| (p, r)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::metrics::{aggregate, AggregateOptions, ChunkArrival, RequestRecord};

    const PART: &str = r#"{"date": "20251102-122408", "endpoint_type": "vllm", "backend": "vllm",
        "label": null, "model_id": "m", "tokenizer_id": "m", "num_prompts": 4,
        "request_rate": "inf", "burstiness": 1.0, "max_concurrency": 2, "duration": 2.0,
        "completed": 3, "total_input_tokens": 30, "total_output_tokens": 9,
        "request_throughput": 1.5, "request_goodput": null, "output_throughput": 4.5,
        "total_token_throughput": 19.5, "p99_ttft_ms": 1.0, "custom_meta": {"a": [1, 2]},
        "input_lens": [10, 10, 10, 10], "output_lens": [3, 3, 0, 3],
        "ttfts": [0.1, 0.2, 0.0, 0.3], "itls": [[0.01, 0.02], [0.01, 0.01], [], [0.05, 0.05]],
        "generated_texts": ["a", "b", "", "c"], "errors": ["", "", "timeout", ""]}"#;

    #[test]
    fn round_trip_keeps_nulls_absent_keys_and_extras() {
        let r = parse_str(PART, "part.json").unwrap();
        assert_eq!(r.label, Field::Null);
        assert_eq!(r.failed, Field::Absent);
        assert_eq!(
            r.request_rate.get().map(RequestRate::as_f64),
            Some(f64::INFINITY)
        );
        let out = to_json_string(&r).unwrap();
        let a: Value = serde_json::from_str(PART).unwrap();
        let b: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(a, b);
        assert!(!out.contains("\"failed\""));
    }

    #[test]
    fn failures_and_provenance() {
        let r = parse_str(PART, "part.json").unwrap();
        let f = r.failures();
        assert_eq!(f.failed, Some(1));
        assert_eq!(f.failure_rate, Some(0.25));
        assert_eq!(f.error_entries, Some(1));
        assert!(f.silent);
        assert_eq!(r.provenance(None), Provenance::PerClient);
        let p = r.provenance(Some(Path::new("x/all-parts/conc4.json")));
        assert!(matches!(p, Provenance::AveragedAggregate { .. }));
        let mut agg = r.clone();
        agg.request_throughput = Field::Value(1.6);
        assert!(matches!(
            agg.provenance(None),
            Provenance::AveragedAggregate { .. }
        ));
    }

    #[test]
    fn bad_keys_are_named() {
        let e = parse_str(r#"{"completed": "many"}"#, "f.json").unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("f.json") && msg.contains("\"completed\""),
            "{msg}"
        );
        let e = parse_str(r#"{"itls": [[0.1, "x"]]}"#, "g.json").unwrap_err();
        assert!(e.to_string().contains("\"itls\""), "{e}");
        assert!(matches!(
            parse_str("[1]", "h.json"),
            Err(VllmJsonError::NotAnObject { .. })
        ));
        assert!(matches!(
            parse_str("{", "i.json"),
            Err(VllmJsonError::Parse { .. })
        ));
        assert!(matches!(
            parse_str("{} {}", "j.json"),
            Err(VllmJsonError::NotOneResult { count: 2, .. })
        ));
    }

    #[test]
    fn samples_and_pooling() {
        let r = parse_str(PART, "p1.json").unwrap();
        let s = request_samples(&r, "p1.json").unwrap();
        assert_eq!(s.completed, 3);
        assert_eq!(s.ttft_s, vec![0.1, 0.2, 0.3]);
        assert_eq!(s.itl_s.len(), 6);
        assert!((s.tpot_s[0] - 0.015).abs() < 1e-12);
        assert!((s.e2el_s[2] - 0.4).abs() < 1e-12);
        let mut r2 = r.clone();
        r2.ttfts = Field::Value(vec![1.0, 2.0, 0.0, 3.0]);
        r2.duration = Field::Value(3.0);
        let pooled = pool_parts(&[("p1", &r), ("p2", &r2)], &[50.0, 99.0]).unwrap();
        assert_eq!(pooled.completed.value(), Some(6));
        assert_eq!(pooled.failed.value(), Some(2));
        assert_eq!(pooled.duration.value(), Some(3.0));
        // np.percentile([.1,.2,.3,1,2,3], 99)*1000 = 2950 (up to rounding)
        let p99 = pooled.percentile_ms(Metric::Ttft, 99.0).unwrap();
        assert!((p99 - 2950.0).abs() < 1e-9, "{p99}");
        let cmp = compare_parts(&[("p1", &r), ("p2", &r2)], None, 99.0).unwrap();
        assert!(cmp.pooled_unavailable.is_none());
        let mut no_arrays = r.clone();
        no_arrays.ttfts = Field::Absent;
        let cmp = compare_parts(&[("p1", &r), ("p3", &no_arrays)], None, 99.0).unwrap();
        assert!(cmp.pooled_unavailable.unwrap().contains("p3"));
    }

    #[test]
    fn export_own_aggregate() {
        let ms = 1_000_000;
        let rec = RequestRecord {
            scheduled_ns: 0,
            send_ns: 0,
            first_byte_ns: Some(90 * ms),
            first_token_ns: None,
            chunks: vec![
                ChunkArrival {
                    at_ns: 100 * ms,
                    tokens: 1,
                },
                ChunkArrival {
                    at_ns: 120 * ms,
                    tokens: 1,
                },
            ],
            last_byte_ns: Some(121 * ms),
            finished_ns: 125 * ms,
            input_tokens: 10,
            output_tokens: 2,
            error: None,
        };
        let opts = AggregateOptions {
            percentiles: vec![99.0, 99.9],
            gpus: Some(8),
            ..AggregateOptions::default()
        };
        let agg = aggregate(&[rec], &opts).unwrap();
        let meta = ExportMeta {
            date: "20261123-130000".into(),
            backend: "openai".into(),
            label: None,
            model_id: "m".into(),
            tokenizer_id: "m".into(),
            request_rate: None,
            burstiness: 1.0,
            max_concurrency: Some(1),
        };
        let r = VllmBenchResult::from_aggregate(&agg, &meta);
        let v: Value = serde_json::from_str(&to_json_string(&r).unwrap()).unwrap();
        assert_eq!(v["mean_ttft_ms"], 100.0);
        assert_eq!(v["p99_tpot_ms"], 20.0);
        assert_eq!(v["p99.9_itl_ms"], 20.0);
        assert_eq!(v["request_rate"], "inf");
        assert_eq!(v["label"], Value::Null);
        assert_eq!(v["request_goodput"], Value::Null);
        assert_eq!(v["completed"], 1);
        assert_eq!(v["failed"], 0);
        assert_eq!(v["servescope_gpus"], 8);
        let back = parse_str(&to_json_string(&r).unwrap(), "export").unwrap();
        assert_eq!(back, r);
        assert_eq!(back.provenance(None), Provenance::PerClient);
    }
}
