//! `llm_request` spans → [`RequestSpan`], and their summary per service and host.

use serde::{Deserialize, Serialize};
use servescope_proto::otlp::resource::v1::Resource;
use servescope_proto::otlp::trace::v1::{status::StatusCode, Span};

use super::attrs::{self, count, float, text};
use super::{RequestSpan, ServiceKey};
use servescope_loadgen::stats::percentile;

/// Attributes read into typed fields (not repeated in `attrs`).
const TYPED: [&str; 19] = [
    "gen_ai.request.id",
    "gen_ai.response.model",
    "gen_ai.request.model",
    "gen_ai.usage.prompt_tokens",
    "gen_ai.usage.completion_tokens",
    "gen_ai.usage.cached_tokens",
    "gen_ai.request.max_tokens",
    "gen_ai.request.n",
    "gen_ai.request.temperature",
    "gen_ai.request.top_p",
    "gen_ai.latency.time_in_queue",
    "gen_ai.latency.time_to_first_token",
    "gen_ai.latency.e2e",
    "gen_ai.latency.time_in_scheduler",
    "gen_ai.latency.time_in_model_prefill",
    "gen_ai.latency.time_in_model_decode",
    "gen_ai.latency.time_in_model_inference",
    "gen_ai.latency.time_in_model_forward",
    "gen_ai.latency.time_in_model_execute",
];

/// A latency attribute: finite and not negative.
fn secs(a: &[servescope_proto::otlp::common::v1::KeyValue], key: &str) -> Option<f64> {
    float(a, key).filter(|v| *v >= 0.0)
}

/// One `llm_request` span as a [`RequestSpan`]; `max_attrs` bounds the other attributes.
pub fn request_span(
    key: &ServiceKey,
    resource: Option<&Resource>,
    span: &Span,
    max_attrs: usize,
) -> RequestSpan {
    let a = &span.attributes;
    let start_ns = attrs::ns(span.start_time_unix_nano);
    // An end before the start is not a time.
    let end_ns = attrs::ns(span.end_time_unix_nano).filter(|e| start_ns.is_none_or(|s| *e >= s));
    let error = span
        .status
        .as_ref()
        .is_some_and(|s| s.code == StatusCode::Error as i32);
    RequestSpan {
        service: key.service.clone(),
        host: key.host.clone(),
        process: attrs::process(resource),
        trace_id: attrs::id_hex(&span.trace_id),
        span_id: attrs::id_hex(&span.span_id),
        parent_span_id: attrs::id_hex(&span.parent_span_id),
        start_ns,
        end_ns,
        request_id: text(a, "gen_ai.request.id"),
        model: text(a, "gen_ai.response.model").or_else(|| text(a, "gen_ai.request.model")),
        prompt_tokens: count(a, "gen_ai.usage.prompt_tokens"),
        completion_tokens: count(a, "gen_ai.usage.completion_tokens"),
        cached_tokens: count(a, "gen_ai.usage.cached_tokens"),
        max_tokens: count(a, "gen_ai.request.max_tokens"),
        n: count(a, "gen_ai.request.n"),
        temperature: float(a, "gen_ai.request.temperature"),
        top_p: float(a, "gen_ai.request.top_p"),
        queue_s: secs(a, "gen_ai.latency.time_in_queue"),
        ttft_s: secs(a, "gen_ai.latency.time_to_first_token"),
        e2e_s: secs(a, "gen_ai.latency.e2e"),
        scheduler_s: secs(a, "gen_ai.latency.time_in_scheduler"),
        prefill_s: secs(a, "gen_ai.latency.time_in_model_prefill"),
        decode_s: secs(a, "gen_ai.latency.time_in_model_decode"),
        inference_s: secs(a, "gen_ai.latency.time_in_model_inference"),
        forward_s: secs(a, "gen_ai.latency.time_in_model_forward"),
        execute_s: secs(a, "gen_ai.latency.time_in_model_execute"),
        error,
        attrs: attrs::to_map(a, max_attrs, &TYPED),
    }
}

/// Request spans of one service on one host, summarised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestSummary {
    pub service: String,
    pub host: Option<String>,
    pub count: usize,
    pub errors: usize,
    /// Spans with a time to first token / an end-to-end latency.
    pub with_ttft: usize,
    pub with_e2e: usize,
    pub ttft_p50_s: Option<f64>,
    pub ttft_p99_s: Option<f64>,
    pub e2e_p50_s: Option<f64>,
    pub e2e_p99_s: Option<f64>,
    pub queue_p50_s: Option<f64>,
    pub queue_p99_s: Option<f64>,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

/// Per service and host (sorted): count, errors, p50/p99 of TTFT, end-to-end and
/// queue time from the spans' `gen_ai.latency.*` attributes (numpy's linear
/// percentile), token totals.
pub fn summarize(spans: &[RequestSpan]) -> Vec<RequestSummary> {
    let mut groups: std::collections::BTreeMap<(&str, Option<&str>), Vec<&RequestSpan>> =
        Default::default();
    for s in spans {
        groups
            .entry((s.service.as_str(), s.host.as_deref()))
            .or_default()
            .push(s);
    }
    groups
        .into_iter()
        .map(|((service, host), v)| {
            let mut ttft: Vec<f64> = v.iter().filter_map(|s| s.ttft_s).collect();
            let mut e2e: Vec<f64> = v.iter().filter_map(|s| s.e2e_s).collect();
            let mut queue: Vec<f64> = v.iter().filter_map(|s| s.queue_s).collect();
            RequestSummary {
                service: service.to_string(),
                host: host.map(str::to_string),
                count: v.len(),
                errors: v.iter().filter(|s| s.error).count(),
                with_ttft: ttft.len(),
                with_e2e: e2e.len(),
                ttft_p50_s: percentile(&mut ttft, 50.0),
                ttft_p99_s: percentile(&mut ttft, 99.0),
                e2e_p50_s: percentile(&mut e2e, 50.0),
                e2e_p99_s: percentile(&mut e2e, 99.0),
                queue_p50_s: percentile(&mut queue, 50.0),
                queue_p99_s: percentile(&mut queue, 99.0),
                prompt_tokens: total(v.iter().filter_map(|s| s.prompt_tokens)),
                completion_tokens: total(v.iter().filter_map(|s| s.completion_tokens)),
            }
        })
        .collect()
}

/// Saturating sum (token counts come from the wire).
fn total(it: impl Iterator<Item = u64>) -> u64 {
    it.fold(0, u64::saturating_add)
}
