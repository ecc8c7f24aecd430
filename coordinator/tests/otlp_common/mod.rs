//! Helpers shared by the OTLP tests: generated OTLP types built by hand, a
//! receiver on an ephemeral loopback port, a real tonic client.
#![allow(dead_code)]

use std::net::SocketAddr;

use servescope_coordinator::orchestration::otlp_receiver::{Limits, Receiver};
use servescope_proto::otlp::collector::trace::v1::trace_service_client::TraceServiceClient;
use servescope_proto::otlp::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use servescope_proto::otlp::common::v1::{any_value::Value, AnyValue, KeyValue};
use servescope_proto::otlp::resource::v1::Resource;
use servescope_proto::otlp::trace::v1::{ResourceSpans, ScopeSpans, Span};

pub const S: u64 = 1_000_000_000;
/// 2026-01-01T00:00:00Z, in ns.
pub const T0: u64 = 1_767_225_600 * S;

pub fn kv(key: &str, v: Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(v) }),
    }
}

/// `gen_ai.latency.<name>` in seconds, as vLLM sends it.
pub fn latency(name: &str, secs: f64) -> KeyValue {
    kv(&format!("gen_ai.latency.{name}"), Value::DoubleValue(secs))
}

pub fn s(v: &str) -> Value {
    Value::StringValue(v.into())
}

pub fn span(name: &str, start_s: f64, end_s: f64) -> Span {
    Span {
        trace_id: vec![0xab; 16],
        span_id: vec![0xcd; 8],
        name: name.into(),
        start_time_unix_nano: T0 + (start_s * 1e9) as u64,
        end_time_unix_nano: T0 + (end_s * 1e9) as u64,
        attributes: vec![kv("code.function", s("f"))],
        ..Default::default()
    }
}

pub fn resource(attrs: &[(&str, &str)]) -> Option<Resource> {
    Some(Resource {
        attributes: attrs.iter().map(|(k, v)| kv(k, s(v))).collect(),
        ..Default::default()
    })
}

pub fn rs(resource: Option<Resource>, spans: Vec<Span>) -> ResourceSpans {
    ResourceSpans {
        resource,
        scope_spans: vec![ScopeSpans {
            spans,
            ..Default::default()
        }],
        ..Default::default()
    }
}

pub async fn start(limits: Limits) -> Receiver {
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    Receiver::start(addr, limits)
        .await
        .expect("receiver starts")
}

pub async fn send(
    addr: SocketAddr,
    resource_spans: Vec<ResourceSpans>,
) -> Result<ExportTraceServiceResponse, tonic::Status> {
    let mut c = TraceServiceClient::connect(format!("http://{addr}"))
        .await
        .expect("connect");
    c.export(ExportTraceServiceRequest { resource_spans })
        .await
        .map(tonic::Response::into_inner)
}

pub fn worker(pid: &str) -> Option<Resource> {
    resource(&[
        ("service.name", "vllm"),
        ("host.name", "node-1"),
        ("vllm.process_name", "VllmWorker"),
        ("vllm.process_id", pid),
    ])
}
