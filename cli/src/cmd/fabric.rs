//! `servescope fabric probe|matrix|check`: bandwidth and latency between agents over
//! libfabric or UCX, with the evidence of which transport carried the bytes; and the
//! per-node preflight.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use servescope_coordinator::fabric::{self, check, matrix, units, ProbeOutcome};
use servescope_coordinator::store::{RunKind, Store};
use servescope_coordinator::{connect, AgentEndpoint};
use servescope_proto::v1::{
    FabricCheckRequest, GetInventoryRequest, ProbePlanMsg, ProbeSizeResult,
};

use servescope_proto::now_ns;

use super::common::{parse_duration, AgentFlags, DbFlag};

#[derive(clap::Subcommand, Debug)]
pub enum Cmd {
    /// One probe: FROM drives, TO responds
    Probe(ProbeArgs),
    /// Every ordered pair of the given agents; N×N heatmap
    Matrix(MatrixArgs),
    /// Preflight per node: providers, versions, EFA devices, GPU↔NIC affinity,
    /// serving processes' fabric environment
    Check(CheckArgs),
}

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(clap::Args, Debug, Clone)]
pub struct PlanFlags {
    /// libfabric:PROVIDER (libfabric:tcp, libfabric:efa, libfabric:shm) or ucx[:UCX_TLS]
    #[arg(long, default_value = "libfabric:tcp")]
    pub transport: String,
    /// UCX_NET_DEVICES for a ucx probe (e.g. rdmap16s27:1, eth0)
    #[arg(long)]
    pub net_devices: Option<String>,
    /// Message sizes: a list (64K,1M,16M) or a range (4K..64M, powers of 4)
    #[arg(long, default_value = "4K..64M")]
    pub sizes: String,
    /// Operations: tag, rma_write, rma_read (comma-separated)
    #[arg(long, default_value = "tag")]
    pub ops: String,
    /// Buffer memory: host or cuda (GPU 0; cuda:N for GPU N)
    #[arg(long, default_value = "host")]
    pub mem: String,
    /// Messages in flight in the bandwidth phase
    #[arg(long, default_value_t = 16)]
    pub window: u32,
    /// Bandwidth windows per size (each size also stops at --duration-per-size)
    #[arg(long, default_value_t = 50)]
    pub iterations: u32,
    /// Ping-pong round trips per size for latency (0: skip)
    #[arg(long, default_value_t = 200)]
    pub latency_iterations: u32,
    #[arg(long, value_parser = parse_duration, default_value = "2s")]
    pub duration_per_size: Duration,
    /// Limit for the whole probe
    #[arg(long, value_parser = parse_duration, default_value = "120s")]
    pub max_duration: Duration,
    /// How long a side waits for its peer before calling it gone
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    pub peer_timeout: Duration,
}

impl PlanFlags {
    fn plan(&self) -> anyhow::Result<ProbePlanMsg> {
        anyhow::ensure!(self.window >= 1, "--window: must be at least 1");
        anyhow::ensure!(self.iterations >= 1, "--iterations: must be at least 1");
        let sizes = units::parse_sizes(&self.sizes).context("--sizes")?;
        let (memory, cuda_device) = match self.mem.split_once(':') {
            Some(("cuda", n)) => ("cuda".to_string(), n.parse().context("--mem cuda:N")?),
            None if self.mem == "cuda" || self.mem == "host" => (self.mem.clone(), 0),
            _ => anyhow::bail!("--mem: `{}` is not host, cuda or cuda:N", self.mem),
        };
        Ok(ProbePlanMsg {
            sizes,
            ops: self.ops.split(',').map(|s| s.trim().to_string()).collect(),
            window: self.window,
            iterations: self.iterations,
            latency_iterations: self.latency_iterations,
            warmup: 2,
            duration_per_size_ms: self.duration_per_size.as_millis() as u64,
            max_duration_ms: self.max_duration.as_millis() as u64,
            peer_timeout_ms: self.peer_timeout.as_millis() as u64,
            memory,
            cuda_device,
        })
    }

    fn transport(&self) -> anyhow::Result<servescope_proto::v1::ProbeTransport> {
        let mut t = fabric::parse_transport(&self.transport)?;
        if let Some(d) = &self.net_devices {
            t.ucx_net_devices = d.clone();
        }
        Ok(t)
    }
}

#[derive(clap::Args, Debug)]
pub struct ProbeArgs {
    /// Driving agent HOST:PORT
    #[arg(long)]
    pub from: String,
    /// Responding agent HOST:PORT
    #[arg(long)]
    pub to: String,
    /// File holding the agents' bearer token
    #[arg(long, env = "SERVESCOPE_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    #[command(flatten)]
    pub plan: PlanFlags,
    #[command(flatten)]
    pub db: DbFlag,
    /// Do not store the result
    #[arg(long)]
    pub no_store: bool,
}

#[derive(clap::Args, Debug)]
pub struct MatrixArgs {
    #[command(flatten)]
    pub agents: AgentFlags,
    #[command(flatten)]
    pub plan: PlanFlags,
    #[command(flatten)]
    pub db: DbFlag,
    /// Write the heatmap here
    #[arg(short, long, default_value = "fabric-matrix.html")]
    pub output: PathBuf,
}

#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    #[command(flatten)]
    pub agents: AgentFlags,
}

pub async fn run(a: Args) -> anyhow::Result<()> {
    match a.cmd {
        Cmd::Probe(p) => probe_cmd(p).await,
        Cmd::Matrix(m) => matrix_cmd(m).await,
        Cmd::Check(c) => check_cmd(c).await,
    }
}

fn endpoints(
    agents: &[String],
    token_file: &Option<PathBuf>,
) -> anyhow::Result<Vec<AgentEndpoint>> {
    AgentFlags {
        agents: agents.to_vec(),
        token_file: token_file.clone(),
        tls_ca: None,
        tls_domain: None,
    }
    .endpoints()
}

fn print_header() {
    println!(
        "{:>9} {:<10} {:>12} {:>12} {:>11} {:>11} {:>8}",
        "size", "op", "bandwidth", "msg/s", "lat p50", "lat p99", "seconds"
    );
}

fn print_row(r: &ProbeSizeResult) {
    let us = |v: Option<u64>| v.map_or("-".to_string(), |n| format!("{:.1} µs", n as f64 / 1e3));
    println!(
        "{:>9} {:<10} {:>12} {:>12.0} {:>11} {:>11} {:>8.3}",
        units::fmt_size(r.size),
        r.op,
        units::fmt_rate(r.bandwidth_bps),
        r.messages_per_s,
        us(r.latency_p50_ns),
        us(r.latency_p99_ns),
        r.seconds
    );
}

/// Transport truth and counter evidence of both sides.
pub fn print_evidence(o: &ProbeOutcome) {
    for (side, s) in [("driver", &o.driver), ("responder", &o.responder)] {
        let Some(s) = s else { continue };
        let who = if side == "driver" { &o.from } else { &o.to };
        if let Some(t) = &s.truth {
            println!(
                "{side} {who}: {} {} ({}) provider={} fabric={} domain={} lanes=[{}] rma={} memory={}",
                t.library,
                t.version,
                t.path,
                t.provider,
                t.fabric,
                t.domain,
                t.lanes.join(", "),
                t.rma,
                t.memory
            );
        }
        let mut d: Vec<_> = s
            .deltas
            .iter()
            .filter(|d| d.counter.contains("bytes"))
            .collect();
        d.sort_by_key(|x| std::cmp::Reverse(x.delta));
        let parts: Vec<String> = d
            .iter()
            .take(6)
            .map(|d| format!("{}:{}/{} +{}", d.source, d.device, d.counter, d.delta))
            .collect();
        println!(
            "{side} {who}: counters moved: {}",
            if parts.is_empty() {
                "none".into()
            } else {
                parts.join(", ")
            }
        );
    }
}

async fn probe_cmd(a: ProbeArgs) -> anyhow::Result<()> {
    anyhow::ensure!(a.from != a.to, "--from and --to must be different agents");
    let plan = a.plan.plan()?;
    let transport = a.plan.transport()?;
    let eps = endpoints(&[a.from.clone(), a.to.clone()], &a.token_file)?;
    eprintln!(
        "probe {} → {} over {} ({} sizes)",
        a.from,
        a.to,
        fabric::transport_name(&transport),
        plan.sizes.len()
    );
    print_header();
    let out = fabric::probe(&eps[0], &eps[1], &transport, &plan, print_row).await?;
    print_evidence(&out);
    if !a.no_store {
        let mut store = Store::open(&a.db.db)
            .with_context(|| format!("opening the store {}", a.db.db.display()))?;
        let run = store.create_run(RunKind::Fabric, &out.transport, now_ns(), "{}")?;
        store.save_fabric_probe(run, &out)?;
        store.finish_run(
            run,
            now_ns(),
            if out.error.is_some() {
                "failed"
            } else {
                "done"
            },
        )?;
        eprintln!("stored as run {run} in {}", a.db.db.display());
    }
    if let Some(e) = &out.error {
        anyhow::bail!("probe ended early: {e}");
    }
    Ok(())
}

async fn matrix_cmd(a: MatrixArgs) -> anyhow::Result<()> {
    let plan = a.plan.plan()?;
    let transport = a.plan.transport()?;
    let eps = a.agents.endpoints()?;
    anyhow::ensure!(
        eps.len() >= 2,
        "--agent: a matrix needs at least two agents"
    );
    let mut store = Store::open(&a.db.db)
        .with_context(|| format!("opening the store {}", a.db.db.display()))?;
    let run = store.create_run(
        RunKind::FabricMatrix,
        &fabric::transport_name(&transport),
        now_ns(),
        "{}",
    )?;
    let mut outs = Vec::new();
    let n = eps.len() * (eps.len() - 1);
    for (i, from) in eps.iter().enumerate() {
        for (j, to) in eps.iter().enumerate() {
            if i == j {
                continue;
            }
            eprintln!("[{}/{n}] {} → {}", outs.len() + 1, from.address, to.address);
            let o = match fabric::probe(from, to, &transport, &plan, |_| {}).await {
                Ok(o) => o,
                Err(e) => ProbeOutcome {
                    from: from.address.clone(),
                    to: to.address.clone(),
                    transport: fabric::transport_name(&transport),
                    error: Some(e.to_string()),
                    ..Default::default()
                },
            };
            if let Some(e) = &o.error {
                eprintln!("  failed: {e}");
            }
            store.save_fabric_probe(run, &o)?;
            outs.push(o);
        }
    }
    store.finish_run(run, now_ns(), "done")?;
    let names: Vec<String> = eps.iter().map(|e| e.address.clone()).collect();
    let m = matrix::build(&names, &outs);
    print!("{:>22}", "from \\ to");
    for n in &names {
        print!(" {:>14}", n);
    }
    println!();
    for (i, row) in m.cells.iter().enumerate() {
        print!("{:>22}", names[i]);
        for c in row {
            print!(" {:>14}", c.map_or("-".to_string(), units::fmt_rate));
        }
        println!();
    }
    if let Some(med) = m.median {
        println!("median {}", units::fmt_rate(med));
    }
    for (i, j, v, f) in &m.outliers {
        println!(
            "OUTLIER {} → {}: {} ({:.0} % of median)",
            names[*i],
            names[*j],
            units::fmt_rate(*v),
            f * 100.0
        );
    }
    std::fs::write(&a.output, matrix::html(&m, "servescope fabric matrix"))
        .with_context(|| format!("writing {}", a.output.display()))?;
    eprintln!("heatmap: {} (run {run})", a.output.display());
    Ok(())
}

async fn check_cmd(a: CheckArgs) -> anyhow::Result<()> {
    let mut worst = check::Severity::Info;
    for ep in a.agents.endpoints()? {
        let mut c = connect::connect(&ep)
            .await
            .with_context(|| format!("connecting to {}", ep.address))?;
        let inv = c
            .get_inventory(GetInventoryRequest {})
            .await
            .with_context(|| format!("{}: GetInventory", ep.address))?
            .into_inner();
        let fc = c
            .fabric_check(FabricCheckRequest {})
            .await
            .with_context(|| format!("{}: FabricCheck", ep.address))?
            .into_inner();
        println!("== {} ({})", inv.hostname, ep.address);
        for f in check::judge(&inv, &fc) {
            worst = worst.max(f.severity);
            println!("[{}] {}", f.severity, f.title);
            if !f.evidence.is_empty() {
                println!("    evidence: {}", f.evidence);
            }
            if !f.fix.is_empty() {
                println!("    fix: {}", f.fix);
            }
        }
    }
    if worst == check::Severity::Error {
        anyhow::bail!("fabric check found errors");
    }
    Ok(())
}
