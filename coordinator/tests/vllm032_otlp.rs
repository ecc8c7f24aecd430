//! The OTLP exports of a real vLLM 0.32 (CPU build) startup and four requests
//! (`fixtures/vllm032/otlp`, the request bodies as the engine sent them), replayed
//! to the receiver over loopback gRPC: one startup timeline for the engine's three
//! processes, with `Overall Loading` as its start and API-ready point.

mod otlp_common;

use std::path::Path;

use otlp_common::{send, start};
use prost::Message;
use servescope_coordinator::analysis::startup::{PhaseKind as K, Timeline};
use servescope_coordinator::orchestration::otlp_receiver::Limits;
use servescope_proto::otlp::collector::trace::v1::ExportTraceServiceRequest;

fn exports() -> Vec<ExportTraceServiceRequest> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/vllm032/otlp");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "pb"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 6);
    files
        .iter()
        .map(|p| ExportTraceServiceRequest::decode(std::fs::read(p).unwrap().as_slice()).unwrap())
        .collect()
}

fn secs(t: &Timeline, k: K) -> f64 {
    t.get(k)
        .and_then(|p| p.seconds())
        .unwrap_or_else(|| panic!("no {k:?}: {t:#?}"))
}

fn close(got: f64, want: f64) {
    assert!((got - want).abs() < 1e-6, "{got} vs {want}");
}

#[tokio::test]
async fn vllm032_startup_spans_are_one_engine_timeline() {
    let r = start(Limits::default()).await;
    for e in exports() {
        send(r.local_addr(), e.resource_spans)
            .await
            .expect("export accepted");
    }
    let got = r.shutdown().await.expect("shutdown");
    assert_eq!(got.stats.startup_spans, 13, "{:?}", got.stats);
    assert_eq!(got.stats.request_spans, 4);
    // vLLM sets no host.name; each process has its own service.instance.id.
    assert_eq!(got.startups.len(), 1, "{:#?}", got.startups);
    let s = &got.startups[0];
    assert_eq!(s.service, "unknown_service:python3");
    assert_eq!(
        s.processes,
        vec!["EngineCore pid=15426", "Worker_0 pid=15714", "pid=14925"]
    );
    let t = &s.timeline;
    // The clock host: the address all three processes sent from.
    assert_eq!(t.host.as_deref(), Some("127.0.0.1"));

    // `Overall Loading` lasted 28.640782022 s: the start and the API-ready point.
    let ready = t.get(K::ApiReady).expect("API ready");
    assert_eq!(ready.attrs["otlp.span"], "Overall Loading");
    close(t.until(K::ApiReady).unwrap(), 28.640782022);
    // Span durations, as the engine exported them (the log printed "init engine …
    // took 10.73 s", "Loading weights took 0.01 seconds").
    close(secs(t, K::InitEngine), 10.734064577);
    close(secs(t, K::Warmup), 9.571321837);
    close(secs(t, K::KvCacheAllocation), 1.152088354);
    close(secs(t, K::ModelLoad), 0.750914854);
    close(secs(t, K::WeightLoad), 0.00919492);
    assert_eq!(t.get(K::ModelLoad).unwrap().attrs["model_init_s"], "0.049");
    // Overall Loading start → Loading (CPU) start: process spawn, executor, worker init.
    close(
        secs(t, K::FixedInit),
        1796542530544743633.0 / 1e9 - 1796542513845655993.0 / 1e9,
    );

    // The first request: the API server's first llm_request span, after ready.
    let fr = t.get(K::FirstRequest).expect("first request");
    assert_eq!(fr.attrs["request_id"], "cmpl-otlp-fixture-req-1-0");
    assert!(fr.start_ns.unwrap() > ready.start_ns.unwrap());
    assert!(t.get(K::FirstToken).is_some());

    // Waterfall rows never overlap.
    let mut rows: Vec<(i64, i64)> = t
        .rows()
        .map(|p| (p.start_ns.unwrap(), p.end_ns.unwrap()))
        .collect();
    rows.sort();
    for w in rows.windows(2) {
        assert!(w[1].0 >= w[0].1, "{rows:?}");
    }
    let others: Vec<&str> = s.other_spans.iter().map(|o| o.name.as_str()).collect();
    for n in [
        "AsyncMPClient init",
        "EngineCoreProc init",
        "Executor init",
        "Worker init",
    ] {
        assert!(others.contains(&n), "{others:?}");
    }

    // Every request span joined to the client's x-request-id.
    let mut ids: Vec<&str> = got
        .requests
        .iter()
        .filter_map(|r| r.request_id.as_deref())
        .collect();
    ids.sort();
    assert_eq!(
        ids,
        vec![
            "chatcmpl-otlp-fixture-req-4",
            "cmpl-otlp-fixture-req-1-0",
            "cmpl-otlp-fixture-req-2-0",
            "cmpl-otlp-fixture-req-3-0"
        ]
    );
}
