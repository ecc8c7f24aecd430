//! Engine records as the store keeps them: a scraped process's role, when in the
//! run a scrape was taken, the scrape itself, and an engine's `llm_request` span.
//! The scraper (`engine::scrape`) and the OTLP receiver produce them.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// What a scraped process does in the serving deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Prefill instance of a disaggregated (PD) deployment.
    Prefill,
    /// Decode instance of a PD deployment.
    Decode,
    /// One vLLM doing both.
    Unified,
    /// The router/proxy in front (e.g. Ray Serve's ingress).
    Proxy,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Prefill => "prefill",
            Role::Decode => "decode",
            Role::Unified => "unified",
            Role::Proxy => "proxy",
        }
    }

    /// The inverse of [`Role::as_str`].
    pub fn parse(s: &str) -> Option<Role> {
        [Role::Prefill, Role::Decode, Role::Unified, Role::Proxy]
            .into_iter()
            .find(|r| r.as_str() == s)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// When in the run a scrape was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// The baseline, before the run's first request.
    Before,
    During,
    /// After the run's last request.
    After,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Before => "before",
            Phase::During => "during",
            Phase::After => "after",
        }
    }

    /// The inverse of [`Phase::as_str`].
    pub fn parse(s: &str) -> Option<Phase> {
        [Phase::Before, Phase::During, Phase::After]
            .into_iter()
            .find(|p| p.as_str() == s)
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One scrape of one target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scraped {
    /// The scrape target's short name, e.g. `prefill-0`.
    pub target: String,
    /// The URL scraped.
    pub url: String,
    pub role: Role,
    pub phase: Phase,
    /// `servescope_proto::now_ns()` when the response (or failure) came.
    pub t_ns: u64,
    /// The exposition text (lossy UTF-8), or why there is none.
    pub body: Result<String, String>,
}

/// One `llm_request` span. Times are the producer's clock (see the OTLP receiver's service key);
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
