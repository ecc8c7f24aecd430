//! Fault drills over real gRPC on loopback with an in-process agent: a network
//! partition between coordinator and agent longer than the agent's ring horizon
//! (the loss is stored as counted gaps, everything else exactly once), and a store
//! that fills up mid-recording (a clear error naming the file, and nothing already
//! committed lost). The full disk is simulated with SQLite's `max_page_count` on
//! the recorder's connection, so no filesystem has to be mounted.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use servescope_coordinator::orchestration::record::{record, RecordConfig, RecordError};
use servescope_coordinator::store::StoreError;
use servescope_coordinator::{AgentEndpoint, Store};
use servescope_proto::test_support::assert_each_sequence_once;
use tokio::net::{TcpListener, TcpStream};

mod agent_support;
use agent_support::{agent, TOKEN};

/// A TCP proxy to `upstream` that can be partitioned: while `down` is set, open
/// connections are cut and new ones closed at once.
async fn partitionable_proxy(upstream: SocketAddr) -> (SocketAddr, Arc<AtomicBool>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let down = Arc::new(AtomicBool::new(false));
    let conns: Arc<Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
    let (d2, c2) = (Arc::clone(&down), Arc::clone(&conns));
    tokio::spawn(async move {
        while let Ok((mut from, _)) = l.accept().await {
            if d2.load(Ordering::SeqCst) {
                continue; // dropped: closed at once
            }
            let h = tokio::spawn(async move {
                if let Ok(mut up) = TcpStream::connect(upstream).await {
                    let _ = tokio::io::copy_bidirectional(&mut from, &mut up).await;
                }
            });
            c2.lock().unwrap().push(h.abort_handle());
        }
    });
    let d3 = Arc::clone(&down);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(10)).await;
            if d3.load(Ordering::SeqCst) {
                for h in conns.lock().unwrap().drain(..) {
                    h.abort();
                }
            }
        }
    });
    (addr, down)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_longer_than_the_horizon_is_a_counted_gap() {
    let dir = tempfile::tempdir().unwrap();
    let a = agent(dir.path(), |c| c.buffer_horizon = Duration::from_secs(1)).await;
    let (proxy, down) = partitionable_proxy(a.grpc_addr).await;
    let db = dir.path().join("rec.db");
    let mut cfg = RecordConfig::new(
        vec![AgentEndpoint::new(proxy.to_string(), Some(TOKEN.into()))],
        Duration::from_secs(6),
        db.clone(),
    );
    cfg.backoff_initial = Duration::from_millis(20);
    cfg.backoff_max = Duration::from_millis(200);
    let cut = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        down.store(true, Ordering::SeqCst);
        // Two and a half horizons without the agent.
        tokio::time::sleep(Duration::from_millis(2500)).await;
        down.store(false, Ordering::SeqCst);
    });
    let out = record(cfg, Default::default()).await.unwrap();
    cut.await.unwrap();
    assert!(out.failures.is_empty(), "{:?}", out.failures);
    assert!(out.agents[0].reconnects >= 1);

    let st = Store::open(&db).unwrap();
    let agents = st.run_agents(out.run_id).unwrap();
    assert_eq!(agents.len(), 1, "the same agent instance throughout");
    let id = agents[0].agent_id;
    let gaps = st.gaps(out.run_id, id).unwrap();
    assert!(!gaps.is_empty(), "the partition outlived the ring: a gap");
    let lost: u64 = gaps.iter().map(|g| g.lost).sum();
    // ~1.5 s of samples beyond the horizon at ≥ 100 samples/s.
    assert!(lost > 50, "lost {lost}");
    assert_eq!(agents[0].lost, lost as i64);
    assert_eq!(out.agents[0].lost, lost);
    let first_resumed = gaps[0].resumed_at_seq;
    let gaps = gaps
        .iter()
        .map(|g| (g.requested_from_seq, g.resumed_at_seq, g.lost));
    let last = assert_each_sequence_once(&st.seqs(out.run_id, id).unwrap(), gaps);
    assert!(last > first_resumed + 50, "recording went on after");
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_store_stops_the_recording_with_its_path_and_keeps_what_was_committed() {
    let dir = tempfile::tempdir().unwrap();
    let a = agent(dir.path(), |_| {}).await;
    let db = dir.path().join("full.db");
    drop(Store::open(&db).unwrap());
    let pages = std::fs::metadata(&db).unwrap().len() / 4096;
    let mut cfg = RecordConfig::new(
        vec![AgentEndpoint::new(
            a.grpc_addr.to_string(),
            Some(TOKEN.into()),
        )],
        Duration::from_secs(30),
        db.clone(),
    );
    cfg.max_store_pages = Some(pages + 200);
    let t0 = Instant::now();
    let err = record(cfg, Default::default())
        .await
        .expect_err("store full");
    assert!(
        t0.elapsed() < Duration::from_secs(20),
        "stopped when the store filled, not at the end ({:?})",
        t0.elapsed()
    );
    assert!(
        matches!(err, RecordError::Store(StoreError::Full { .. })),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains(&db.display().to_string()) && msg.contains("full"),
        "{msg}"
    );

    let st = Store::open(&db).unwrap();
    let run = st.runs().unwrap()[0].clone();
    assert_eq!(run.status, "failed");
    let agent = &st.run_agents(run.id).unwrap()[0];
    let seqs = st.seqs(run.id, agent.agent_id).unwrap();
    assert!(seqs.len() > 10, "{} samples committed first", seqs.len());
    let (first, last) = (seqs[0], *seqs.last().unwrap());
    assert_eq!(seqs, (first..=last).collect::<Vec<_>>());
    assert_eq!(st.cursors(run.id).unwrap()[0].last_seq, Some(last));
    a.shutdown().await;
}
