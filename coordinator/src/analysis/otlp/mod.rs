//! OTLP source: an OTLP/gRPC trace receiver (`TraceService/Export`)
//! for vLLM's OpenTelemetry spans (`vllm serve --otlp-traces-endpoint HOST:PORT`).
//!
//! * Startup spans (vLLM ≥ 0.16: `Loading (GPU)`, `Load weights`, `Compile graph`,
//!   `Capture model`, `Allocate KV cache`, `Warmup (GPU)`, …) become startup
//!   [`Phase`](crate::analysis::startup::Phase)s with [`Source::Otlp`](crate::analysis::startup::Source):
//!   one [`StartupTimeline`] per engine: its processes export with their own
//!   resources and are tied together by the startup trace ([`engines`]); vLLM's
//!   `Overall Loading` span gives the start and the API-ready point (see [`startup`]
//!   for the name table).
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

pub mod attrs;
pub mod engines;
pub mod requests;
pub mod startup;

use serde::{Deserialize, Serialize};

use crate::analysis::startup::Timeline;

pub use crate::store::RequestSpan;
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
    /// The engine's processes that sent startup spans (`vllm.process_name pid=…`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub processes: Vec<String>,
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
