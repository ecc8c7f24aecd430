//! One request, end to end: build the OpenAI body, send it with an `x-request-id`,
//! decode the SSE stream as bytes arrive (bounded), and fill a [`RequestRecord`]
//! with the scheduled, send, first-byte, per-chunk and last-byte times. A failure
//! gets its class and ends that request only.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use hyper::header::{HeaderName, HeaderValue};
use serde_json::{json, Value};
use tokio::time::Instant;

use super::chunk::{Chunk, ChunkDecoder, Usage};
use super::error_body::ErrorBody;
use super::http::{HttpClient, HttpError};
use super::metrics::{ChunkArrival, ErrorClass, RequestRecord};
use super::schedule::Slot;
use super::sse::{SseDecoder, SseLimits};

/// Which OpenAI API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    Completions,
    Chat,
}

impl Api {
    pub fn path(self) -> &'static str {
        match self {
            Api::Completions => "/v1/completions",
            Api::Chat => "/v1/chat/completions",
        }
    }
}

/// Where requests go.
#[derive(Debug, Clone)]
pub struct Target {
    /// e.g. `http://127.0.0.1:8000` (no trailing path).
    pub base_url: String,
    pub api: Api,
    pub model: String,
    /// `x-request-id` is `<prefix><index>`.
    pub request_id_prefix: String,
    pub sse_limits: SseLimits,
}

/// What to ask.
#[derive(Debug, Clone)]
pub struct Prompt {
    pub text: String,
    /// Prompt tokens as the workload counted them (the server's `usage` wins).
    pub input_tokens: u64,
    pub max_tokens: u32,
    pub ignore_eos: bool,
    /// Correctness probe: the output must start with this (whitespace-trimmed).
    pub expect_prefix: Option<String>,
}

/// Maps the client's monotonic clock to ns since the Unix epoch, from one anchor.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    at: Instant,
    epoch_ns: u64,
}

impl Clock {
    pub fn new() -> Self {
        Clock {
            at: Instant::now(),
            epoch_ns: crate::now_ns(),
        }
    }

    pub fn ns(&self, t: Instant) -> u64 {
        if t >= self.at {
            self.epoch_ns + u64::try_from((t - self.at).as_nanos()).unwrap_or(u64::MAX / 2)
        } else {
            self.epoch_ns
                - u64::try_from((self.at - t).as_nanos())
                    .unwrap_or(0)
                    .min(self.epoch_ns)
        }
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

/// A finished request: the record plus what the server said about it.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub index: usize,
    pub request_id: String,
    pub record: RequestRecord,
    pub status: Option<u16>,
    pub usage: Option<Usage>,
    /// vLLM's per-request `metrics` block, when the server sent one.
    pub server_metrics: Option<Value>,
    /// How late the dispatcher started this request.
    pub dispatch_lag: Duration,
    /// Output text (kept for probes only).
    pub text: Option<String>,
    pub error_detail: Option<String>,
}

/// The JSON body of a streaming request.
pub fn body(target: &Target, p: &Prompt) -> Value {
    let mut v = match target.api {
        Api::Completions => json!({"model": target.model, "prompt": p.text}),
        Api::Chat => {
            json!({"model": target.model, "messages": [{"role": "user", "content": p.text}]})
        }
    };
    v["max_tokens"] = json!(p.max_tokens);
    v["stream"] = json!(true);
    v["stream_options"] = json!({"include_usage": true, "continuous_usage_stats": false});
    if p.ignore_eos {
        v["ignore_eos"] = json!(true);
    }
    v
}

/// Sends one request at its slot and records what happens.
pub async fn execute(
    client: &HttpClient,
    target: &Target,
    p: &Prompt,
    slot: Slot,
    clock: &Clock,
) -> Outcome {
    let request_id = format!("{}{}", target.request_id_prefix, slot.index);
    let url = format!(
        "{}{}",
        target.base_url.trim_end_matches('/'),
        target.api.path()
    );
    let body = Bytes::from(body(target, p).to_string());
    let mut headers = Vec::with_capacity(1);
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        headers.push((HeaderName::from_static("x-request-id"), v));
    }
    let mut sse = SseDecoder::new(target.sse_limits);
    let mut dec = ChunkDecoder::new();
    let mut chunks: Vec<ChunkArrival> =
        Vec::with_capacity(usize::try_from(p.max_tokens).unwrap_or(0).min(1 << 16));
    let mut usage: Option<Usage> = None;
    let mut server_metrics: Option<Value> = None;
    let mut error: Option<(ErrorClass, String)> = None;
    let mut text = p.expect_prefix.as_ref().map(|_| String::new());
    let mut last_byte = None;
    let mut refusal = ErrorBody::default();
    // Atomics, not Cells: the future must stay Send.
    let status = AtomicU32::new(0);
    let first_byte = AtomicU64::new(0);
    let send = Instant::now();
    let res = client
        .post_stream(
            &url,
            &headers,
            body,
            |h| {
                status.store(u32::from(h.status.as_u16()), Ordering::Relaxed);
                first_byte.store(clock.ns(h.at), Ordering::Relaxed);
            },
            |at, bytes| {
                last_byte = Some(at);
                if !(200..300).contains(&status.load(Ordering::Relaxed)) {
                    return refusal.push(bytes);
                }
                let at_ns = clock.ns(at);
                let r = sse.push_with(bytes, |ev| {
                    if error.is_some() {
                        return;
                    }
                    match dec.decode(ev.data) {
                        Ok(Chunk::Token(t)) => {
                            if !t.is_empty() {
                                chunks.push(ChunkArrival {
                                    at_ns,
                                    tokens: t.token_count(),
                                });
                            }
                            if let (Some(buf), Some(s)) = (text.as_mut(), t.text.as_deref()) {
                                if buf.len() < 1 << 16 {
                                    buf.push_str(s);
                                }
                            }
                            if t.usage.is_some() {
                                usage = t.usage;
                            }
                            if t.metrics.is_some() {
                                server_metrics = t.metrics;
                            }
                        }
                        Ok(Chunk::Usage { usage: u, metrics }) => {
                            usage = u.or(usage);
                            server_metrics = metrics.or(server_metrics.take());
                        }
                        Ok(Chunk::Done) | Ok(Chunk::Empty) => {}
                        Ok(Chunk::Error(e)) => error = Some((ErrorClass::ServerError, e.message)),
                        Err(e) => error = Some((ErrorClass::MalformedChunk, e.to_string())),
                    }
                });
                if let Err(e) = r {
                    error.get_or_insert((ErrorClass::MalformedChunk, e.to_string()));
                }
                error.is_none()
            },
        )
        .await;
    let finished = Instant::now();
    match res {
        Err(HttpError::Connect(m)) => error = Some((ErrorClass::Connect, m)),
        Err(HttpError::Timeout(d)) => {
            error = Some((ErrorClass::Timeout, format!("no progress within {d:?}")))
        }
        Err(HttpError::StreamCut(m)) => {
            error.get_or_insert((ErrorClass::StreamCut, m));
        }
        Err(e @ (HttpError::Url { .. } | HttpError::TooLarge { .. })) => {
            error.get_or_insert((ErrorClass::Other(e.to_string()), e.to_string()));
        }
        Ok(head) => {
            if !head.status.is_success() {
                error = Some((
                    ErrorClass::HttpStatus(head.status.as_u16()),
                    refusal.describe(head.status),
                ));
            } else if error.is_none() {
                if let Err(e) = sse.finish() {
                    error = Some((ErrorClass::StreamCut, e.to_string()));
                } else if !dec.is_done() {
                    error = Some((ErrorClass::StreamCut, "stream ended without [DONE]".into()));
                }
            }
        }
    }
    if error.is_none() {
        if let (Some(want), Some(got)) = (&p.expect_prefix, &text) {
            if !got.trim_start().starts_with(want.trim()) {
                let shown: String = got.chars().take(80).collect();
                error = Some((
                    ErrorClass::WrongOutput,
                    format!("expected {want:?}, got {shown:?}"),
                ));
            }
        }
    }
    let counted: u64 = chunks.iter().map(|c| u64::from(c.tokens)).sum();
    let record = RequestRecord {
        scheduled_ns: clock.ns(slot.scheduled),
        send_ns: clock.ns(send),
        first_byte_ns: Some(first_byte.load(Ordering::Relaxed)).filter(|&t| t > 0),
        first_token_ns: chunks.first().map(|c| c.at_ns),
        chunks,
        last_byte_ns: last_byte.map(|t| clock.ns(t)),
        finished_ns: clock.ns(finished),
        input_tokens: usage
            .and_then(|u| u.prompt_tokens)
            .unwrap_or(p.input_tokens),
        output_tokens: usage.and_then(|u| u.completion_tokens).unwrap_or(counted),
        error: error.as_ref().map(|e| e.0.clone()),
    };
    Outcome {
        index: slot.index,
        request_id,
        record,
        status: u16::try_from(status.load(Ordering::Relaxed))
            .ok()
            .filter(|&s| s > 0),
        usage,
        server_metrics,
        dispatch_lag: slot.dispatch_lag,
        text,
        error_detail: error.map(|e| e.1),
    }
}
