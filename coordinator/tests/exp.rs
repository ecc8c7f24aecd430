//! An experiment file end to end on loopback: 1, 2 and 4 simulated replicas behind
//! an ingress each, plus a deployment that is down; the load sent by two shards hosted
//! on two agents. Checks: pooled percentiles equal those recomputed from the stored
//! requests; scaling efficiency and per-replica throughput match the simulator's
//! configured capacity within 5 %; the failed point is shown as failed, not dropped;
//! a second run finds everything stored and sends nothing.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use servescope_agent::{AgentConfig, AgentHandle};
use servescope_coordinator::analysis::exp::analyze;
use servescope_coordinator::orchestration::exp::runner::{run_experiment, ExpRunConfig};
use servescope_coordinator::orchestration::exp::shards::Client;
use servescope_coordinator::orchestration::load::metrics::{aggregate, AggregateOptions};
use servescope_coordinator::{AgentEndpoint, Store};
use servescope_sim::ingress::start_replicated;
use servescope_sim::SimConfig;

const TOKEN: &str = "exp-test-token-123";

async fn agent(dir: &std::path::Path) -> AgentHandle {
    let mut cfg = AgentConfig::loopback(Some(TOKEN.into()));
    cfg.sysfs_root = dir.join("no-sys");
    cfg.nvml_lib = Some(dir.join("no-such-libnvidia-ml.so.1"));
    cfg.kmsg = false;
    servescope_agent::start(cfg).await.expect("agent starts")
}

fn sim() -> SimConfig {
    SimConfig {
        prefill_base_s: 0.010,
        prefill_s_per_token: 0.000_05,
        decode_s_per_token: 0.040,
        max_num_seqs: 2,
        ..SimConfig::default()
    }
}

/// Requests per second one replica can finish: slots ÷ (prefill + (n − 1) decode steps).
fn capacity(c: &SimConfig, input: u32, output: u32) -> f64 {
    c.max_num_seqs as f64
        / (c.predicted_ttft_s(input) + f64::from(output - 1) * c.decode_s_per_token)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaling_experiment_with_agent_shards() {
    let dir = tempfile::tempdir().unwrap();
    let (a1, a2) = (agent(dir.path()).await, agent(dir.path()).await);
    let mut reps = Vec::new();
    for n in [1, 2, 4] {
        reps.push(
            start_replicated(sim(), n, "127.0.0.1:0".parse().unwrap())
                .await
                .unwrap(),
        );
    }
    let down = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let file = dir.path().join("scaling.yaml");
    std::fs::write(
        &file,
        format!(
            "name: scaling
deployments:
  - {{name: r1, endpoint: '{}', gpus: 1, replicas: 1}}
  - {{name: r2, endpoint: '{}', gpus: 2, replicas: 2}}
  - {{name: r4, endpoint: '{}', gpus: 4, replicas: 4}}
  - {{name: down, endpoint: 'http://{down}', gpus: 1, replicas: 1}}
workload:
  model: servescope-sim
  concurrency: [6]
  concurrency_per_replica: true
  lengths: ['32:8']
  duration_s: 3.0
client:
  shards: 2
  agents: ['{}', '{}']
analyses: [scaling, matrix, fabric_check]
",
            reps[0].url(),
            reps[1].url(),
            reps[2].url(),
            a1.grpc_addr,
            a2.grpc_addr
        ),
    )
    .unwrap();
    let db = dir.path().join("exp.db");
    let client = Client::Agents(
        [a1.grpc_addr, a2.grpc_addr]
            .iter()
            .map(|a| AgentEndpoint::new(a.to_string(), Some(TOKEN.into())))
            .collect(),
    );
    let cfg = |client: Client| ExpRunConfig {
        file_path: file.clone(),
        db: db.clone(),
        client,
        agents: vec![AgentEndpoint::new(
            a1.grpc_addr.to_string(),
            Some(TOKEN.into()),
        )],
        stop: Arc::new(AtomicBool::new(false)),
        progress: Box::new(|l| eprintln!("{l}")),
    };
    let out = run_experiment(cfg(client.clone())).await.unwrap();
    assert_eq!((out.ran, out.skipped, out.failed), (4, 0, 1));

    let store = Store::open(&db).unwrap();
    let an = analyze(&store, "scaling").unwrap();
    assert_eq!(an.points.len(), 4);
    // The failed point is there, marked, with its cause.
    let down_p = an.points.iter().find(|p| p.deployment == "down").unwrap();
    assert_eq!(down_p.status, "failed");
    assert_eq!(down_p.aggregate.completed, 0);
    assert!(
        down_p.detail.as_deref().unwrap_or("").contains("not ready"),
        "{:?}",
        down_p.detail
    );
    assert!(
        an.warnings
            .iter()
            .any(|w| w.contains("down") && w.contains("FAILED")),
        "{:?}",
        an.warnings
    );
    // Pooled over both shards, recomputed from the stored requests: identical.
    for p in an.points.iter().filter(|p| p.status == "done") {
        let reqs = store.point_requests(p.point_id).unwrap();
        assert!(
            reqs.iter().any(|r| r.idx < 10_000_000) && reqs.iter().any(|r| r.idx >= 10_000_000),
            "{}: both shards",
            p.key
        );
        let ids: std::collections::HashSet<&str> =
            reqs.iter().map(|r| r.request_id.as_str()).collect();
        assert_eq!(ids.len(), reqs.len(), "request ids are unique");
        let records: Vec<_> = reqs.iter().map(|r| r.record.clone()).collect();
        let again = aggregate(
            &records,
            &AggregateOptions {
                gpus: Some(p.gpus),
                replicas: Some(p.replicas),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(again.ttft_ms, p.aggregate.ttft_ms, "{}", p.key);
        assert_eq!(again.tpot_ms, p.aggregate.tpot_ms);
        assert_eq!(again.e2el_ms, p.aggregate.e2el_ms);
        assert_eq!(again.completed, p.aggregate.completed);
    }
    // Scaling against the configured capacity.
    let cap = capacity(&sim(), 32, 8);
    for r in &an.scaling {
        let e = r.efficiency.expect("efficiency");
        eprintln!(
            "{}: {} replicas, {:.2} req/s, {:.2} per replica (capacity {cap:.2}), efficiency {:.3}",
            r.deployment, r.replicas, r.request_throughput, r.per_replica_rps, e
        );
        assert!((e - 1.0).abs() < 0.05, "{}: efficiency {e}", r.deployment);
        let per = r.per_replica_rps;
        assert!(
            (per - cap).abs() / cap < 0.05,
            "{}: {per:.2} req/s per replica vs capacity {cap:.2}",
            r.deployment
        );
        assert!(!r.client_bound);
    }
    assert_eq!(an.scaling.len(), 3);
    // The preflight ran on the client agents (no fabric here: findings say so), and
    // the telemetry of each deployment that ran was recorded from agent 1.
    let pre = an.preflight.as_ref().expect("preflight stored");
    assert!(
        pre.iter().any(|f| f.agent == a1.grpc_addr.to_string()),
        "{pre:?}"
    );
    assert_eq!(an.telemetry_runs.len(), 3, "{:?}", an.telemetry_runs);
    // Resumed: nothing left to send.
    let again = run_experiment(cfg(client)).await.unwrap();
    assert_eq!((again.ran, again.skipped), (0, 4));
    for r in reps {
        r.shutdown().await;
    }
    a1.shutdown().await;
    a2.shutdown().await;
}

/// The agent's RunLoadShard refuses a bad spec with the field named, and a second
/// shard while one runs; the running shard streams every request back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_load_shard_bounds() {
    use servescope_coordinator::orchestration::connect::connect;
    use servescope_loadgen::shard::{ShardArrival, ShardRecord, ShardSpec, ShardWorkload};
    use servescope_proto::v1::LoadShardRequest;
    let dir = tempfile::tempdir().unwrap();
    let a = agent(dir.path()).await;
    let s = servescope_sim::start(sim(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let ep = AgentEndpoint::new(a.grpc_addr.to_string(), Some(TOKEN.into()));
    let mut c = connect(&ep).await.unwrap();
    let spec = ShardSpec {
        endpoint: s.url(),
        api: "completions".into(),
        model: "servescope-sim".into(),
        request_id_prefix: "shard-".into(),
        arrival: ShardArrival::Closed { concurrency: 2 },
        num_requests: Some(6),
        duration_s: None,
        workload: ShardWorkload::Random {
            input_tokens: 8,
            output_tokens: 4,
            ignore_eos: true,
        },
        seed: 1,
        index_offset: 100,
        start_at_ns: None,
        max_connections: 2,
    };
    let mut bad = spec.clone();
    bad.endpoint = "ftp://x".into();
    let e = c
        .run_load_shard(LoadShardRequest {
            spec: Some((&bad).into()),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    assert!(e.message().contains("endpoint"), "{}", e.message());
    let mut stream = c
        .run_load_shard(LoadShardRequest {
            spec: Some((&spec).into()),
        })
        .await
        .unwrap()
        .into_inner();
    let mut c2 = connect(&ep).await.unwrap();
    let busy = c2
        .run_load_shard(LoadShardRequest {
            spec: Some((&spec).into()),
        })
        .await
        .unwrap_err();
    assert_eq!(busy.code(), tonic::Code::ResourceExhausted);
    let mut got = Vec::new();
    let mut done = None;
    while let Some(ev) = stream.message().await.unwrap() {
        for r in &ev.records {
            got.push(serde_json::from_str::<ShardRecord>(r).unwrap());
        }
        if ev.done {
            done = Some((ev.sent, ev.error));
        }
    }
    assert_eq!(done, Some((6, String::new())));
    let mut idx: Vec<usize> = got.iter().map(|r| r.index).collect();
    idx.sort();
    assert_eq!(idx, (100..106).collect::<Vec<_>>());
    assert!(got
        .iter()
        .all(|r| r.record.error.is_none() && r.request_id.starts_with("shard-")));
    s.shutdown().await;
    a.shutdown().await;
}
