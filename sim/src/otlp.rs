//! The simulator's OpenTelemetry export: one `llm_request` span per finished request,
//! with vLLM's `gen_ai.*` attributes (as `vllm serve --otlp-traces-endpoint` sends
//! them), batched and sent over OTLP/gRPC `TraceService/Export`. Bounded: a full
//! queue drops spans and counts them; an unreachable collector is retried with the
//! next batch and its spans are counted as failed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use servescope_proto::otlp::collector::trace::v1::trace_service_client::TraceServiceClient;
use servescope_proto::otlp::collector::trace::v1::ExportTraceServiceRequest;
use servescope_proto::otlp::common::v1::{any_value, AnyValue, KeyValue};
use servescope_proto::otlp::resource::v1::Resource;
use servescope_proto::otlp::trace::v1::{span::SpanKind, ResourceSpans, ScopeSpans, Span};
use tokio::sync::{mpsc, oneshot};

/// Spans waiting for export at most.
const QUEUE: usize = 65_536;
/// Spans per export call at most.
const BATCH: usize = 512;

/// What a finished request reports.
#[derive(Debug, Clone, Default)]
pub struct RequestTimes {
    /// vLLM's internal id (`cmpl-<x-request-id>-0`).
    pub request_id: String,
    pub model: String,
    pub arrival_ns: u64,
    pub end_ns: u64,
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    pub queue_s: f64,
    pub ttft_s: f64,
    pub e2e_s: f64,
    pub prefill_s: f64,
    pub decode_s: f64,
    pub inference_s: f64,
}

enum Msg {
    Span(Box<Span>),
    Flush(oneshot::Sender<()>),
}

/// Counters of the exporter.
#[derive(Debug, Default)]
pub struct SinkStats {
    pub exported: AtomicU64,
    pub dropped: AtomicU64,
    pub failed: AtomicU64,
}

/// Handle to a span exporter task.
#[derive(Clone)]
pub struct SpanSink {
    tx: mpsc::Sender<Msg>,
    pub stats: Arc<SinkStats>,
}

fn kv(key: &str, v: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(v) }),
    }
}

/// A 64-bit FNV-1a hash, for stable trace and span ids from a request id.
fn fnv(s: &str, salt: u64) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ salt;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

impl SpanSink {
    /// Starts exporting to `endpoint` (`http://host:port`) as `service` on `host`.
    pub fn start(endpoint: String, service: String, host: String) -> Result<SpanSink, String> {
        let ch = tonic::transport::Endpoint::from_shared(endpoint.clone())
            .map_err(|e| format!("OTLP endpoint {endpoint:?}: {e}"))?
            .timeout(Duration::from_secs(5))
            .connect_lazy();
        let (tx, rx) = mpsc::channel(QUEUE);
        let stats = Arc::new(SinkStats::default());
        let resource = Resource {
            attributes: vec![
                kv("service.name", any_value::Value::StringValue(service)),
                kv("host.name", any_value::Value::StringValue(host)),
            ],
            ..Default::default()
        };
        tokio::spawn(export_loop(
            TraceServiceClient::new(ch),
            resource,
            rx,
            Arc::clone(&stats),
        ));
        Ok(SpanSink { tx, stats })
    }

    /// Queues the span of a finished request (dropped and counted when full).
    pub fn request(&self, t: &RequestTimes) {
        use any_value::Value::{DoubleValue, IntValue, StringValue};
        let attrs = vec![
            kv("gen_ai.request.id", StringValue(t.request_id.clone())),
            kv("gen_ai.response.model", StringValue(t.model.clone())),
            kv(
                "gen_ai.usage.prompt_tokens",
                IntValue(i64::from(t.prompt_tokens)),
            ),
            kv(
                "gen_ai.usage.completion_tokens",
                IntValue(i64::from(t.completion_tokens)),
            ),
            kv("gen_ai.latency.time_in_queue", DoubleValue(t.queue_s)),
            kv("gen_ai.latency.time_to_first_token", DoubleValue(t.ttft_s)),
            kv("gen_ai.latency.e2e", DoubleValue(t.e2e_s)),
            kv(
                "gen_ai.latency.time_in_model_prefill",
                DoubleValue(t.prefill_s),
            ),
            kv(
                "gen_ai.latency.time_in_model_decode",
                DoubleValue(t.decode_s),
            ),
            kv(
                "gen_ai.latency.time_in_model_inference",
                DoubleValue(t.inference_s),
            ),
        ];
        let trace = fnv(&t.request_id, 1).to_be_bytes();
        let trace2 = fnv(&t.request_id, 2).to_be_bytes();
        let span = Span {
            trace_id: [trace, trace2].concat(),
            span_id: fnv(&t.request_id, 3).to_be_bytes().to_vec(),
            name: "llm_request".into(),
            kind: SpanKind::Server as i32,
            start_time_unix_nano: t.arrival_ns,
            end_time_unix_nano: t.end_ns,
            attributes: attrs,
            ..Default::default()
        };
        if self.tx.try_send(Msg::Span(Box::new(span))).is_err() {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Waits until every span queued before this call was sent (or failed).
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::Flush(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }
}

async fn export_loop(
    mut client: TraceServiceClient<tonic::transport::Channel>,
    resource: Resource,
    mut rx: mpsc::Receiver<Msg>,
    stats: Arc<SinkStats>,
) {
    let mut batch: Vec<Span> = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        let mut flushed = None;
        tokio::select! {
            m = rx.recv() => match m {
                Some(Msg::Span(s)) => {
                    batch.push(*s);
                    if batch.len() < BATCH {
                        continue;
                    }
                }
                Some(Msg::Flush(done)) => flushed = Some(done),
                None => {
                    send(&mut client, &resource, &mut batch, &stats).await;
                    return;
                }
            },
            _ = tick.tick() => {}
        }
        send(&mut client, &resource, &mut batch, &stats).await;
        if let Some(done) = flushed {
            let _ = done.send(());
        }
    }
}

async fn send(
    client: &mut TraceServiceClient<tonic::transport::Channel>,
    resource: &Resource,
    batch: &mut Vec<Span>,
    stats: &SinkStats,
) {
    if batch.is_empty() {
        return;
    }
    let n = batch.len() as u64;
    let req = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(resource.clone()),
            scope_spans: vec![ScopeSpans {
                spans: std::mem::take(batch),
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    match client.export(req).await {
        Ok(_) => stats.exported.fetch_add(n, Ordering::Relaxed),
        Err(e) => {
            tracing::warn!("OTLP export of {n} spans failed: {e}");
            stats.failed.fetch_add(n, Ordering::Relaxed)
        }
    };
}
