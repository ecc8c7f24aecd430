//! Per-client `partN/` files pooled from their per-request arrays, and pooled
//! percentiles set beside the averaged ones.

use serde::{Deserialize, Serialize};

use super::field::Field;
use super::result::{Metric, VllmBenchResult};
use super::VllmJsonError;
use servescope_loadgen::stats::{validate_percentiles, Summary};

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

/// Compares the percentile `p` of client parts: averaged (the wrong method), the
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
