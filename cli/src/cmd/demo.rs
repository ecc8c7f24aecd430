//! `servescope demo`: an agent in-process on loopback, a 10 s recording, the
//! inventory and a summary of what was recorded.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use servescope_agent::AgentConfig;
use servescope_coordinator::record::RecordConfig;
use servescope_coordinator::store::RunKind;
use servescope_coordinator::summary::summarize;
use servescope_coordinator::{AgentEndpoint, Store};

use super::common::{fmt_bytes, fmt_kinds, fmt_ns, or_dash, parse_duration, DbFlag};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// How long to record
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    pub duration: Duration,
    #[command(flatten)]
    pub db: DbFlag,
    /// sysfs root for the agent (e.g. a captured tree)
    #[arg(long)]
    pub sysfs_root: Option<PathBuf>,
    /// Path of libnvidia-ml.so.1
    #[arg(long)]
    pub nvml_lib: Option<PathBuf>,
    /// Where the HTML report of the load sweep goes
    #[arg(long, default_value = "servescope-demo-report.html")]
    pub report: PathBuf,
    /// Skip the simulated endpoint and the load sweep
    #[arg(long)]
    pub no_load: bool,
    /// Skip the loopback fabric probe
    #[arg(long)]
    pub no_fabric: bool,
}

/// The demo's load sweep against the simulator: concurrency 1, 4, 16 over a sim that
/// runs at most 8 sequences at once, so the report shows the knee.
async fn demo_load(
    db: &std::path::Path,
) -> anyhow::Result<(i64, Vec<servescope_coordinator::load::runner::PointResult>)> {
    use servescope_coordinator::load::metrics::AggregateOptions;
    use servescope_coordinator::load::request::{Api, Target};
    use servescope_coordinator::load::runner::{run_load, LoadConfig, LoadProgress};
    use servescope_coordinator::load::schedule::Arrival;
    use servescope_coordinator::load::workload::RandomWorkload;
    let sim_cfg = servescope_sim::SimConfig {
        prefill_base_s: 0.010,
        prefill_s_per_token: 0.000_05,
        decode_s_per_token: 0.005,
        max_num_seqs: 8,
        ..Default::default()
    };
    let sim = servescope_sim::start(sim_cfg, "127.0.0.1:0".parse()?)
        .await
        .context("starting the simulator")?;
    eprintln!("servescope demo: simulated vLLM endpoint on {}", sim.url());
    let cfg = LoadConfig {
        target: Target {
            base_url: sim.url(),
            api: Api::Completions,
            model: "servescope-sim".into(),
            request_id_prefix: "demo-".into(),
            sse_limits: Default::default(),
        },
        points: [1, 4, 16]
            .map(|c| Arrival::Closed { concurrency: c })
            .to_vec(),
        num_prompts: Some(24),
        duration: None,
        warmup: 2,
        trials: 1,
        workload: RandomWorkload {
            input_tokens: 256,
            output_tokens: 16,
            ignore_eos: true,
            seed: 1,
        }
        .into(),
        probe: true,
        aggregate: AggregateOptions {
            gpus: Some(1),
            ..Default::default()
        },
        db: db.to_path_buf(),
        label: "demo sweep against servescope sim".into(),
        max_connections: 16,
        point_hook: None,
        resume: None,
    };
    let out = run_load(cfg, std::sync::Arc::new(LoadProgress::default())).await;
    sim.shutdown().await;
    Ok(out?)
}

fn random_token() -> String {
    let mut b = [0u8; 16];
    let _ = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b));
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub async fn run(a: Args) -> anyhow::Result<()> {
    let token = random_token();
    let mut cfg = AgentConfig::loopback(Some(token.clone()));
    if let Some(r) = &a.sysfs_root {
        cfg.sysfs_root = r.clone();
    }
    cfg.nvml_lib = a.nvml_lib.clone();
    let agent = servescope_agent::start(cfg)
        .await
        .context("starting the in-process agent")?;
    let addr = agent.grpc_addr.to_string();
    eprintln!(
        "servescope demo: agent on {addr} (gRPC, bearer token), /metrics on {}",
        or_dash(agent.metrics_addr)
    );
    let ep = AgentEndpoint::new(addr.clone(), Some(token));
    let rec = RecordConfig::new(vec![ep.clone()], a.duration, a.db.db.clone());
    // The load sweep runs while the agent records: one run of telemetry, one of load.
    let (out, load) = if a.no_load {
        (super::record::record_with_progress(rec, false).await?, None)
    } else {
        let (r, l) = tokio::join!(
            super::record::record_with_progress(rec, false),
            demo_load(&a.db.db)
        );
        (r?, Some(l?))
    };
    // Inventory as the agent reports it now.
    let mut client = servescope_coordinator::connect::connect(&ep).await?;
    let inv = client
        .get_inventory(servescope_proto::v1::GetInventoryRequest {})
        .await?
        .into_inner();
    let off = out.agents.first().and_then(|a| a.offset);
    println!();
    print!("{}", super::nodes::render(&addr, &inv, off.as_ref()));

    let store = Store::open(&a.db.db)?;
    let sums = summarize(&store, out.run_id)?;
    println!(
        "== run {} ({}), stored in {}",
        out.run_id,
        fmt_span(a.duration),
        a.db.db.display()
    );
    for s in &sums {
        println!(
            "samples: {} (seq {}..{}, {} missing, {} lost in gaps) over {:.1} s",
            fmt_kinds(&s.samples_by_kind),
            s.first_seq,
            s.last_seq,
            s.missing_seqs,
            s.agent.as_ref().map(|x| x.lost).unwrap_or(0),
            s.span_s
        );
        if let Some(ag) = &s.agent {
            if let (Some(o), Some(e)) = (ag.offset_ns, ag.offset_error_ns) {
                println!("clock offset: {} ± {}", fmt_ns(o), fmt_ns(e));
            }
        }
        println!(
            "host: cpu mean {:.1}% | memory used max {} | network rx {} tx {}",
            s.cpu_mean_pct,
            fmt_bytes(s.memory_used_max_bytes as f64),
            fmt_bytes(s.net_rx_bytes as f64),
            fmt_bytes(s.net_tx_bytes as f64)
        );
        if s.gpus.is_empty() {
            let why = inv
                .gpu
                .as_ref()
                .map(|g| g.detail.clone())
                .unwrap_or_default();
            println!("gpu: unavailable ({why})");
        }
        for g in &s.gpus {
            println!(
                "gpu {}: util mean {:.1}% max {}% | memory used max {} | power mean {:.0} W | PCIe tx {} rx {} | {} field errors",
                g.index,
                g.util_mean_pct,
                g.util_max_pct,
                fmt_bytes(g.memory_used_max_bytes as f64),
                g.power_mean_w,
                fmt_bytes(g.pcie_tx_bytes as f64),
                fmt_bytes(g.pcie_rx_bytes as f64),
                g.field_errors
            );
        }
        println!(
            "rdma: {} device(s) sampled | events: {}",
            s.rdma_devices, s.events
        );
        if let Some(c) = s.agent_cpu_pct_of_core {
            // The agent runs in this process: with the sim and the load client beside it,
            // getrusage counts all three.
            let what = if load.is_some() {
                "CPU of this process (in-process agent + sim + load client)"
            } else {
                "agent overhead"
            };
            println!(
                "{what}: {:.2}% of one core, RSS max {}",
                c,
                fmt_bytes(s.agent_rss_max_bytes as f64)
            );
        }
    }
    if let Some((load_run, points)) = &load {
        println!("\n== load run {load_run}: sweep against the simulated endpoint");
        super::load::print_points(points);
        servescope_coordinator::report::write_report(&a.db.db, &[*load_run], &a.report)
            .with_context(|| format!("writing {}", a.report.display()))?;
        println!("report: {}", a.report.display());
    }
    if !a.no_fabric {
        demo_fabric(&a, &ep).await;
    }
    agent.shutdown().await;
    println!(
        "\nnext: servescope runs --db {0} | servescope export {1} --db {0} --format csv",
        a.db.db.display(),
        out.run_id
    );
    Ok(())
}

/// A loopback fabric probe between the demo's agent and a second one started here:
/// the first transport that works of libfabric shm, libfabric tcp and UCX tcp.
async fn demo_fabric(a: &Args, ep: &AgentEndpoint) {
    use servescope_proto::v1::ProbePlanMsg;
    println!("\n== fabric: loopback probe between two agents");
    let mut cfg = AgentConfig::loopback(ep.token.clone());
    cfg.nvml_lib = a.nvml_lib.clone();
    cfg.metrics_listen = None;
    let peer = match servescope_agent::start(cfg).await {
        Ok(p) => p,
        Err(e) => {
            println!("skipped: cannot start a second agent ({e})");
            return;
        }
    };
    let to = AgentEndpoint::new(peer.grpc_addr.to_string(), ep.token.clone());
    let plan = ProbePlanMsg {
        sizes: vec![64 << 10, 1 << 20],
        ops: vec!["tag".into()],
        window: 8,
        iterations: 20,
        latency_iterations: 50,
        warmup: 2,
        duration_per_size_ms: 1000,
        max_duration_ms: 30_000,
        peer_timeout_ms: 5000,
        ..Default::default()
    };
    probe_first_working(a, ep, &to, &plan).await;
    peer.shutdown().await;
}

async fn probe_first_working(
    a: &Args,
    ep: &AgentEndpoint,
    to: &AgentEndpoint,
    plan: &servescope_proto::v1::ProbePlanMsg,
) {
    use servescope_coordinator::fabric::{self, units};
    for t in ["libfabric:shm", "libfabric:tcp", "ucx:tcp"] {
        let Ok(tr) = fabric::parse_transport(t) else {
            continue;
        };
        match fabric::probe(ep, to, &tr, plan, |_| {}).await {
            Ok(o) if o.error.is_none() && !o.results.is_empty() => {
                for r in &o.results {
                    println!(
                        "{t}: {:>7} {} | latency p50 {}",
                        units::fmt_size(r.size),
                        units::fmt_rate(r.bandwidth_bps),
                        r.latency_p50_ns
                            .map_or("-".into(), |n| format!("{:.1} µs", n as f64 / 1e3))
                    );
                }
                if let Some(tt) = o.driver.as_ref().and_then(|d| d.truth.as_ref()) {
                    println!(
                        "carried by: {} {} provider={} lanes=[{}]",
                        tt.library,
                        tt.version,
                        tt.provider,
                        tt.lanes.join(", ")
                    );
                }
                if let Ok(mut store) = servescope_coordinator::Store::open(&a.db.db) {
                    let now = servescope_proto::now_ns();
                    if let Ok(run) = store.create_run(RunKind::Fabric, t, now, "{}") {
                        let _ = store.save_fabric_probe(run, &o);
                        let _ = store.finish_run(run, now, "done");
                        println!("stored as run {run}");
                    }
                }
                return;
            }
            Ok(o) => println!("{t}: {}", o.error.unwrap_or_else(|| "no result".into())),
            Err(e) => println!("{t}: {e}"),
        }
    }
    println!("no fabric transport worked here (install libfabric1 or libucx0)");
}

fn fmt_span(d: Duration) -> String {
    format!("{:.0} s recording", d.as_secs_f64())
}
