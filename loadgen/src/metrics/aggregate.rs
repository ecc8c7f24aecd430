//! The aggregate metrics of a run, of one shard or of several shards pooled (and the
//! averaged merge, shown only to say how wrong it is).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::record::{RequestRecord, NS_PER_S};
use super::slo::Slo;
use super::MetricsError;
use crate::stats::{Summary, DEFAULT_PERCENTILES};

/// What to compute beyond the defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AggregateOptions {
    /// Percentiles to report (default 90, 95, 99).
    pub percentiles: Vec<f64>,
    /// Goodput SLOs.
    pub slo: Option<Slo>,
    /// GPUs serving the run (`--gpus`), for per-GPU throughput.
    pub gpus: Option<u32>,
    /// Replicas serving the run (`--replicas`), for per-replica throughput.
    pub replicas: Option<u32>,
}

impl Default for AggregateOptions {
    fn default() -> Self {
        AggregateOptions {
            percentiles: DEFAULT_PERCENTILES.to_vec(),
            slo: None,
            gpus: None,
            replicas: None,
        }
    }
}

/// Throughputs divided by a number of GPUs or replicas.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Normalised {
    /// The divisor (GPUs or replicas).
    pub divisor: u32,
    /// Requests/s per unit.
    pub request_throughput: f64,
    /// Output tokens/s per unit.
    pub output_throughput: f64,
    /// (Input + output) tokens/s per unit.
    pub total_token_throughput: f64,
}

/// How an [`Aggregate`] was formed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AggregationMethod {
    /// Statistics over all raw samples (one client, or shards pooled).
    Pooled,
    /// A wrong method, kept to show its error: per-shard statistics averaged.
    AveragedShards,
}

/// Metrics of one run (or one sweep point). Latency summaries are in ms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Aggregate {
    /// How this was formed.
    pub method: AggregationMethod,
    /// Number of shards that went into it.
    pub shards: usize,
    /// Percentiles reported in every summary.
    pub percentiles: Vec<f64>,
    /// Requests issued.
    pub num_requests: u64,
    /// Successful requests.
    pub completed: u64,
    /// Failed requests.
    pub failed: u64,
    /// failed / num_requests (0 when none issued).
    pub failure_rate: f64,
    /// Failed requests per [`ErrorClass::key`].
    pub errors_by_class: BTreeMap<String, u64>,
    /// Benchmark duration, s.
    pub duration_s: f64,
    /// Prompt tokens of successful requests.
    pub total_input_tokens: u64,
    /// Output tokens of successful requests.
    pub total_output_tokens: u64,
    /// completed / duration.
    pub request_throughput: f64,
    /// total_output_tokens / duration.
    pub output_throughput: f64,
    /// (input + output tokens) / duration.
    pub total_token_throughput: f64,
    /// Good requests / duration, when an SLO was given.
    pub request_goodput: Option<f64>,
    /// Requests meeting the SLO, when one was given.
    pub good_requests: Option<u64>,
    /// The SLO used.
    pub slo: Option<Slo>,
    /// Maximum requests in flight at once.
    pub peak_concurrency: u64,
    /// Most output tokens arriving within one 1-s bucket from the start (vLLM's
    /// `max_output_tokens_per_s`, here from the chunks' real arrival times).
    pub peak_output_tokens_per_s: f64,
    /// TTFT from the scheduled time.
    pub ttft_ms: Summary,
    /// TTFT from the send time (vLLM's view).
    pub ttft_from_send_ms: Summary,
    /// TPOT.
    pub tpot_ms: Summary,
    /// vLLM ITL (one sample per chunk gap).
    pub itl_ms: Summary,
    /// Per-token ITL (k-token chunk → k samples of gap/k).
    pub itl_per_token_ms: Summary,
    /// E2EL from the scheduled time.
    pub e2el_ms: Summary,
    /// E2EL from the send time (vLLM's view).
    pub e2el_from_send_ms: Summary,
    /// Time waiting for a slot or a late send (send − scheduled).
    pub queue_wait_ms: Summary,
    /// Throughput per GPU, with `--gpus`.
    pub per_gpu: Option<Normalised>,
    /// Throughput per replica, with `--replicas`.
    pub per_replica: Option<Normalised>,
}

fn per_second(x: f64, duration_s: f64) -> f64 {
    if duration_s > 0.0 {
        x / duration_s
    } else {
        0.0
    }
}

fn normalised(
    divisor: Option<u32>,
    what: &'static str,
    agg: &Aggregate,
) -> Result<Option<Normalised>, MetricsError> {
    match divisor {
        None => Ok(None),
        Some(0) => Err(MetricsError::ZeroDivisor(what)),
        Some(d) => {
            let k = f64::from(d);
            Ok(Some(Normalised {
                divisor: d,
                request_throughput: agg.request_throughput / k,
                output_throughput: agg.output_throughput / k,
                total_token_throughput: agg.total_token_throughput / k,
            }))
        }
    }
}

/// Maximum number of intervals `[start, end)` open at once.
pub fn peak_concurrency(intervals: impl IntoIterator<Item = (u64, u64)>) -> u64 {
    let mut events: Vec<(u64, i8)> = Vec::new();
    for (s, e) in intervals {
        events.push((s, 1));
        events.push((e.max(s), -1));
    }
    // Ends sort before starts at the same instant (half-open intervals).
    events.sort_unstable();
    let (mut cur, mut peak) = (0i64, 0i64);
    for (_, d) in events {
        cur += i64::from(d);
        peak = peak.max(cur);
    }
    peak as u64
}

/// Aggregates one client's records (vLLM definitions, see the module docs).
pub fn aggregate(
    records: &[RequestRecord],
    opts: &AggregateOptions,
) -> Result<Aggregate, MetricsError> {
    aggregate_shards(&[records], opts)
}

/// Pools several client shards' raw records and recomputes every statistic over all
/// samples (never an average of percentiles). Shards must share one clock.
pub fn pool_shards(
    shards: &[&[RequestRecord]],
    opts: &AggregateOptions,
) -> Result<Aggregate, MetricsError> {
    aggregate_shards(shards, opts)
}

fn aggregate_shards(
    shards: &[&[RequestRecord]],
    opts: &AggregateOptions,
) -> Result<Aggregate, MetricsError> {
    crate::stats::validate_percentiles(&opts.percentiles)?;
    let records = || shards.iter().flat_map(|s| s.iter());
    for (index, r) in records().enumerate() {
        r.validate()
            .map_err(|reason| MetricsError::InvalidRecord { index, reason })?;
    }
    let start = records().map(|r| r.scheduled_ns).min().unwrap_or(0);
    let end = records().map(|r| r.finished_ns).max().unwrap_or(0);
    let duration_s = (end.saturating_sub(start)) as f64 / NS_PER_S;

    let (mut ttft, mut ttft_send, mut tpot, mut itl, mut itl_tok) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut e2el, mut e2el_send, mut wait) = (Vec::new(), Vec::new(), Vec::new());
    let mut errors_by_class = BTreeMap::new();
    let (mut num, mut completed, mut good) = (0u64, 0u64, 0u64);
    let (mut tin, mut tout) = (0u64, 0u64);
    let mut buckets: BTreeMap<u64, u64> = BTreeMap::new();
    for r in records() {
        num += 1;
        if let Some(e) = &r.error {
            *errors_by_class.entry(e.key()).or_insert(0) += 1;
            continue;
        }
        completed += 1;
        tin += r.input_tokens;
        tout += r.output_tokens;
        let lat = r.latencies();
        if opts.slo.is_some_and(|s| s.is_good(&lat)) {
            good += 1;
        }
        ttft.extend(lat.ttft_ms);
        ttft_send.extend(lat.ttft_from_send_ms);
        tpot.extend(lat.tpot_ms);
        e2el.push(lat.e2el_ms);
        e2el_send.push(lat.e2el_from_send_ms);
        wait.push(lat.queue_wait_ms);
        itl.extend(lat.itl_ms);
        itl_tok.extend(lat.itl_per_token_ms);
        for c in &r.chunks {
            let b = c.at_ns.saturating_sub(start) / 1_000_000_000;
            *buckets.entry(b).or_insert(0) += u64::from(c.tokens);
        }
    }
    let p = &opts.percentiles;
    let failed = num - completed;
    let mut agg = Aggregate {
        method: AggregationMethod::Pooled,
        shards: shards.len(),
        percentiles: p.clone(),
        num_requests: num,
        completed,
        failed,
        failure_rate: if num > 0 {
            failed as f64 / num as f64
        } else {
            0.0
        },
        errors_by_class,
        duration_s,
        total_input_tokens: tin,
        total_output_tokens: tout,
        request_throughput: per_second(completed as f64, duration_s),
        output_throughput: per_second(tout as f64, duration_s),
        total_token_throughput: per_second((tin + tout) as f64, duration_s),
        request_goodput: opts.slo.map(|_| per_second(good as f64, duration_s)),
        good_requests: opts.slo.map(|_| good),
        slo: opts.slo,
        peak_concurrency: peak_concurrency(records().map(|r| (r.send_ns, r.finished_ns))),
        peak_output_tokens_per_s: buckets.values().copied().max().unwrap_or(0) as f64,
        ttft_ms: Summary::of(&mut ttft, p)?,
        ttft_from_send_ms: Summary::of(&mut ttft_send, p)?,
        tpot_ms: Summary::of(&mut tpot, p)?,
        itl_ms: Summary::of(&mut itl, p)?,
        itl_per_token_ms: Summary::of(&mut itl_tok, p)?,
        e2el_ms: Summary::of(&mut e2el, p)?,
        e2el_from_send_ms: Summary::of(&mut e2el_send, p)?,
        queue_wait_ms: Summary::of(&mut wait, p)?,
        per_gpu: None,
        per_replica: None,
    };
    agg.per_gpu = normalised(opts.gpus, "--gpus", &agg)?;
    agg.per_replica = normalised(opts.replicas, "--replicas", &agg)?;
    Ok(agg)
}

fn average_summaries(items: &[&Summary]) -> Summary {
    let k = items.len().max(1) as f64;
    let avg = |f: &dyn Fn(&Summary) -> f64| items.iter().map(|s| f(s)).sum::<f64>() / k;
    let percentiles = items
        .first()
        .map(|s0| {
            s0.percentiles
                .iter()
                .enumerate()
                .map(|(i, (p, _))| (*p, avg(&|s: &Summary| s.percentiles[i].1)))
                .collect()
        })
        .unwrap_or_default();
    Summary {
        count: items.iter().map(|s| s.count).sum(),
        mean: avg(&|s| s.mean),
        median: avg(&|s| s.median),
        std: avg(&|s| s.std),
        min: items.iter().map(|s| s.min).fold(f64::INFINITY, f64::min),
        max: items
            .iter()
            .map(|s| s.max)
            .fold(f64::NEG_INFINITY, f64::max),
        percentiles,
    }
}

/// The averaging a per-shard `aggregate_results.py` script does, reproduced so that
/// reports can show the error: each shard is aggregated alone, then counts, token
/// totals, throughputs and peak concurrency are **summed** and duration and every
/// mean/median/std/percentile are **averaged** over shards. Do not use it for conclusions; use [`pool_shards`].
pub fn averaged_shards(
    shards: &[&[RequestRecord]],
    opts: &AggregateOptions,
) -> Result<Aggregate, MetricsError> {
    let parts = shards
        .iter()
        .map(|s| aggregate(s, opts))
        .collect::<Result<Vec<_>, _>>()?;
    let mut out = pool_shards(shards, opts)?;
    let k = parts.len().max(1) as f64;
    let sum_u = |f: &dyn Fn(&Aggregate) -> u64| parts.iter().map(f).sum::<u64>();
    let sum_f = |f: &dyn Fn(&Aggregate) -> f64| parts.iter().map(f).sum::<f64>();
    let summaries = |f: &dyn Fn(&Aggregate) -> &Summary| {
        average_summaries(&parts.iter().map(f).collect::<Vec<_>>())
    };
    out.method = AggregationMethod::AveragedShards;
    out.duration_s = sum_f(&|a| a.duration_s) / k;
    out.request_throughput = sum_f(&|a| a.request_throughput);
    out.output_throughput = sum_f(&|a| a.output_throughput);
    out.total_token_throughput = sum_f(&|a| a.total_token_throughput);
    out.request_goodput = opts
        .slo
        .map(|_| sum_f(&|a| a.request_goodput.unwrap_or(0.0)));
    out.peak_concurrency = sum_u(&|a| a.peak_concurrency);
    out.peak_output_tokens_per_s = sum_f(&|a| a.peak_output_tokens_per_s);
    out.ttft_ms = summaries(&|a| &a.ttft_ms);
    out.ttft_from_send_ms = summaries(&|a| &a.ttft_from_send_ms);
    out.tpot_ms = summaries(&|a| &a.tpot_ms);
    out.itl_ms = summaries(&|a| &a.itl_ms);
    out.itl_per_token_ms = summaries(&|a| &a.itl_per_token_ms);
    out.e2el_ms = summaries(&|a| &a.e2el_ms);
    out.e2el_from_send_ms = summaries(&|a| &a.e2el_from_send_ms);
    out.queue_wait_ms = summaries(&|a| &a.queue_wait_ms);
    out.per_gpu = normalised(opts.gpus, "--gpus", &out)?;
    out.per_replica = normalised(opts.replicas, "--replicas", &out)?;
    Ok(out)
}
