//! Which path carried the KV bytes (node counters), and engine logs standing in for metrics.

use super::*;

/// An agent on a p5-like sysfs fixture: while the KV cache moves, the test advances
/// one EFA device's byte counters (as the EFA driver would) or leaves them alone.
async fn kv_carrier(bump_efa: bool) -> Attribution {
    use servescope_agent::collect::rdma::fixture::{bump_counters, write_one_efa_tree};
    let dir = tempfile::tempdir().unwrap();
    let sys = dir.path().join("sys");
    let efa = write_one_efa_tree(&sys, 1).unwrap();
    let mut cfg = servescope_agent::AgentConfig::loopback(Some("pd-token-123456".into()));
    cfg.sysfs_root = sys.clone();
    cfg.nvml_lib = Some(dir.path().join("no-such-libnvidia-ml.so.1"));
    cfg.kmsg = false;
    cfg.rdma_interval = Duration::from_millis(50);
    let agent = servescope_agent::start(cfg).await.unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let bumper = {
        let (stop, sys) = (Arc::clone(&stop), sys.clone());
        tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if bump_efa {
                    for name in ["tx_bytes", "rx_bytes"] {
                        bump_counters(&sys, &efa, Some(1), name, 150_000_000).unwrap();
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let ep = AgentEndpoint::new(agent.grpc_addr.to_string(), Some("pd-token-123456".into()));
    let (a, _) = run_with(clean(), closed(&[4], 8), vec![ep]).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = bumper.await;
    agent.shutdown().await;
    a
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_counters_say_which_path_carried_the_kv_bytes() {
    use servescope_coordinator::analysis::pd::kv::Carrier;
    let a = kv_carrier(true).await;
    assert_eq!(a.kv.nodes.len(), 1, "{:?}", a.kv.nodes);
    let n = &a.kv.nodes[0];
    assert!(
        n.rdma_devices == 1 && n.rdma_tx_bytes as f64 >= a.kv.bytes,
        "{n:?} vs {}",
        a.kv.bytes
    );
    assert_eq!(a.kv.carrier, Some(Carrier::Rdma));
    assert!(a.findings.is_empty(), "{:#?}", a.findings);
    // Same node, counters still: the bytes crossed no NIC (NVLink / shared memory).
    let a = kv_carrier(false).await;
    assert_eq!(a.kv.nodes[0].rdma_tx_bytes, 0);
    assert_eq!(a.kv.carrier, Some(Carrier::NotOnNetwork));
}

/// A plain `load` run through the proxy (no scrapes, no spans) attributed with the
/// engines' logs only: KV stats from `KV Transfer metrics` lines, the request lines
/// joined, D's queue split with the logs' bandwidth.
#[tokio::test]
async fn engine_logs_stand_in_for_metrics() {
    use servescope_coordinator::analysis::pd::logs;
    use servescope_coordinator::orchestration::load::runner::run_load;
    let _shared = QUIET.read().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("load.db");
    let h = start_cluster(clean(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let load = LoadConfig {
        points: vec![Arrival::Closed { concurrency: 2 }],
        num_prompts: Some(6),
        label: "plain".into(),
        ..proxy_load(&h, "lg-", 4, 2, &db)
    };
    let (run_id, _) = run_load(load, Arc::new(LoadProgress::default()))
        .await
        .unwrap();
    let truth = h.truth.all();
    h.shutdown().await;
    // What vLLM would have logged: one request line each, one stats line for all.
    let mb = 100.0 * 400_000.0 / 1_048_576.0;
    let ms = truth.iter().map(|t| t.kv_transfer_ms).sum::<f64>() / truth.len() as f64;
    let mut text = String::new();
    for t in &truth {
        text.push_str(&format!(
            "INFO 12-01 00:00:00 [async_llm.py:344] Added request cmpl-{}-0.\n",
            t.request_id
        ));
    }
    text.push_str(&format!("INFO 12-01 00:00:10 [metrics.py:1] KV Transfer metrics: Num successful transfers={}, Avg xfer time (ms)={ms:.4}, P90 xfer time (ms)={ms:.4}, Avg post time (ms)=0.1, P90 post time (ms)=0.1, Avg MB per transfer={mb:.4}, Throughput (MB/s)=1.0, Avg number of descriptors=4.0, Num failed transfers=0, Num KV expired reqs=0\n", truth.len()));
    let store = Store::open(&db).unwrap();
    let a = attribute(
        &store,
        run_id,
        &AttributeOptions {
            slowest: usize::MAX,
            capacity_gbps: None,
            engine_logs: vec![("d.log".into(), logs::parse(&text))],
        },
    )
    .unwrap();
    assert_eq!(a.join.with_engine_log, 6);
    assert_eq!(a.kv.transfers, 6.0);
    let g = a.kv.effective_gbps.unwrap();
    assert!((g - 5.0).abs() < 0.05, "{g}");
    let by_id: std::collections::HashMap<&str, &Truth> =
        truth.iter().map(|t| (t.request_id.as_str(), t)).collect();
    for b in &a.points[0].breakdowns {
        let t = by_id[b.request_id.as_str()];
        close(
            b.get("kv_transfer").unwrap(),
            t.kv_transfer_ms,
            "kv_transfer",
            &b.request_id,
        );
        assert!(b.get("upstream").is_some() && b.get("p_queue").is_none());
    }
    assert!(
        a.notes.iter().any(|n| n.contains("KV Transfer metrics")),
        "{:?}",
        a.notes
    );
}
