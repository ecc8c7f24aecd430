//! Figures read from a result (stored statistics, failures, provenance) and a result
//! built from servescope's own [`Aggregate`].

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::field::{Field, RequestRate};
use super::result::{FailureReport, Metric, Provenance, StoredStats, VllmBenchResult};
use servescope_loadgen::metrics::{Aggregate, AggregationMethod};
use servescope_loadgen::stats::{percentile_word, Summary};

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
