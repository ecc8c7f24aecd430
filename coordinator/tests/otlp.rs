//! The OTLP source over real gRPC on loopback: a tonic `TraceServiceClient` sends
//! `ExportTraceServiceRequest`s built with the generated types. vLLM startup spans
//! become phases of the right kinds and durations, `llm_request` spans become
//! request records, garbage never panics nor invents a phase, limits hold.

mod otlp_common;

use std::collections::BTreeSet;
use std::net::SocketAddr;

use otlp_common::*;
use servescope_coordinator::analysis::otlp::summarize;
use servescope_coordinator::analysis::startup::{PhaseKind as K, Source};
use servescope_coordinator::orchestration::otlp_receiver::Limits;
use servescope_proto::otlp::common::v1::{any_value::Value, AnyValue, ArrayValue, KeyValue};
use servescope_proto::otlp::trace::v1::{status, ResourceSpans, Span, Status};

#[tokio::test]
async fn vllm_startup_spans_become_phases() {
    let r = start(Limits::default()).await;
    let w0 = vec![
        span("Init device", 5.0, 9.0),
        span("Loading (GPU)", 10.0, 100.0),
        span("Load model", 10.0, 99.0),
        span("Download weights - HF", 10.0, 40.0),
        span("Load weights", 40.0, 95.0),
        span("Dynamo bytecode transform", 100.0, 110.0),
        span("Compile graph", 110.0, 120.0),
        span("Compile graph", 120.0, 125.0),
        span("Compile graph", 125.0, 130.0),
        span("Allocate KV cache", 135.0, 140.0),
        span("Warmup (GPU)", 140.0, 170.0),
        span("Capture model", 150.0, 166.0),
    ];
    // A second worker whose weights finish last: its figure is taken.
    let w1 = vec![span("Load weights", 41.0, 97.0)];
    let mut req = span("llm_request", 200.0, 201.0);
    req.attributes = vec![
        kv("gen_ai.request.id", s("chatcmpl-1")),
        latency("time_to_first_token", 0.25),
    ];
    let api = resource(&[("service.name", "vllm"), ("host.name", "node-1")]);
    let resp = send(
        r.local_addr(),
        vec![
            rs(worker("11"), w0),
            rs(worker("12"), w1),
            rs(api, vec![req]),
        ],
    )
    .await
    .expect("export");
    assert_eq!(resp.partial_success, None);

    let got = r.shutdown().await.expect("shutdown");
    assert_eq!(got.stats.spans, 14);
    assert_eq!(got.startups.len(), 1);
    let st = &got.startups[0];
    assert_eq!(st.service, "vllm");
    let t = &st.timeline;
    assert_eq!(t.host.as_deref(), Some("node-1"));
    assert_eq!(t.clock_offset_ns, 0);
    let secs = |k| t.seconds(k).unwrap_or(f64::NAN);
    assert_eq!(secs(K::ModelLoad), 90.0);
    assert_eq!(secs(K::WeightDownload), 30.0);
    assert_eq!(secs(K::WeightLoad), 56.0);
    let wl = t.get(K::WeightLoad).unwrap();
    assert_eq!(wl.process.as_deref(), Some("VllmWorker pid=12"));
    assert_eq!(wl.attrs["otlp.processes"], "2");
    assert_eq!(wl.attrs["code.function"], "f");
    assert_eq!(secs(K::DynamoTransform), 10.0);
    let ind = t.get(K::InductorCompile).unwrap();
    assert_eq!(ind.seconds(), Some(20.0));
    assert_eq!(ind.attrs["otlp.span"], "Compile graph");
    assert_eq!(ind.attrs["otlp.spans"], "3");
    assert!(ind.confidence < 1.0);
    assert_eq!(secs(K::TorchCompile), 30.0);
    assert_eq!(secs(K::KvCacheAllocation), 5.0);
    assert_eq!(secs(K::CudaGraphCapture), 16.0);
    // Warmup (GPU) contains the capture: the warmup phase starts where it ends.
    assert_eq!(secs(K::Warmup), 4.0);
    let fr = t.get(K::FirstRequest).unwrap().start_ns.unwrap();
    let ft = t.get(K::FirstToken).unwrap().start_ns.unwrap();
    assert_eq!(fr, (T0 + 200 * S) as i64);
    assert_eq!(ft - fr, 250_000_000);
    let gaps: Vec<(i64, i64)> = t
        .of(K::Unattributed)
        .map(|p| {
            let f = |x: Option<i64>| (x.unwrap() - T0 as i64) / S as i64;
            (f(p.start_ns), f(p.end_ns))
        })
        .collect();
    assert_eq!(gaps, vec![(130, 135), (140, 150), (170, 200)]);
    for p in &t.phases {
        let want = if p.kind == K::Unattributed {
            Source::Derived
        } else {
            Source::Otlp
        };
        assert_eq!(p.source, want, "{p:?}");
    }
    // Not phases: the loader call inside `Loading (GPU)`, and unknown names.
    let others: BTreeSet<&str> = st.other_spans.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(others, BTreeSet::from(["Init device", "Load model"]));
    assert_eq!(t.of(K::ModelLoad).count(), 1);
}

#[tokio::test]
async fn llm_request_spans_become_request_records() {
    let r = start(Limits::default()).await;
    let mut spans = Vec::new();
    for i in 0..100u64 {
        let mut sp = span("llm_request", i as f64, i as f64 + 2.0);
        sp.span_id = (i + 1).to_be_bytes().to_vec();
        sp.parent_span_id = vec![0x11; 8];
        sp.attributes = vec![
            kv("gen_ai.request.id", s(&format!("req-{i}"))),
            kv("gen_ai.response.model", s("qwen")),
            kv(
                "gen_ai.usage.prompt_tokens",
                Value::IntValue(100 + i as i64),
            ),
            kv("gen_ai.usage.completion_tokens", s("20")),
            kv("gen_ai.request.max_tokens", Value::IntValue(64)),
            kv("gen_ai.request.temperature", Value::DoubleValue(0.7)),
            kv("gen_ai.request.top_p", Value::IntValue(1)),
            kv("gen_ai.request.n", Value::IntValue(1)),
            latency("time_in_queue", 0.01),
            latency("time_to_first_token", (i + 1) as f64 / 100.0),
            latency("e2e", 2.0),
            latency("time_in_scheduler", 0.002),
            latency("time_in_model_prefill", 0.1),
            latency("time_in_model_decode", 1.8),
            latency("time_in_model_inference", 1.9),
            latency("time_in_model_forward", 1.5),
            latency("time_in_model_execute", 1.6),
            kv("http.route", s("/v1/completions")),
        ];
        if i == 7 {
            sp.status = Some(Status {
                code: status::StatusCode::Error as i32,
                message: "boom".into(),
            });
        }
        spans.push(sp);
    }
    // No host.name: the sender's address stands in for the clock host.
    let res = resource(&[("service.name", "vllm-api")]);
    send(r.local_addr(), vec![rs(res, spans)])
        .await
        .expect("export");
    let got = r.take();
    assert!(got.startups.is_empty());
    assert_eq!(got.requests.len(), 100);
    let q = got
        .requests
        .iter()
        .find(|q| q.request_id.as_deref() == Some("req-7"))
        .unwrap();
    assert_eq!(q.service, "vllm-api");
    assert_eq!(q.host.as_deref(), Some("127.0.0.1"));
    assert_eq!(
        q.trace_id.as_deref(),
        Some("abababababababababababababababab")
    );
    assert_eq!(q.span_id.as_deref(), Some("0000000000000008"));
    assert_eq!(q.parent_span_id.as_deref(), Some("1111111111111111"));
    assert_eq!(q.start_ns, Some((T0 + 7 * S) as i64));
    assert_eq!(q.end_ns, Some((T0 + 9 * S) as i64));
    assert_eq!(q.model.as_deref(), Some("qwen"));
    assert_eq!(
        (q.prompt_tokens, q.completion_tokens),
        (Some(107), Some(20))
    );
    assert_eq!((q.max_tokens, q.n), (Some(64), Some(1)));
    assert_eq!((q.temperature, q.top_p), (Some(0.7), Some(1.0)));
    assert_eq!(
        (q.queue_s, q.ttft_s, q.e2e_s),
        (Some(0.01), Some(0.08), Some(2.0))
    );
    assert_eq!(q.scheduler_s, Some(0.002));
    assert_eq!((q.prefill_s, q.decode_s), (Some(0.1), Some(1.8)));
    assert_eq!(q.inference_s, Some(1.9));
    assert_eq!((q.forward_s, q.execute_s), (Some(1.5), Some(1.6)));
    assert!(q.error);
    assert_eq!(
        q.attrs.get("http.route").map(String::as_str),
        Some("/v1/completions")
    );
    assert!(!q.attrs.contains_key("gen_ai.latency.e2e"));

    let sum = summarize(&got.requests);
    assert_eq!(sum.len(), 1);
    let m = &sum[0];
    assert_eq!((m.count, m.errors, m.with_ttft), (100, 1, 100));
    assert!((m.ttft_p50_s.unwrap() - 0.505).abs() < 1e-9);
    assert!((m.ttft_p99_s.unwrap() - 0.9901).abs() < 1e-9);
    assert_eq!((m.e2e_p50_s, m.e2e_p99_s), (Some(2.0), Some(2.0)));
    assert_eq!(m.prompt_tokens, (100..200).sum::<u64>());
    // `take` drained it.
    assert!(r.take().requests.is_empty());
}

#[tokio::test]
async fn garbage_spans_never_panic_nor_invent_phases() {
    let r = start(Limits::default()).await;
    let mut zero = span("Load weights", 0.0, 0.0);
    zero.start_time_unix_nano = 0;
    zero.end_time_unix_nano = 0;
    let backwards = span("Capture model", 20.0, 10.0);
    let mut huge = span("Allocate KV cache", 0.0, 1.0);
    huge.start_time_unix_nano = u64::MAX - 1;
    huge.end_time_unix_nano = u64::MAX;
    let mut nested = span("Unknown ✓ span", 1.0, 2.0);
    let mut deep = AnyValue {
        value: Some(s(&"x".repeat(100_000))),
    };
    for _ in 0..20 {
        deep = AnyValue {
            value: Some(Value::ArrayValue(ArrayValue { values: vec![deep] })),
        };
    }
    nested.attributes = vec![
        KeyValue {
            key: "deep".into(),
            value: Some(deep),
        },
        KeyValue {
            key: "none".into(),
            value: None,
        },
        kv("bytes", Value::BytesValue(vec![0xff, 0x00])),
    ];
    let empty = Span::default();
    let mut bad_req = Span {
        name: "llm_request".into(),
        end_time_unix_nano: 5,
        start_time_unix_nano: 10,
        ..Default::default()
    };
    bad_req.attributes = vec![
        kv("gen_ai.latency.time_to_first_token", s("not a number")),
        latency("e2e", f64::NAN),
        latency("time_in_queue", -1.0),
        kv("gen_ai.usage.prompt_tokens", Value::IntValue(-5)),
        kv("gen_ai.usage.completion_tokens", Value::DoubleValue(1e300)),
    ];
    let no_scope = ResourceSpans::default();
    let batch = vec![
        rs(None, vec![zero, backwards, huge, nested, empty, bad_req]),
        no_scope,
    ];
    let resp = send(r.local_addr(), batch).await.expect("export");
    // Unset, backwards and out-of-range times, and the empty span: rejected.
    assert_eq!(resp.partial_success.map(|p| p.rejected_spans), Some(4));
    let got = r.take();
    assert_eq!(got.stats.invalid, 4);
    assert_eq!(got.requests.len(), 1);
    let q = &got.requests[0];
    assert_eq!((q.start_ns, q.end_ns), (Some(10), None));
    assert_eq!((q.ttft_s, q.e2e_s, q.queue_s), (None, None, None));
    assert_eq!((q.prompt_tokens, q.completion_tokens), (None, None));
    assert_eq!(got.startups.len(), 1);
    let st = &got.startups[0];
    assert_eq!(st.service, "unknown_service");
    assert!(st.timeline.phases.is_empty(), "{:?}", st.timeline);
    assert_eq!(st.other_spans.len(), 1);
    assert!(st.other_spans[0].name.starts_with("Unknown"));
}

#[tokio::test]
async fn limits_are_enforced() {
    let limits = Limits {
        max_message_bytes: 64 << 10,
        max_spans: 10,
        max_names: 3,
        max_attrs: 2,
    };
    let r = start(limits).await;
    // Over the message size: refused, counted nowhere, the server lives on.
    let mut big = span("Load weights", 1.0, 2.0);
    big.attributes = vec![kv("blob", s(&"y".repeat(200 << 10)))];
    let err = send(r.local_addr(), vec![rs(None, vec![big])])
        .await
        .expect_err("oversized");
    assert_eq!(err.code(), tonic::Code::OutOfRange, "{err:?}");
    assert_eq!(r.stats().spans, 0);
    // Distinct names over max_names are dropped; spans over max_spans too.
    let names = ["a", "b", "c", "d", "e"];
    let spans: Vec<Span> = names.iter().map(|n| span(n, 1.0, 2.0)).collect();
    let resp = send(r.local_addr(), vec![rs(None, spans)]).await.unwrap();
    assert_eq!(resp.partial_success.map(|p| p.rejected_spans), Some(2));
    let reqs: Vec<Span> = (0..20)
        .map(|i| span("llm_request", i as f64, 30.0))
        .collect();
    let resp = send(r.local_addr(), vec![rs(None, reqs)]).await.unwrap();
    assert_eq!(resp.partial_success.map(|p| p.rejected_spans), Some(13));
    let st = r.stats();
    assert_eq!((st.spans, st.dropped), (25, 15));
    assert_eq!(st.request_spans + st.startup_spans, 10);
    let got = r.take();
    assert_eq!(got.requests.len(), 7);
    assert!(got.requests.iter().all(|q| q.attrs.len() <= 2));
}

#[tokio::test]
async fn shutdown_returns_data_while_a_sender_keeps_its_connection() {
    use servescope_proto::otlp::collector::trace::v1::trace_service_client::TraceServiceClient;
    use servescope_proto::otlp::collector::trace::v1::ExportTraceServiceRequest;
    let r = start(Limits::default()).await;
    let mut c = TraceServiceClient::connect(format!("http://{}", r.local_addr()))
        .await
        .unwrap();
    let resource_spans = vec![rs(worker("1"), vec![span("Capture model", 1.0, 3.0)])];
    c.export(ExportTraceServiceRequest { resource_spans })
        .await
        .unwrap();
    let t = std::time::Instant::now();
    let got = r.shutdown().await.unwrap();
    assert!(t.elapsed() < std::time::Duration::from_secs(10));
    assert_eq!(
        got.startups[0].timeline.seconds(K::CudaGraphCapture),
        Some(2.0)
    );
    drop(c);
}

/// Sends a sample vLLM startup and 20 requests to `OTLP_SMOKE_ADDR` (e.g. a running
/// `servescope otlp listen`): `OTLP_SMOKE_ADDR=127.0.0.1:4317 cargo test -p
/// servescope-coordinator --test otlp -- --ignored send_sample`.
#[tokio::test]
#[ignore]
async fn send_sample() {
    let addr: SocketAddr = std::env::var("OTLP_SMOKE_ADDR")
        .unwrap_or_else(|_| "127.0.0.1:4317".into())
        .parse()
        .unwrap();
    let startup = vec![
        span("Loading (GPU)", 10.0, 100.0),
        span("Load weights", 40.0, 95.0),
        span("Dynamo bytecode transform", 100.0, 110.0),
        span("Compile graph", 110.0, 130.0),
        span("Allocate KV cache", 135.0, 140.0),
        span("Warmup (GPU)", 140.0, 170.0),
        span("Capture model", 150.0, 166.0),
        span("Worker init", 2.0, 171.0),
    ];
    let reqs = (0..20)
        .map(|i| {
            let mut sp = span("llm_request", 200.0 + i as f64, 201.0 + i as f64);
            sp.attributes = vec![
                kv("gen_ai.request.id", s(&format!("r{i}"))),
                latency("time_to_first_token", 0.05 + i as f64 / 100.0),
                latency("e2e", 1.0),
            ];
            sp
        })
        .collect();
    send(
        addr,
        vec![rs(worker("11"), startup), rs(worker("11"), reqs)],
    )
    .await
    .expect("export");
}
