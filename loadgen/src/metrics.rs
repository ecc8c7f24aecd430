//! Per-request records and the aggregate metrics of a load run, with the definitions of
//! `vllm bench serve` (`calculate_metrics`, vLLM 0.11–0.33) except where noted.
//!
//! * **Latency origin (no coordinated omission).** Every latency counts from the
//!   request's *scheduled* time (open loop: its arrival time; closed loop: the moment it
//!   became due and started waiting for a concurrency slot), not from the moment it was
//!   sent. vLLM starts its timer inside the `--max-concurrency` semaphore and so hides
//!   that wait. Both views are kept: `ttft`/`e2el` from the scheduled time,
//!   `ttft_from_send`/`e2el_from_send` from the send time (vLLM's view), and
//!   `queue_wait` = send − scheduled.
//! * **TTFT** = first token-bearing chunk − start. **E2EL** = last token-bearing chunk −
//!   start (vLLM's completions `latency`; without any chunk, the last byte, else the
//!   finish time). **TPOT** = (E2EL − TTFT)/(output_tokens − 1), only for requests with
//!   more than one output token; it does not depend on the origin.
//! * **ITL** (vLLM's exact definition): one sample per token-bearing chunk after the
//!   first, equal to the gap since the previous chunk, *whatever the number of tokens the
//!   chunk carries* — released vLLM appends `timestamp − most_recent_timestamp` per SSE
//!   message, so a chunk of k tokens contributes one (k-times too long) gap; samples are
//!   pooled over all requests. Because that inflates ITL when servers coalesce tokens
//!   (a server that sends k tokens per chunk shows k-times the per-token gap),
//!   `itl_per_token` is reported beside it: a chunk of k ≥ 1 tokens contributes k
//!   samples of gap/k; 0-token
//!   chunks add no sample and their gap is carried to the next token-bearing chunk;
//!   the extra tokens of the first chunk add no sample (they arrived with the TTFT).
//! * **Throughputs** are over the benchmark duration: earliest scheduled time (vLLM
//!   takes `benchmark_start_time` before the first dispatch) to the last request's
//!   finish (success or failure). Only successful requests count in `completed`, token
//!   totals and latency samples, as in vLLM.
//! * **Goodput** (DistServe, vLLM's `--goodput`): successful requests with TTFT ≤ SLO,
//!   TPOT ≤ SLO (TPOT = 0 when output_tokens ≤ 1) and E2EL ≤ SLO, per second. TTFT and
//!   E2EL are from the scheduled time. A success without any token fails a TTFT SLO.
//! * **Peak concurrency**: maximum number of requests in flight (send → finish) at once,
//!   an exact sweep (vLLM's `max_concurrent_requests` counts requests overlapping 1-s
//!   buckets and so overstates it).
//! * **Pooling**: [`pool_shards`] recomputes every statistic over all shards' samples;
//!   [`averaged_shards`] reproduces the seed's `aggregate_results.py` (sums of counts and
//!   throughputs, *averages* of duration and of every mean/median/std/percentile) only so
//!   that reports can show how wrong it is.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::stats::{StatsError, Summary, DEFAULT_PERCENTILES};

const NS_PER_MS: f64 = 1e6;
const NS_PER_S: f64 = 1e9;

/// One token-bearing SSE event as the client saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkArrival {
    /// Arrival time, ns on the client's clock.
    pub at_ns: u64,
    /// Output tokens this event carried (0 for a role-only or empty delta).
    pub tokens: u32,
}

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// Could not connect.
    Connect,
    /// No answer (or no progress) within the timeout.
    Timeout,
    /// Non-2xx HTTP status.
    HttpStatus(u16),
    /// The stream ended before `[DONE]`/the final chunk.
    StreamCut,
    /// An SSE event could not be parsed.
    MalformedChunk,
    /// The server reported an error inside the stream.
    ServerError,
    /// The output failed the correctness probe (e.g. gibberish).
    WrongOutput,
    /// Anything else, with a short description.
    Other(String),
}

impl ErrorClass {
    /// Stable key used in counts and exports: `connect`, `timeout`, `http_503`,
    /// `stream_cut`, `malformed_chunk`, `server_error`, `wrong_output`, `other`.
    pub fn key(&self) -> String {
        match self {
            ErrorClass::Connect => "connect".into(),
            ErrorClass::Timeout => "timeout".into(),
            ErrorClass::HttpStatus(code) => format!("http_{code}"),
            ErrorClass::StreamCut => "stream_cut".into(),
            ErrorClass::MalformedChunk => "malformed_chunk".into(),
            ErrorClass::ServerError => "server_error".into(),
            ErrorClass::WrongOutput => "wrong_output".into(),
            ErrorClass::Other(_) => "other".into(),
        }
    }
}

/// What the load client records for one request (all times ns on one monotonic clock).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestRecord {
    /// When the request was due (open-loop arrival, or when it started waiting for a
    /// concurrency slot). Latencies count from here.
    pub scheduled_ns: u64,
    /// When the request was written to the connection.
    pub send_ns: u64,
    /// First response byte (headers), if any.
    pub first_byte_ns: Option<u64>,
    /// First token-bearing chunk; defaults to `chunks[0].at_ns` when absent.
    pub first_token_ns: Option<u64>,
    /// Every token-bearing chunk in arrival order, the first one included.
    pub chunks: Vec<ChunkArrival>,
    /// Last response byte, if any.
    pub last_byte_ns: Option<u64>,
    /// When the client was done with the request (success or failure).
    pub finished_ns: u64,
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Output tokens (server `usage.completion_tokens`, else counted).
    pub output_tokens: u64,
    /// `None` for a success.
    pub error: Option<ErrorClass>,
}

/// Latencies of one request, in ms.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RequestLatencies {
    /// Scheduled → first token.
    pub ttft_ms: Option<f64>,
    /// Send → first token (vLLM's view).
    pub ttft_from_send_ms: Option<f64>,
    /// (E2EL − TTFT)/(output_tokens − 1); `None` when output_tokens ≤ 1 or no token.
    pub tpot_ms: Option<f64>,
    /// Scheduled → last token-bearing chunk.
    pub e2el_ms: f64,
    /// Send → last token-bearing chunk (vLLM's view).
    pub e2el_from_send_ms: f64,
    /// Send − scheduled.
    pub queue_wait_ms: f64,
    /// vLLM ITL: one gap per chunk after the first.
    pub itl_ms: Vec<f64>,
    /// Per-token ITL: a k-token chunk gives k samples of gap/k.
    pub itl_per_token_ms: Vec<f64>,
}

fn ms(from: u64, to: u64) -> f64 {
    (to as f64 - from as f64) / NS_PER_MS
}

impl RequestRecord {
    /// Whether the request succeeded.
    pub fn is_success(&self) -> bool {
        self.error.is_none()
    }

    /// First token time (`first_token_ns`, else the first chunk).
    pub fn first_token(&self) -> Option<u64> {
        self.first_token_ns
            .or_else(|| self.chunks.first().map(|c| c.at_ns))
    }

    /// End of the request's latency: last chunk, else last byte, else finish.
    pub fn latency_end_ns(&self) -> u64 {
        self.chunks
            .last()
            .map(|c| c.at_ns)
            .or(self.last_byte_ns)
            .unwrap_or(self.finished_ns)
    }

    /// Checks that the timestamps are ordered; `Err` names the first violation.
    pub fn validate(&self) -> Result<(), String> {
        if self.send_ns < self.scheduled_ns {
            return Err("send_ns is before scheduled_ns".into());
        }
        if self.finished_ns < self.send_ns {
            return Err("finished_ns is before send_ns".into());
        }
        let mut prev = self.send_ns;
        for (i, c) in self.chunks.iter().enumerate() {
            if c.at_ns < prev {
                return Err(format!("chunk {i} arrives before the previous event"));
            }
            prev = c.at_ns;
        }
        if let Some(t) = self.first_token() {
            if t < self.send_ns {
                return Err("first_token_ns is before send_ns".into());
            }
        }
        Ok(())
    }

    /// The request's latencies (meaningful for successes).
    pub fn latencies(&self) -> RequestLatencies {
        let end = self.latency_end_ns();
        let first = self.first_token();
        let e2el_ms = ms(self.scheduled_ns, end);
        let ttft_ms = first.map(|t| ms(self.scheduled_ns, t));
        let tpot_ms = match (ttft_ms, self.output_tokens) {
            (Some(ttft), n) if n > 1 => Some((e2el_ms - ttft) / (n - 1) as f64),
            _ => None,
        };
        let mut itl_ms = Vec::with_capacity(self.chunks.len().saturating_sub(1));
        let mut itl_per_token_ms = Vec::new();
        if let Some(c0) = self.chunks.first() {
            let mut prev_chunk = c0.at_ns;
            let mut prev_token = c0.at_ns;
            for c in &self.chunks[1..] {
                itl_ms.push(ms(prev_chunk, c.at_ns));
                prev_chunk = c.at_ns;
                if c.tokens > 0 {
                    let gap = ms(prev_token, c.at_ns) / f64::from(c.tokens);
                    itl_per_token_ms.extend(std::iter::repeat_n(gap, c.tokens as usize));
                    prev_token = c.at_ns;
                }
            }
        }
        RequestLatencies {
            ttft_ms,
            ttft_from_send_ms: first.map(|t| ms(self.send_ns, t)),
            tpot_ms,
            e2el_ms,
            e2el_from_send_ms: ms(self.send_ns, end),
            queue_wait_ms: ms(self.scheduled_ns, self.send_ns),
            itl_ms,
            itl_per_token_ms,
        }
    }
}

/// Errors from SLO parsing and aggregation.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum MetricsError {
    /// SLO text is empty.
    #[error("empty SLO: expected e.g. `ttft:500ms,tpot:50ms,e2el:10s`")]
    EmptySlo,
    /// An SLO item has no `:`.
    #[error("SLO item {0:?} has no ':' (expected METRIC:VALUE, e.g. ttft:500ms)")]
    SloMissingColon(String),
    /// Unknown SLO metric.
    #[error("unknown SLO metric {0:?} (expected ttft, tpot or e2el)")]
    SloUnknownMetric(String),
    /// A metric given twice.
    #[error("SLO metric {0:?} given more than once")]
    SloDuplicate(String),
    /// Value not a number or with an unknown unit.
    #[error("SLO value {value:?} for {metric}: {reason}")]
    SloBadValue {
        /// Metric name.
        metric: String,
        /// Value text.
        value: String,
        /// What is wrong.
        reason: String,
    },
    /// `--gpus 0` or `--replicas 0`.
    #[error("{0} must be at least 1")]
    ZeroDivisor(&'static str),
    /// A record's timestamps are inconsistent.
    #[error("request {index}: {reason}")]
    InvalidRecord {
        /// Position in the input.
        index: usize,
        /// What is wrong.
        reason: String,
    },
    /// Statistics error (bad percentile list).
    #[error(transparent)]
    Stats(#[from] StatsError),
}

/// Service-level objectives for goodput, in ms (vLLM's `--goodput`).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Slo {
    /// TTFT bound (from the scheduled time).
    pub ttft_ms: Option<f64>,
    /// TPOT bound.
    pub tpot_ms: Option<f64>,
    /// E2EL bound (from the scheduled time).
    pub e2el_ms: Option<f64>,
}

impl std::str::FromStr for Slo {
    type Err = MetricsError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_slo(s)
    }
}

/// Parses `ttft:500ms,tpot:50ms,e2el:2.5s` (items separated by commas and/or spaces;
/// units `us`, `ms`, `s`; a bare number is ms, as vLLM's `--goodput ttft:500`).
/// Values must be non-negative, as vLLM requires.
pub fn parse_slo(text: &str) -> Result<Slo, MetricsError> {
    let mut slo = Slo::default();
    let mut any = false;
    for item in text.split([',', ' ', '\t']).filter(|s| !s.is_empty()) {
        any = true;
        let (name, value) = item
            .split_once(':')
            .ok_or_else(|| MetricsError::SloMissingColon(item.to_string()))?;
        let name = name.trim().to_ascii_lowercase();
        let slot = match name.as_str() {
            "ttft" => &mut slo.ttft_ms,
            "tpot" => &mut slo.tpot_ms,
            "e2el" => &mut slo.e2el_ms,
            _ => return Err(MetricsError::SloUnknownMetric(name)),
        };
        if slot.is_some() {
            return Err(MetricsError::SloDuplicate(name));
        }
        let bad = |reason: &str| MetricsError::SloBadValue {
            metric: name.clone(),
            value: value.to_string(),
            reason: reason.to_string(),
        };
        let v = value.trim();
        let split = v.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(v.len());
        let (num, unit) = v.split_at(split);
        let factor = match unit {
            "" | "ms" => 1.0,
            "s" => 1000.0,
            "us" | "µs" => 0.001,
            _ => return Err(bad("unknown unit (use us, ms or s)")),
        };
        let x: f64 = num.parse().map_err(|_| bad("not a number"))?;
        if !x.is_finite() || x < 0.0 {
            return Err(bad("must be a finite non-negative number"));
        }
        *slot = Some(x * factor);
    }
    if !any {
        return Err(MetricsError::EmptySlo);
    }
    Ok(slo)
}

impl Slo {
    /// Whether a successful request meets every bound (vLLM: `slo >= value`).
    pub fn is_good(&self, lat: &RequestLatencies) -> bool {
        let ttft_ok = self
            .ttft_ms
            .is_none_or(|b| lat.ttft_ms.is_some_and(|t| t <= b));
        let tpot_ok = self.tpot_ms.is_none_or(|b| lat.tpot_ms.unwrap_or(0.0) <= b);
        let e2el_ok = self.e2el_ms.is_none_or(|b| lat.e2el_ms <= b);
        ttft_ok && tpot_ok && e2el_ok
    }
}

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
    /// The seed's wrong method: per-shard statistics averaged.
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
    super::stats::validate_percentiles(&opts.percentiles)?;
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

/// The seed's `aggregate_results.py`, reproduced so that reports can show the error:
/// each shard is aggregated alone, then counts, token totals, throughputs and peak
/// concurrency are **summed** and duration and every mean/median/std/percentile are
/// **averaged** over shards. Do not use it for conclusions; use [`pool_shards`].
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

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    /// A success sent at `send` ms, scheduled at `sched` ms, chunks at `(ms, tokens)`.
    fn req(sched: u64, send: u64, chunks: &[(u64, u32)], out: u64) -> RequestRecord {
        let chunks: Vec<ChunkArrival> = chunks
            .iter()
            .map(|(t, k)| ChunkArrival {
                at_ns: t * MS,
                tokens: *k,
            })
            .collect();
        let last = chunks.last().map_or(send * MS, |c| c.at_ns);
        RequestRecord {
            scheduled_ns: sched * MS,
            send_ns: send * MS,
            first_byte_ns: chunks.first().map(|c| c.at_ns),
            first_token_ns: None,
            chunks,
            last_byte_ns: Some(last + MS),
            finished_ns: last + 2 * MS,
            input_tokens: 100,
            output_tokens: out,
            error: None,
        }
    }

    #[test]
    fn ttft_tpot_itl_single_request() {
        // first token at 100 ms, then chunks at 110, 130 (2 tokens), 160.
        let r = req(0, 0, &[(100, 1), (110, 1), (130, 2), (160, 1)], 5);
        let l = r.latencies();
        assert_eq!(l.ttft_ms, Some(100.0));
        assert_eq!(l.e2el_ms, 160.0);
        // (160 − 100)/(5 − 1)
        assert_eq!(l.tpot_ms, Some(15.0));
        // vLLM: one gap per chunk, a 2-token chunk still gives one 20-ms gap.
        assert_eq!(l.itl_ms, vec![10.0, 20.0, 30.0]);
        // per-token split: 20 ms over 2 tokens → two 10-ms samples.
        assert_eq!(l.itl_per_token_ms, vec![10.0, 10.0, 10.0, 30.0]);
    }

    #[test]
    fn zero_token_chunk_and_single_token_output() {
        let r = req(0, 0, &[(50, 0), (60, 1), (80, 1)], 2);
        let l = r.latencies();
        assert_eq!(l.ttft_ms, Some(50.0)); // vLLM chat: role-only chunk is the TTFT
        assert_eq!(l.itl_ms, vec![10.0, 20.0]);
        assert_eq!(l.itl_per_token_ms, vec![10.0, 20.0]);
        let one = req(0, 0, &[(40, 1)], 1);
        assert_eq!(one.latencies().tpot_ms, None);
    }

    #[test]
    fn coordinated_omission_counts_from_schedule() {
        // Due at 0, waited 400 ms for a slot, first token 100 ms after send.
        let r = req(0, 400, &[(500, 1), (510, 1)], 2);
        let l = r.latencies();
        assert_eq!(l.ttft_ms, Some(500.0));
        assert_eq!(l.ttft_from_send_ms, Some(100.0));
        assert_eq!(l.e2el_ms, 510.0);
        assert_eq!(l.e2el_from_send_ms, 110.0);
        assert_eq!(l.queue_wait_ms, 400.0);
        assert_eq!(l.tpot_ms, Some(10.0)); // origin does not matter for TPOT
        let agg = aggregate(&[r], &AggregateOptions::default()).unwrap();
        assert_eq!(agg.ttft_ms.mean, 500.0);
        assert_eq!(agg.ttft_from_send_ms.mean, 100.0);
    }

    #[test]
    fn aggregate_throughput_goodput_failures_concurrency() {
        let mut fail = req(0, 0, &[], 0);
        fail.error = Some(ErrorClass::HttpStatus(503));
        fail.finished_ns = 50 * MS;
        let mut cut = req(0, 0, &[(100, 1)], 1);
        cut.error = Some(ErrorClass::StreamCut);
        let records = vec![
            req(0, 0, &[(100, 1), (110, 1), (120, 1)], 3), // ttft 100, tpot 10
            req(0, 0, &[(300, 1), (400, 1)], 2),           // ttft 300, tpot 100
            req(0, 600, &[(700, 1), (710, 1)], 2),         // ttft 700 from schedule
            fail,
            cut,
        ];
        let opts = AggregateOptions {
            slo: Some(parse_slo("ttft:500ms,tpot:50ms").unwrap()),
            gpus: Some(4),
            replicas: Some(2),
            ..AggregateOptions::default()
        };
        let a = aggregate(&records, &opts).unwrap();
        assert_eq!((a.num_requests, a.completed, a.failed), (5, 3, 2));
        assert_eq!(a.failure_rate, 0.4);
        assert_eq!(a.errors_by_class.get("http_503"), Some(&1));
        assert_eq!(a.errors_by_class.get("stream_cut"), Some(&1));
        // start 0, last finish = 710 + 2 ms
        assert!((a.duration_s - 0.712).abs() < 1e-12);
        assert_eq!(a.total_output_tokens, 7);
        assert_eq!(a.total_input_tokens, 300);
        assert!((a.request_throughput - 3.0 / 0.712).abs() < 1e-9);
        assert!((a.total_token_throughput - 307.0 / 0.712).abs() < 1e-9);
        // only the first is good: 2nd fails tpot, 3rd fails ttft (from schedule).
        assert_eq!(a.good_requests, Some(1));
        assert!((a.request_goodput.unwrap() - 1.0 / 0.712).abs() < 1e-9);
        // in flight: #1,#2,#4,#5 from 0; #3 sent at 600 while #2 (→402) is done.
        assert_eq!(a.peak_concurrency, 4);
        let g = a.per_gpu.unwrap();
        assert!((g.output_throughput - a.output_throughput / 4.0).abs() < 1e-12);
        assert_eq!(a.per_replica.unwrap().divisor, 2);
        assert_eq!(a.tpot_ms.count, 3);
        assert_eq!(a.itl_ms.count, 4);
        assert_eq!(a.peak_output_tokens_per_s, 7.0);
    }

    #[test]
    fn peak_concurrency_half_open() {
        assert_eq!(peak_concurrency([(0, 10), (10, 20), (20, 30)]), 1);
        assert_eq!(peak_concurrency([(0, 10), (5, 20), (6, 7), (19, 30)]), 3);
        assert_eq!(peak_concurrency(std::iter::empty()), 0);
    }

    #[test]
    fn pooled_vs_averaged_percentiles() {
        // Shard A: fast; shard B: 2 slow outliers.
        let a: Vec<_> = (0..98).map(|i| req(0, 0, &[(100 + i, 1)], 1)).collect();
        let b: Vec<_> = (0..2).map(|i| req(0, 0, &[(5000 + i, 1)], 1)).collect();
        let opts = AggregateOptions::default();
        let pooled = pool_shards(&[&a, &b], &opts).unwrap();
        let avg = averaged_shards(&[&a, &b], &opts).unwrap();
        assert_eq!(pooled.method, AggregationMethod::Pooled);
        assert_eq!(avg.method, AggregationMethod::AveragedShards);
        assert_eq!(pooled.ttft_ms.count, 100);
        // pooled p99 over 100 samples: between the 99th (5000) and 100th (5001).
        assert!((pooled.ttft_ms.percentile(99.0).unwrap() - 5000.01).abs() < 1e-6);
        // averaged: (p99(A) + p99(B))/2 = (196.03 + 5000.99)/2
        let want = (196.03 + 5000.99) / 2.0;
        assert!((avg.ttft_ms.percentile(99.0).unwrap() - want).abs() < 1e-6);
        assert_eq!(avg.completed, 100);
    }

    #[test]
    fn slo_parsing() {
        let s = parse_slo("ttft:500ms, tpot:50 e2el:2.5s").unwrap();
        assert_eq!(s.ttft_ms, Some(500.0));
        assert_eq!(s.tpot_ms, Some(50.0));
        assert_eq!(s.e2el_ms, Some(2500.0));
        assert_eq!("tpot:250us".parse::<Slo>().unwrap().tpot_ms, Some(0.25));
        assert_eq!(parse_slo(""), Err(MetricsError::EmptySlo));
        assert_eq!(
            parse_slo("ttft500"),
            Err(MetricsError::SloMissingColon("ttft500".into()))
        );
        assert_eq!(
            parse_slo("itl:5ms"),
            Err(MetricsError::SloUnknownMetric("itl".into()))
        );
        assert_eq!(
            parse_slo("ttft:1,ttft:2"),
            Err(MetricsError::SloDuplicate("ttft".into()))
        );
        for bad in ["ttft:abc", "ttft:5min", "ttft:-1ms", "ttft:"] {
            let e = parse_slo(bad).unwrap_err();
            assert!(matches!(e, MetricsError::SloBadValue { .. }), "{bad}: {e}");
            assert!(e.to_string().contains("ttft"), "{e}");
        }
    }

    #[test]
    fn invalid_records_and_divisors() {
        let mut r = req(100, 50, &[(200, 1)], 1);
        assert!(matches!(
            aggregate(&[r.clone()], &AggregateOptions::default()),
            Err(MetricsError::InvalidRecord { index: 0, .. })
        ));
        r.scheduled_ns = 0;
        let opts = AggregateOptions {
            gpus: Some(0),
            ..AggregateOptions::default()
        };
        assert_eq!(
            aggregate(&[r], &opts),
            Err(MetricsError::ZeroDivisor("--gpus"))
        );
        let empty = aggregate(&[], &AggregateOptions::default()).unwrap();
        assert_eq!((empty.completed, empty.request_throughput), (0, 0.0));
    }
}
