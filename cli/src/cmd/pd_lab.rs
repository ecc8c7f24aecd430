//! A `pd run` in the lab: the simulated disaggregated deployment on loopback (a
//! proxy, one prefill and one decode instance exporting spans to the run's OTLP
//! receiver), the sweep through the proxy with the lab's agent recorded, and a
//! counter driver moving the fixture while it runs. The same `pd_run` as
//! `servescope pd run`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use servescope_coordinator::orchestration::load::metrics::AggregateOptions;
use servescope_coordinator::orchestration::load::request::{Api, Target};
use servescope_coordinator::orchestration::load::runner::{LoadConfig, LoadProgress, PointResult};
use servescope_coordinator::orchestration::load::schedule::Arrival;
use servescope_coordinator::orchestration::load::workload::RandomWorkload;
use servescope_coordinator::orchestration::otlp_receiver::{Limits, Receiver};
use servescope_coordinator::orchestration::pd_run::{pd_run, PdRunConfig};
use servescope_sim::config::PdConfig;
use servescope_sim::disagg::{start_cluster, ClusterConfig, Truth};
use servescope_sim::SimConfig;

use super::lab::{Drive, Driver, Lab};

/// Prompt length of the lab's sweeps (tokens).
pub const INPUT_TOKENS: u32 = 100;
/// How long a KV transfer takes on the clean path.
const KV_TRANSFER: Duration = Duration::from_millis(10);

/// A clean deployment: nothing queues at concurrency ≤ 8, the KV path runs at
/// `kv_gbps` and each transfer takes [`KV_TRANSFER`] on it. The prefill (105 ms for
/// 100 tokens) and the decode step (10 ms) are long enough that the in-process
/// proxy's and client's own scheduling delays on a loaded 2-core machine stay a small
/// share of TTFT and well under two decode steps.
pub fn clean_cluster(kv_gbps: f64) -> ClusterConfig {
    let per_token = kv_gbps * 1e9 * KV_TRANSFER.as_secs_f64() / f64::from(INPUT_TOKENS);
    ClusterConfig::clean(SimConfig {
        prefill_base_s: 0.100,
        prefill_s_per_token: 0.000_05,
        decode_s_per_token: 0.010,
        max_num_seqs: 64,
        pd: Some(PdConfig {
            prefill_slots: 64,
            kv_bytes_per_token: per_token.round().max(1.0) as u64,
            kv_gbps,
            kv_links: 64,
            handshake_s: 0.02,
            ..Default::default()
        }),
        seed: 3,
        ..Default::default()
    })
}

/// The sweep through the proxy.
#[derive(Debug, Clone)]
pub struct Sweep {
    pub concurrency: Vec<usize>,
    pub num_prompts: usize,
    pub output_tokens: u32,
    /// Send the correctness probe at each point.
    pub probe: bool,
}

/// What a lab `pd run` left.
pub struct PdOutcome {
    pub run_id: i64,
    pub telemetry_run: Option<i64>,
    pub points: Vec<PointResult>,
    /// What each request really did, by the simulator.
    pub truth: Vec<Truth>,
}

/// Runs the deployment `c` and the sweep, recording the lab's agent, into `db`.
pub async fn run_pd(
    lab: &Lab,
    mut c: ClusterConfig,
    sweep: &Sweep,
    fabric_run: Option<i64>,
    drive: Drive,
    db: &Path,
) -> anyhow::Result<PdOutcome> {
    let rx = Receiver::start("127.0.0.1:0".parse()?, Limits::default())
        .await
        .context("starting the OTLP receiver")?;
    c.otlp_endpoint = Some(format!("http://{}", rx.local_addr()));
    let h = start_cluster(c, "127.0.0.1:0".parse()?)
        .await
        .context("starting the simulated P/D deployment")?;
    let load = LoadConfig {
        target: Target {
            base_url: h.proxy_url(),
            api: Api::Completions,
            model: "servescope-sim".into(),
            request_id_prefix: "lab-".into(),
            sse_limits: Default::default(),
        },
        points: sweep
            .concurrency
            .iter()
            .map(|&c| Arrival::Closed { concurrency: c })
            .collect(),
        num_prompts: Some(sweep.num_prompts),
        duration: None,
        warmup: 0,
        trials: 1,
        workload: RandomWorkload {
            input_tokens: INPUT_TOKENS,
            output_tokens: sweep.output_tokens,
            ignore_eos: true,
            seed: 5,
        }
        .into(),
        probe: sweep.probe,
        aggregate: AggregateOptions::default(),
        db: db.to_path_buf(),
        label: "servescope lab: P/D sweep".into(),
        max_connections: 64,
        point_hook: None,
        resume: None,
    };
    let driver = Driver::start(
        drive,
        lab.target(Some(Arc::clone(&h.truth)), Duration::ZERO),
    );
    let out = pd_run(
        PdRunConfig {
            load,
            prefill: h.prefill_urls(),
            decode: h.decode_urls(),
            scrape_interval: Duration::from_millis(100),
            otlp: Some(rx),
            span_wait: Duration::from_millis(700),
            agents: vec![lab.ep.clone()],
            fabric_run,
        },
        Arc::new(LoadProgress::default()),
    )
    .await;
    let stopped = driver.stop().await;
    let truth = h.truth.all();
    h.shutdown().await;
    let out = out.context("pd run")?;
    stopped?;
    Ok(PdOutcome {
        run_id: out.run_id,
        telemetry_run: out.telemetry_run,
        points: out.points,
        truth,
    })
}
