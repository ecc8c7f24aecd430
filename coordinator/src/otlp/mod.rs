//! OTLP source: an OTLP/gRPC trace receiver (`TraceService/Export`)
//! for vLLM's OpenTelemetry spans (`vllm serve --otlp-traces-endpoint HOST:PORT`).
//!
//! * Startup spans (vLLM ≥ 0.16: `Loading (GPU)`, `Load weights`, `Compile graph`,
//!   `Capture model`, `Allocate KV cache`, `Warmup (GPU)`, …) become startup
//!   [`Phase`](crate::startup::Phase)s with [`Source::Otlp`](crate::startup::Source):
//!   one [`StartupTimeline`] per service and host (see [`startup`] for the name table).
//!   Span names that are not in the table are kept as [`OtherSpan`]s, never turned
//!   into phases.
//! * `llm_request` spans become [`RequestSpan`]s with vLLM's `gen_ai.*` attributes
//!   (queue time, time to first token, end-to-end, prefill/decode, token counts).
//!
//! Span times are the producer's clock (ns since the Unix epoch). They are kept as
//! sent, with the host they were read on ([`ServiceKey::host`]: resource `host.name`,
//! else `service.instance.id`, else the sender's address), so that host's clock
//! offset can be applied later; clocks of different hosts are never mixed.
//!
//! Bounded: a maximum gRPC message size, a maximum number of spans kept and of
//! distinct startup span names; what is over is counted in [`Stats::dropped`].

mod attrs;
pub mod receiver;
pub mod requests;
pub mod startup;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::startup::Timeline;

pub use receiver::{Collector, Limits, Receiver, DEFAULT_LISTEN};
pub use requests::{summarize, RequestSummary};

/// The name of vLLM's per-request span.
pub const REQUEST_SPAN: &str = "llm_request";

/// Errors of the OTLP receiver.
#[derive(Debug, thiserror::Error)]
pub enum OtlpError {
    #[error("binding the OTLP receiver on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("OTLP receiver: {0}")]
    Serve(String),
}

/// Who sent spans: the service and the host whose clock stamped them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ServiceKey {
    /// Resource `service.name` (`unknown_service` when absent).
    pub service: String,
    /// Resource `host.name`, else `service.instance.id`, else the sender's IP address.
    pub host: Option<String>,
}

/// One `llm_request` span. Times are the producer's clock (see [`ServiceKey::host`]);
/// latencies are in seconds, as vLLM sets them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RequestSpan {
    pub service: String,
    pub host: Option<String>,
    /// Process that sent it (`vllm.process_name pid=…` or `pid=…`), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<String>,
    /// Lowercase hex; a client-generated `traceparent` links client and server spans.
    pub trace_id: Option<String>,
    pub span_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_span_id: Option<String>,
    /// Arrival (span start), ns since the epoch on `host`'s clock.
    pub start_ns: Option<i64>,
    pub end_ns: Option<i64>,
    /// `gen_ai.request.id`.
    pub request_id: Option<String>,
    /// `gen_ai.response.model`, else `gen_ai.request.model`.
    pub model: Option<String>,
    /// `gen_ai.usage.prompt_tokens`.
    pub prompt_tokens: Option<u64>,
    /// `gen_ai.usage.completion_tokens`.
    pub completion_tokens: Option<u64>,
    /// `gen_ai.usage.cached_tokens` (newer vLLM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_tokens: Option<u64>,
    /// `gen_ai.request.max_tokens`.
    pub max_tokens: Option<u64>,
    /// `gen_ai.request.n`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<u64>,
    /// `gen_ai.request.temperature`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// `gen_ai.request.top_p`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    /// `gen_ai.latency.time_in_queue`.
    pub queue_s: Option<f64>,
    /// `gen_ai.latency.time_to_first_token`.
    pub ttft_s: Option<f64>,
    /// `gen_ai.latency.e2e`.
    pub e2e_s: Option<f64>,
    /// `gen_ai.latency.time_in_scheduler`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduler_s: Option<f64>,
    /// `gen_ai.latency.time_in_model_prefill`.
    pub prefill_s: Option<f64>,
    /// `gen_ai.latency.time_in_model_decode`.
    pub decode_s: Option<f64>,
    /// `gen_ai.latency.time_in_model_inference`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inference_s: Option<f64>,
    /// `gen_ai.latency.time_in_model_forward`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forward_s: Option<f64>,
    /// `gen_ai.latency.time_in_model_execute`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execute_s: Option<f64>,
    /// Span status was `ERROR`.
    #[serde(default)]
    pub error: bool,
    /// Every other attribute, as text (bounded).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attrs: BTreeMap<String, String>,
}

/// A span that is not a known startup phase, summarised by name (per service/host).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OtherSpan {
    pub name: String,
    /// Spans of that name (all processes).
    pub count: u64,
    /// Earliest start and latest end of the process that finished last.
    pub start_ns: i64,
    pub end_ns: i64,
    /// Processes that sent spans of that name.
    pub processes: usize,
}

/// Startup phases of one service on one host, from its spans.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StartupTimeline {
    pub service: String,
    /// The timeline's `host` is the clock host; its `clock_offset_ns` is 0 (producer clock).
    pub timeline: Timeline,
    /// Spans of names that are not startup phases (or were superseded by a better one).
    pub other_spans: Vec<OtherSpan>,
}

/// Counters of the receiver.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// `Export` calls accepted.
    pub exports: u64,
    /// Spans received (kept, dropped and invalid).
    pub spans: u64,
    /// Request spans kept.
    pub request_spans: u64,
    /// Startup spans aggregated (any name other than `llm_request`).
    pub startup_spans: u64,
    /// Spans dropped because a limit was reached.
    pub dropped: u64,
    /// Startup spans without usable times (unset, end before start): never a phase.
    pub invalid: u64,
}

/// What the receiver collected.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Collected {
    pub startups: Vec<StartupTimeline>,
    pub requests: Vec<RequestSpan>,
    pub stats: Stats,
}
