//! `servescope fabric probe|matrix|check`: bandwidth and latency between agents over
//! libfabric or UCX, with the evidence of which transport carried the bytes; and the
//! per-node preflight.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use servescope_coordinator::analysis::fabric::{check, matrix, units};
use servescope_coordinator::orchestration::fabric;
use servescope_coordinator::report;
use servescope_coordinator::store::ProbeOutcome;
use servescope_coordinator::store::{RunKind, Store};
use servescope_coordinator::{orchestration::connect, AgentEndpoint};
use servescope_proto::v1::{
    FabricCheckRequest, GetInventoryRequest, ProbePlanMsg, ProbeSizeResult,
};

use servescope_proto::now_ns;

use super::common::{parse_duration, AgentFlags, DbFlag};
use super::fabric_nixl::{self, NixlFlags};

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
    /// libfabric:PROVIDER (libfabric:tcp, libfabric:efa, libfabric:shm), ucx[:UCX_TLS]
    /// or nixl[:UCX|:LIBFABRIC] (NIXL itself, with the engine's Python)
    #[arg(long, default_value = "libfabric:tcp")]
    pub transport: String,
    /// UCX_NET_DEVICES for a ucx probe (e.g. rdmap16s27:1, eth0)
    #[arg(long)]
    pub net_devices: Option<String>,
    /// UCX to load for a ucx probe: a libucp file on the agents' nodes
    #[arg(long, conflicts_with_all = ["engine_venv", "like_pid"])]
    pub ucx_lib: Option<String>,
    /// libfabric to load for a libfabric probe: a file on the agents' nodes
    #[arg(long, conflicts_with = "like_pid")]
    pub fabric_lib: Option<String>,
    /// Python environment on the agents' nodes: use its NIXL wheel's bundled UCX
    #[arg(long, conflicts_with = "like_pid")]
    pub engine_venv: Option<String>,
    /// Process on the agents' nodes: use the UCX / libfabric it has mapped
    #[arg(long)]
    pub like_pid: Option<u32>,
    /// Message sizes: a list (64K,1M,16M) or a range (4K..64M, powers of 4)
    #[arg(long, default_value = "4K..64M")]
    pub sizes: String,
    /// Operations: tag, rma_write, rma_read (comma-separated; nixl: rma_write,rma_read)
    #[arg(long)]
    pub ops: Option<String>,
    /// Buffer memory of both sides: host or cuda (GPU 0; cuda:N for GPU N)
    #[arg(long, default_value = "host")]
    pub mem: String,
    /// The driving side's memory, instead of --mem (e.g. cuda:0)
    #[arg(long)]
    pub mem_driver: Option<String>,
    /// The responding side's memory, instead of --mem (e.g. host: GPU → host)
    #[arg(long)]
    pub mem_responder: Option<String>,
    /// Check the received contents after each size (the default for GPU memory)
    #[arg(long, conflicts_with = "no_verify")]
    pub verify: bool,
    /// Skip the contents check (on by default when either side uses GPU memory)
    #[arg(long)]
    pub no_verify: bool,
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
    #[command(flatten)]
    pub nixl: NixlFlags,
}

impl PlanFlags {
    fn plan(&self) -> anyhow::Result<ProbePlanMsg> {
        anyhow::ensure!(self.window >= 1, "--window: must be at least 1");
        anyhow::ensure!(self.iterations >= 1, "--iterations: must be at least 1");
        let sizes = units::parse_sizes(&self.sizes).context("--sizes")?;
        let side = |flag: &str, v: &Option<String>| match v {
            Some(m) => parse_mem(flag, m),
            None => parse_mem("--mem", &self.mem),
        };
        let (memory, cuda_device) = side("--mem-driver", &self.mem_driver)?;
        let responder = side("--mem-responder", &self.mem_responder)?;
        // The same memory on both sides travels as an old plan did (no responder field).
        let (responder_memory, responder_cuda_device) =
            if responder == (memory.clone(), cuda_device) {
                (String::new(), 0)
            } else {
                responder
            };
        // Unset: the agents verify GPU memory and leave host memory unchecked.
        let verify = match (self.verify, self.no_verify) {
            (true, _) => Some(true),
            (_, true) => Some(false),
            _ => None,
        };
        let ops = self.ops.as_deref().unwrap_or("tag");
        let mut plan = ProbePlanMsg {
            sizes,
            ops: ops.split(',').map(|s| s.trim().to_string()).collect(),
            window: self.window,
            iterations: self.iterations,
            latency_iterations: self.latency_iterations,
            warmup: 2,
            duration_per_size_ms: self.duration_per_size.as_millis() as u64,
            max_duration_ms: self.max_duration.as_millis() as u64,
            peer_timeout_ms: self.peer_timeout.as_millis() as u64,
            memory,
            cuda_device,
            responder_memory,
            responder_cuda_device,
            verify,
        };
        if fabric::parse_transport(&self.transport)?.library == "nixl" {
            self.nixl.shape_plan(self.ops.is_some(), &mut plan)?;
        }
        Ok(plan)
    }

    fn transport(&self) -> anyhow::Result<servescope_proto::v1::ProbeTransport> {
        let mut t = fabric::parse_transport(&self.transport)?;
        if let Some(d) = &self.net_devices {
            t.ucx_net_devices = d.clone();
        }
        t.ucx_lib = self.ucx_lib.clone().unwrap_or_default();
        t.fabric_lib = self.fabric_lib.clone().unwrap_or_default();
        t.engine_venv = self.engine_venv.clone().unwrap_or_default();
        t.like_pid = self.like_pid.unwrap_or_default();
        self.nixl.apply_transport(&mut t)?;
        Ok(t)
    }
}

/// `host`, `cuda` or `cuda:N` → (memory, GPU index) as the plan message holds them.
fn parse_mem(flag: &str, v: &str) -> anyhow::Result<(String, u32)> {
    match v.split_once(':') {
        Some(("cuda", n)) => Ok((
            "cuda".to_string(),
            n.parse().with_context(|| format!("{flag} cuda:N"))?,
        )),
        None if v == "cuda" || v == "host" => Ok((v.to_string(), 0)),
        _ => anyhow::bail!("{flag}: `{v}` is not host, cuda or cuda:N"),
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
    /// Also read NIXL's own telemetry buffers of the serving processes
    /// (NIXL_TELEMETRY_ENABLE with NIXL_TELEMETRY_DIR): per NIXL agent, errors by
    /// status, transfer/post times, bytes and requests. Reading CONSUMES the
    /// buffered events: NIXL's buffer is a queue, so the engine's own telemetry
    /// readers will not see what this read.
    #[arg(long)]
    pub read_nixl_telemetry: bool,
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
        tls_client_cert: None,
        tls_client_key: None,
    }
    .endpoints()
}

fn print_header() {
    println!(
        "{:>9} {:<10} {:>12} {:>12} {:>11} {:>11} {:>8}  contents",
        "size", "op", "bandwidth", "msg/s", "lat p50", "lat p99", "seconds"
    );
}

fn print_row(r: &ProbeSizeResult) {
    let us = |v: Option<u64>| v.map_or("-".to_string(), |n| format!("{:.1} µs", n as f64 / 1e3));
    let contents = if r.verified {
        "verified".to_string()
    } else if !r.unverified.is_empty() {
        format!("unverified: {}", r.unverified)
    } else {
        "-".to_string()
    };
    println!(
        "{:>9} {:<10} {:>12} {:>12.0} {:>11} {:>11} {:>8.3}  {contents}",
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
            if !t.nixl_version.is_empty() {
                println!("{side} {who}: NIXL {}", t.nixl_version);
                for n in &t.notes {
                    println!("{side} {who}:   {n}");
                }
            }
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
            for p in &t.protocols {
                println!("{side} {who}: protocol: {p}");
            }
            for f in &t.findings {
                println!("{side} {who}: FINDING {}: fix: {}", f.name, f.fix);
                for e in &f.evidence {
                    println!("{side} {who}:   evidence: {e}");
                }
            }
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
    let nixl = transport.library == "nixl";
    if nixl {
        fabric_nixl::print_header();
    } else {
        print_header();
    }
    let row = |r: &ProbeSizeResult| {
        if nixl {
            fabric_nixl::print_row(r)
        } else {
            print_row(r)
        }
    };
    let out = fabric::probe(&eps[0], &eps[1], &transport, &plan, row).await?;
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
    std::fs::write(
        &a.output,
        report::matrix::html(&m, "servescope fabric matrix"),
    )
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
            .fabric_check(FabricCheckRequest {
                read_nixl_telemetry: a.read_nixl_telemetry,
            })
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
