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
//!   samples of gap/k; 0-token chunks add no sample and their gap is carried to the
//!   next token-bearing chunk; the extra tokens of the first chunk add no sample
//!   (they arrived with the TTFT).
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
//!   [`averaged_shards`] reproduces the naive merge of multi-client benchmark scripts (sums of counts and
//!   throughputs, *averages* of duration and of every mean/median/std/percentile) only so
//!   that reports can show how wrong it is.

use thiserror::Error;

use super::stats::StatsError;

mod aggregate;
mod record;
mod slo;

pub use aggregate::{
    aggregate, averaged_shards, peak_concurrency, pool_shards, Aggregate, AggregateOptions,
    AggregationMethod, Normalised,
};
pub use record::{ChunkArrival, ErrorClass, RequestLatencies, RequestRecord};
pub use slo::{parse_slo, Slo};

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

#[cfg(test)]
mod tests;
