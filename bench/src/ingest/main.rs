//! bench/ingest: one `servescope record` ingesting from many agents on loopback.
//! Each agent is the real agent service (ring, gRPC streaming, host and self
//! collectors) driven by synthetic collectors at a p5 node's rate: 8 GPUs every
//! 100 ms and 32 EFA devices every second. Prints the metric values (Prometheus
//! samples) and sample messages stored per second, the coordinator's CPU and peak
//! RSS, store growth per agent-hour, lost samples, and the lag from a sample's
//! production to its commit (p50/p99), against the goal: ≥ 100 k values/s
//! sustained, 0 lost, lag p99 < 1 s.

mod observe;
#[path = "../procstat.rs"]
#[allow(dead_code)] // per-thread figures are agent_overhead's
mod procstat;
mod synthetic;
mod values;

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Parser;
use servescope_agent::collect::Producer;
use servescope_agent::AgentConfig;
use servescope_proto::now_ns;

use observe::quantile;
use procstat::Snapshot;
use synthetic::{SyntheticGpus, SyntheticRdma};

/// Goal: metric values stored per second, sustained.
const GOAL_VALUES_PER_S: f64 = 100_000.0;
/// Goal: end-to-end lag p99.
const GOAL_LAG_P99: Duration = Duration::from_secs(1);
const TOKEN: &str = "ingest-bench-token";

#[derive(Parser)]
struct Args {
    /// Agents (each one p5-like node)
    #[arg(long, default_value_t = 64)]
    agents: u32,
    /// Recording length in seconds
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Seconds at the start left out of the rates (connections, first batches)
    #[arg(long, default_value_t = 3)]
    warmup: u64,
    #[arg(long, default_value_t = 8)]
    gpus: u32,
    #[arg(long, default_value_t = 100)]
    gpu_interval_ms: u64,
    #[arg(long, default_value_t = 32)]
    rdma_devices: u32,
    #[arg(long, default_value_t = 1000)]
    rdma_interval_ms: u64,
    /// How often the store is read for the lag (its resolution)
    #[arg(long, default_value_t = 50)]
    poll_ms: u64,
    /// The `servescope` binary (default: next to this benchmark)
    #[arg(long)]
    servescope_bin: Option<PathBuf>,
    /// Keep the store (its path is printed)
    #[arg(long)]
    keep: bool,
}

fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    if a.seconds <= a.warmup + 1 {
        bail!("--seconds must exceed --warmup by more than 1");
    }
    let bin = match &a.servescope_bin {
        Some(b) => b.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("benchmark path")?
            .join("servescope"),
    };
    if !bin.exists() {
        bail!(
            "servescope binary {} not found: build it (cargo build --release -p servescope) or pass --servescope-bin",
            bin.display()
        );
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run(a, bin))
}

async fn run(a: Args, bin: PathBuf) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("servescope-ingest-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("sys"))?;
    let token = dir.join("token");
    std::fs::write(&token, format!("{TOKEN}\n"))?;
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600))?;
    let db = dir.join("ingest.db");

    let mut agents = Vec::new();
    for i in 0..a.agents {
        let mut cfg = AgentConfig::loopback(Some(TOKEN.into()));
        cfg.metrics_listen = None;
        cfg.kmsg = false;
        cfg.startup_watch = false;
        cfg.nvml_lib = Some(dir.join("no-nvml.so"));
        cfg.sysfs_root = dir.join("sys");
        cfg.sample_interval = Duration::from_millis(a.gpu_interval_ms);
        let seed = u64::from(i) * 0x9e37_79b9 + 1;
        let extra = vec![
            Producer::periodic(SyntheticGpus::new(a.gpus, seed), cfg.sample_interval),
            Producer::periodic(
                SyntheticRdma::new(a.rdma_devices, seed ^ 0xff),
                Duration::from_millis(a.rdma_interval_ms),
            ),
        ];
        agents.push(servescope_agent::start_with(cfg, extra).await?);
    }

    let mut cmd = Command::new(&bin);
    cmd.args(["record", "--quiet", "--label", "ingest-bench", "--duration"])
        .arg(format!("{}s", a.seconds))
        .arg("--db")
        .arg(&db)
        .arg("--token-file")
        .arg(&token);
    for h in &agents {
        cmd.arg("--agent").arg(h.grpc_addr.to_string());
    }
    let started = now_ns();
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let pid = child.id();
    let win_from = started + a.warmup * 1_000_000_000;
    let win_to = started + (a.seconds - 1) * 1_000_000_000;

    let stop = Arc::new(AtomicBool::new(false));
    let poll = Duration::from_millis(a.poll_ms.max(1));
    let watcher = {
        let (db, stop) = (db.clone(), Arc::clone(&stop));
        std::thread::spawn(move || observe::watch(&db, poll, win_from, stop))
    };
    tokio::time::sleep(Duration::from_secs(a.warmup)).await;
    let coord = Snapshot::take(pid)?;
    let me = Snapshot::take(std::process::id())?;
    tokio::time::sleep(Duration::from_nanos(win_to.saturating_sub(now_ns()))).await;
    let coord = coord.since()?;
    let me = me.since()?;
    let out = tokio::task::spawn_blocking(move || child.wait_with_output()).await??;
    // One more look after the last commit.
    tokio::time::sleep(poll * 2).await;
    stop.store(true, Ordering::Relaxed);
    let mut lags = watcher
        .join()
        .map_err(|_| anyhow::anyhow!("store watcher panicked"))?;
    for h in agents {
        h.shutdown().await;
    }
    if !out.status.success() {
        bail!(
            "servescope record failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let st = observe::stored(&db, win_from, win_to)?;
    let win_s = (win_to - win_from) as f64 / 1e9;
    let report = Report {
        values_per_s: st.window_values as f64 / win_s,
        rows_per_s: st.window_rows as f64 / win_s,
        lag_p50: quantile(&mut lags.ns, 0.50),
        lag_p99: quantile(&mut lags.ns, 0.99),
        lag_max: lags.ns.last().copied().unwrap_or(0),
        per_agent_hour: st.bytes as f64 / f64::from(a.agents.max(1)) / (a.seconds as f64 / 3600.0),
    };
    println!(
        "ingest: {} agents × ({} GPUs every {} ms + {} EFA devices every {} ms) → one `servescope record` for {} s (rates over {:.0} s after a {} s warm-up)",
        a.agents, a.gpus, a.gpu_interval_ms, a.rdma_devices, a.rdma_interval_ms, a.seconds, win_s, a.warmup
    );
    println!(
        "stored              {:.0} values/s ({:.0} sample messages/s); {} agents in the run, {} messages, {} values in all",
        report.values_per_s, report.rows_per_s, st.agents, st.rows, st.values
    );
    println!(
        "coordinator         {:.1} % of one core, peak RSS {:.1} MiB",
        coord.cpu_pct,
        coord.rss as f64 / f64::from(1 << 20)
    );
    println!(
        "agents (this bench) {:.1} % of one core for all {} agents",
        me.cpu_pct, a.agents
    );
    println!(
        "store               {:.1} MiB in all, {:.1} MiB per agent-hour",
        st.bytes as f64 / f64::from(1 << 20),
        report.per_agent_hour / f64::from(1 << 20)
    );
    println!(
        "lag produced→committed p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms ({} samples; store read every {} ms)",
        report.lag_p50 as f64 / 1e6,
        report.lag_p99 as f64 / 1e6,
        report.lag_max as f64 / 1e6,
        lags.ns.len(),
        lags.poll.as_millis()
    );
    println!("lost                {}", st.lost);
    let met = report.values_per_s >= GOAL_VALUES_PER_S
        && st.lost == 0
        && u128::from(report.lag_p99) < GOAL_LAG_P99.as_nanos();
    println!(
        "goal: ≥ {:.0} values/s sustained, 0 lost, lag p99 < {} ms → {:.0} values/s (ratio {:.2}), lost {}, p99 {:.0} ms: {}",
        GOAL_VALUES_PER_S,
        GOAL_LAG_P99.as_millis(),
        report.values_per_s,
        report.values_per_s / GOAL_VALUES_PER_S,
        st.lost,
        report.lag_p99 as f64 / 1e6,
        if met { "met" } else { "NOT met" }
    );
    if coord.cpu_pct > 0.0 {
        let per_node = report.values_per_s / f64::from(a.agents.max(1));
        println!(
            "projection          {:.0} values/s per node; at this cost one coordinator core holds ≈ {:.0} such nodes",
            per_node,
            f64::from(a.agents) * 100.0 / coord.cpu_pct
        );
    }
    if a.keep {
        println!("store kept at {}", db.display());
    } else {
        std::fs::remove_dir_all(&dir).ok();
    }
    Ok(())
}

struct Report {
    values_per_s: f64,
    rows_per_s: f64,
    lag_p50: u64,
    lag_p99: u64,
    lag_max: u64,
    per_agent_hour: f64,
}
