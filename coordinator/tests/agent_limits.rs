//! What a gRPC client may ask of an agent: the token is checked before a request is
//! decoded (an unauthenticated probe or load-shard request never reaches the code
//! that sets up its buffers), requests over the size limit are refused unread, and
//! one client connection holds a bounded number of streams.

use std::sync::atomic::Ordering;
use std::time::Duration;

use servescope_agent::AgentConfig;
use servescope_coordinator::orchestration::connect::connect;
use servescope_coordinator::AgentEndpoint;
use servescope_proto::v1::{
    LoadShardRequest, LoadShardSpec, PrepareProbeRequest, ProbePlanMsg, ProbeRole,
    StreamTelemetryRequest,
};
use tonic::Code;

async fn agent(dir: &std::path::Path, max_streams: u32) -> servescope_agent::AgentHandle {
    let mut cfg = AgentConfig::loopback(Some("lim-tok".into()));
    cfg.kmsg = false;
    cfg.startup_watch = false;
    cfg.metrics_listen = None;
    cfg.nvml_lib = Some(dir.join("none.so"));
    cfg.grpc_limits.max_streams_per_client = max_streams;
    servescope_agent::start(cfg).await.unwrap()
}

fn probe_request() -> PrepareProbeRequest {
    PrepareProbeRequest {
        probe_id: "p1".into(),
        role: ProbeRole::Driver as i32,
        transport: Some(Default::default()),
        // 1 TiB messages: the buffers a naive handler would allocate.
        plan: Some(ProbePlanMsg {
            sizes: vec![1 << 40],
            ..Default::default()
        }),
        prepare_timeout_ms: 1000,
    }
}

fn shard_request(model_bytes: usize) -> LoadShardRequest {
    LoadShardRequest {
        spec: Some(LoadShardSpec {
            endpoint: "http://127.0.0.1:9".into(),
            model: "m".repeat(model_bytes),
            num_requests: Some(1),
            ..Default::default()
        }),
    }
}

#[tokio::test]
async fn unauthenticated_requests_never_reach_the_buffer_handlers() {
    let dir = tempfile::tempdir().unwrap();
    let a = agent(dir.path(), 32).await;
    let admitted = |a: &servescope_agent::AgentHandle| {
        (
            a.admitted.probe_prepares.load(Ordering::Relaxed),
            a.admitted.load_shards.load(Ordering::Relaxed),
        )
    };
    for token in [None, Some("wrong".to_string())] {
        let mut anon = connect(&AgentEndpoint::new(a.grpc_addr.to_string(), token))
            .await
            .unwrap();
        let e = anon.prepare_probe(probe_request()).await.unwrap_err();
        assert_eq!(e.code(), Code::Unauthenticated, "{e}");
        // 900 KiB: under the message limit, so only the token check stops it.
        let e = anon
            .run_load_shard(shard_request(900 << 10))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::Unauthenticated, "{e}");
    }
    assert_eq!(
        admitted(&a),
        (0, 0),
        "an unauthenticated request was decoded"
    );

    // The same requests with the token reach the handlers, which refuse them on
    // their own limits (so the counters do see what gets through).
    let mut c = connect(&AgentEndpoint::new(
        a.grpc_addr.to_string(),
        Some("lim-tok".into()),
    ))
    .await
    .unwrap();
    let e = c.prepare_probe(probe_request()).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e}");
    assert!(e.message().contains("sizes"), "{e}");
    let e = c
        .run_load_shard(shard_request(900 << 10))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e}");
    assert_eq!(admitted(&a), (1, 1));

    // Over the agent's 1 MiB message limit: refused before decoding, even with the
    // token.
    let e = c.run_load_shard(shard_request(2 << 20)).await.unwrap_err();
    assert_eq!(e.code(), Code::OutOfRange, "{e}");
    assert!(e.message().contains("too large"), "{e}");
    assert_eq!(admitted(&a), (1, 1));
    a.shutdown().await;
}

#[tokio::test]
async fn one_client_holds_a_bounded_number_of_streams() {
    let dir = tempfile::tempdir().unwrap();
    let a = agent(dir.path(), 3).await;
    let ep = AgentEndpoint::new(a.grpc_addr.to_string(), Some("lim-tok".into()));
    let c = connect(&ep).await.unwrap();
    let live = || StreamTelemetryRequest {
        live_only: true,
        ..Default::default()
    };
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(c.clone().stream_telemetry(live()).await.unwrap());
    }
    // The fourth stream on the same connection is not served while three are open.
    let mut c4 = c.clone();
    let fourth = tokio::spawn(async move { c4.stream_telemetry(live()).await });
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(a.streams.load(Ordering::Relaxed), 3);
    assert!(
        !fourth.is_finished(),
        "a fourth concurrent stream was not held back"
    );
    // Another client connection has its own allowance.
    let mut other = connect(&ep).await.unwrap();
    let _s = other.stream_telemetry(live()).await.unwrap();
    let t0 = std::time::Instant::now();
    while a.streams.load(Ordering::Relaxed) < 4 && t0.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(a.streams.load(Ordering::Relaxed), 4);
    // Closing one of the first three lets the waiting fourth in.
    drop(held.pop());
    let fourth = tokio::time::timeout(Duration::from_secs(5), fourth)
        .await
        .expect("a freed slot goes to the waiting stream")
        .unwrap();
    assert!(fourth.is_ok(), "{:?}", fourth.err());
    a.shutdown().await;
}
