//! Integration tests over real gRPC on loopback: an in-process agent (real
//! collectors; a p5-like sysfs fixture tree for RDMA; NVML deliberately pointed at a
//! missing library so the result is the same with or without a GPU), the
//! coordinator's sessions, a TCP proxy that cuts connections, and the store.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use servescope_coordinator::orchestration::connect::connect;
use servescope_coordinator::orchestration::record::{record, RecordConfig};
use servescope_coordinator::{AgentEndpoint, Store};
use servescope_proto::v1::agent_client::AgentClient;
use servescope_proto::v1::{
    telemetry_message, GetInventoryRequest, PingRequest, StreamTelemetryRequest, TelemetryFilter,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

mod agent_support;
use agent_support::{agent, TOKEN};

async fn raw_client(addr: SocketAddr) -> AgentClient<tonic::transport::Channel> {
    AgentClient::connect(format!("http://{addr}"))
        .await
        .expect("connect")
}

fn with_auth<T>(msg: T, header: Option<&str>) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    if let Some(h) = header {
        r.metadata_mut()
            .insert("authorization", h.parse().expect("ascii"));
    }
    r
}

#[tokio::test]
async fn unauthenticated_and_wrong_token_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let a = agent(dir.path(), |_| {}).await;
    let mut c = raw_client(a.grpc_addr).await;
    for h in [
        None,
        Some("Bearer wrong-token"),
        Some("Basic abc"),
        Some("Bearer "),
    ] {
        let e = c
            .get_inventory(with_auth(GetInventoryRequest {}, h))
            .await
            .unwrap_err();
        assert_eq!(
            e.code(),
            tonic::Code::Unauthenticated,
            "inventory with {h:?}"
        );
        let e = c
            .ping(with_auth(PingRequest { client_send_ns: 1 }, h))
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::Unauthenticated, "ping with {h:?}");
        let e = c
            .stream_telemetry(with_auth(StreamTelemetryRequest::default(), h))
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::Unauthenticated, "stream with {h:?}");
    }
    let good = format!("Bearer {TOKEN}");
    let inv = c
        .get_inventory(with_auth(GetInventoryRequest {}, Some(&good)))
        .await
        .expect("right token accepted")
        .into_inner();
    assert!(!inv.hostname.is_empty());

    // /metrics follows the same rule.
    let m = a.metrics_addr.expect("metrics on");
    let (status, _) = http_get(m, "/metrics", None).await;
    assert_eq!(status, 401);
    let (status, _) = http_get(m, "/metrics", Some("Bearer nope")).await;
    assert_eq!(status, 401);
    let (status, body) = http_get(m, "/metrics", Some(&good)).await;
    assert_eq!(status, 200);
    assert!(body.contains("servescope_nvml_up 0"), "{body}");
    assert!(
        body.contains("servescope_rdma_port_"),
        "RDMA counters exposed"
    );
    a.shutdown().await;
}

async fn http_get(addr: SocketAddr, path: &str, auth: Option<&str>) -> (u16, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let auth = auth
        .map(|a| format!("authorization: {a}\r\n"))
        .unwrap_or_default();
    let req = format!("GET {path} HTTP/1.1\r\nhost: x\r\n{auth}connection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8_lossy(&buf).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, text)
}

#[tokio::test]
async fn nvml_absent_inventory_says_unavailable_and_agent_serves() {
    let dir = tempfile::tempdir().unwrap();
    let a = agent(dir.path(), |_| {}).await;
    let mut c = connect(&AgentEndpoint::new(
        a.grpc_addr.to_string(),
        Some(TOKEN.into()),
    ))
    .await
    .unwrap();
    let inv = c
        .get_inventory(GetInventoryRequest {})
        .await
        .unwrap()
        .into_inner();
    let gpu = inv.gpu.clone().unwrap();
    assert!(!gpu.available);
    assert!(gpu.detail.contains("could not be loaded"), "{}", gpu.detail);
    assert!(inv.gpus.is_empty());
    assert_eq!(inv.rdma_devices.len(), 32, "p5 fixture: 32 EFA devices");
    assert_eq!(inv.topology.len(), 0, "no GPUs, no GPU topology");
    // Still serving: host and RDMA samples flow.
    let mut s = c
        .stream_telemetry(StreamTelemetryRequest {
            from_seq: 0,
            filter: Some(TelemetryFilter { kinds: vec![2, 3] }),
            live_only: false,
            max_delay_ms: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let mut kinds = std::collections::BTreeSet::new();
    while kinds.len() < 2 {
        let m = tokio::time::timeout(Duration::from_secs(5), s.message())
            .await
            .expect("samples arrive")
            .unwrap()
            .unwrap();
        if let Some(telemetry_message::Body::Sample(x)) = m.body {
            let kind = x.kind();
            match x.data {
                Some(servescope_proto::v1::sample::Data::Host(_)) => kinds.insert(kind.name()),
                Some(servescope_proto::v1::sample::Data::Rdma(r)) => {
                    assert_eq!(r.devices.len(), 32);
                    kinds.insert(kind.name())
                }
                other => panic!("filter let through {other:?}"),
            };
        }
    }
    a.shutdown().await;
}

#[tokio::test]
async fn old_from_seq_reports_a_gap_with_the_loss() {
    let dir = tempfile::tempdir().unwrap();
    // A ring of 200 ms at a 20 ms interval holds only ~10 ticks.
    let a = agent(dir.path(), |c| {
        c.buffer_horizon = Duration::from_millis(200)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let oldest = a.ring.state().oldest_seq;
    assert!(oldest > 5, "ring wrapped (oldest {oldest})");
    let mut c = connect(&AgentEndpoint::new(
        a.grpc_addr.to_string(),
        Some(TOKEN.into()),
    ))
    .await
    .unwrap();
    let mut s = c
        .stream_telemetry(StreamTelemetryRequest {
            from_seq: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let first = s.message().await.unwrap().unwrap();
    let Some(telemetry_message::Body::Gap(g)) = first.body else {
        panic!("expected a gap first, got {first:?}")
    };
    assert_eq!(g.requested_from_seq, 1);
    assert!(g.resumed_at_seq >= oldest);
    assert_eq!(g.lost, g.resumed_at_seq - 1);
    let next = s.message().await.unwrap().unwrap();
    let Some(telemetry_message::Body::Sample(x)) = next.body else {
        panic!("sample after gap")
    };
    assert_eq!(x.seq, g.resumed_at_seq);
    a.shutdown().await;
}

/// A TCP proxy that forwards to `upstream` and cuts every connection every `every`.
async fn cutting_proxy(upstream: SocketAddr, every: Duration) -> (SocketAddr, Arc<Mutex<u32>>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let conns: Arc<Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
    let cuts = Arc::new(Mutex::new(0u32));
    let c2 = Arc::clone(&conns);
    tokio::spawn(async move {
        while let Ok((mut down, _)) = l.accept().await {
            let h = tokio::spawn(async move {
                if let Ok(mut up) = TcpStream::connect(upstream).await {
                    let _ = tokio::io::copy_bidirectional(&mut down, &mut up).await;
                }
            });
            c2.lock().unwrap().push(h.abort_handle());
        }
    });
    let cuts2 = Arc::clone(&cuts);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            let v: Vec<_> = conns.lock().unwrap().drain(..).collect();
            if !v.is_empty() {
                *cuts2.lock().unwrap() += 1;
            }
            for h in v {
                h.abort();
            }
        }
    });
    (addr, cuts)
}

#[tokio::test]
async fn resume_after_dropped_streams_loses_no_sample() {
    let dir = tempfile::tempdir().unwrap();
    let a = agent(dir.path(), |_| {}).await;
    let (proxy, cuts) = cutting_proxy(a.grpc_addr, Duration::from_millis(700)).await;
    let db = dir.path().join("rec.db");
    let mut cfg = RecordConfig::new(
        vec![AgentEndpoint::new(proxy.to_string(), Some(TOKEN.into()))],
        Duration::from_secs(4),
        db.clone(),
    );
    cfg.backoff_initial = Duration::from_millis(20);
    cfg.backoff_max = Duration::from_millis(200);
    let out = record(cfg, Default::default()).await.unwrap();
    assert!(out.failures.is_empty(), "{:?}", out.failures);
    let ag = &out.agents[0];
    assert!(*cuts.lock().unwrap() >= 3, "the proxy cut the stream");
    assert!(
        ag.reconnects >= 3,
        "session reconnected ({} times)",
        ag.reconnects
    );
    assert_eq!(ag.lost, 0);

    let st = Store::open(&db).unwrap();
    let agents = st.run_agents(out.run_id).unwrap();
    let seqs = st.seqs(out.run_id, agents[0].agent_id).unwrap();
    assert!(seqs.len() > 100, "recorded {} samples", seqs.len());
    let (first, last) = (seqs[0], *seqs.last().unwrap());
    let expect: Vec<u64> = (first..=last).collect();
    assert_eq!(
        seqs, expect,
        "every sequence number between first and last is stored"
    );
    // And they are the agent's samples, end to end: same timestamps as its ring.
    let ring = a.ring.read_from(first, usize::MAX);
    let mut stored = Vec::new();
    st.for_each_sample(out.run_id, |s| {
        stored.push((s.sample.seq, s.sample.t_ns));
        Ok(())
    })
    .unwrap();
    for (seq, t) in stored {
        if let Some(r) = ring.samples.iter().find(|x| x.seq == seq) {
            assert_eq!(r.t_ns, t);
        }
    }
    assert!(agents[0].offset_ns.is_some(), "clock offset stored");
    assert!(agents[0].offset_error_ns.unwrap() < 50_000_000);
    a.shutdown().await;
}

#[tokio::test]
async fn record_from_an_unreachable_agent_fails_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    // A port with nothing behind it.
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    let mut cfg = RecordConfig::new(
        vec![AgentEndpoint::new(addr.to_string(), Some(TOKEN.into()))],
        Duration::from_millis(600),
        dir.path().join("x.db"),
    );
    cfg.backoff_initial = Duration::from_millis(50);
    let out = record(cfg, Default::default()).await.unwrap();
    assert_eq!(out.agents[0].samples, 0);
    assert!(out.agents[0]
        .last_error
        .as_deref()
        .unwrap_or("")
        .contains("cannot connect"));
}

#[tokio::test]
async fn wrong_token_ends_the_session_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let a = agent(dir.path(), |_| {}).await;
    let cfg = RecordConfig::new(
        vec![AgentEndpoint::new(
            a.grpc_addr.to_string(),
            Some("bad".into()),
        )],
        Duration::from_secs(5),
        dir.path().join("x.db"),
    );
    let t = std::time::Instant::now();
    let out = record(cfg, Default::default()).await.unwrap();
    assert!(
        t.elapsed() < Duration::from_secs(4),
        "did not retry a refused token"
    );
    assert!(
        out.failures[0].1.contains("refused our credentials"),
        "{:?}",
        out.failures
    );
    a.shutdown().await;
}

/// A recorder's stream lets the agent batch samples for up to half a second; at the
/// deadline the session reads on until it has every sample the agent had taken by
/// then, so the batching window loses nothing at the end of a recording.
#[tokio::test]
async fn batched_stream_keeps_the_samples_of_the_last_window() {
    let dir = tempfile::tempdir().unwrap();
    let a = agent(dir.path(), |_| {}).await;
    let db = dir.path().join("rec.db");
    let duration = Duration::from_millis(2500);
    let cfg = RecordConfig::new(
        vec![AgentEndpoint::new(
            a.grpc_addr.to_string(),
            Some(TOKEN.into()),
        )],
        duration,
        db.clone(),
    );
    let started = servescope_agent::clock::now_ns();
    let out = record(cfg, Default::default()).await.unwrap();
    assert!(out.failures.is_empty(), "{:?}", out.failures);
    let st = Store::open(&db).unwrap();
    let agents = st.run_agents(out.run_id).unwrap();
    let seqs = st.seqs(out.run_id, agents[0].agent_id).unwrap();
    let (first, last) = (seqs[0], *seqs.last().unwrap());
    assert_eq!(seqs, (first..=last).collect::<Vec<_>>());
    // Every sample the agent took up to shortly before the deadline is stored
    // (the session connects and measures the clock first: the deadline counts
    // from the start of `record`, so this bound is conservative).
    let deadline_ns = started + u64::try_from(duration.as_nanos()).unwrap();
    let taken: Vec<u64> = a
        .ring
        .read_from(first, usize::MAX)
        .samples
        .iter()
        .filter(|s| s.t_ns + 50_000_000 < deadline_ns)
        .map(|s| s.seq)
        .collect();
    let missing: Vec<u64> = taken.iter().filter(|s| **s > last).copied().collect();
    assert!(
        missing.is_empty(),
        "{} samples taken before the deadline were not recorded (last stored {last})",
        missing.len()
    );
    a.shutdown().await;
}
