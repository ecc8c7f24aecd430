//! Prefill–decode attribution: where a disaggregated deployment's TTFT
//! goes, per request and per run, and what is wrong with it.
//!
//! * [`join`]: client records ⋈ the decode instance's per-request `metrics` block ⋈
//!   P's and D's `llm_request` OTLP spans, by `x-request-id`.
//! * [`decompose`]: per-request TTFT components along the pipeline, each with its
//!   source; the decode side split into engine ITL and streaming overhead.
//! * [`runlevel`]: the same components from the engines' `/metrics` deltas alone
//!   (histogram sums are exact over the window; the caveats are stated).
//! * [`kv`]: KV-transfer bandwidth from `vllm:nixl_*` against the fabric probe's
//!   capacity, failures and expiries, and the transfer rate over time.
//! * [`diagnose`]: named findings with evidence and a fix.
//! * [`analyze`]: `servescope attribute RUN`: all of the above from the store.

pub mod analyze;
pub mod attribution;
pub mod decompose;
pub mod diagnose;
pub mod join;
pub mod kv;
pub mod kv_path;
pub mod kv_path_rules;
pub mod logs;
pub mod runlevel;

pub use analyze::attribute;
pub use attribution::{Attribution, Finding, PointAttribution, Severity};
pub use decompose::{Breakdown, Component};
pub use diagnose::diagnose;

/// Errors of attribution.
#[derive(Debug, thiserror::Error)]
pub enum PdError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("run {0} has no load points: attribution needs a load or pd run")]
    NoPoints(i64),
    #[error(transparent)]
    Otlp(#[from] crate::analysis::otlp::OtlpError),
    #[error("{0}")]
    Config(String),
}
