//! `servescope`: the command people type. Thin: parses flags, calls the
//! coordinator library, prints.

mod cmd;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "servescope",
    version,
    about = "Where does LLM-serving latency go? GPU, host and RDMA telemetry on one clock."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Inventory of agents: GPUs, RDMA devices, topology, library availability, clock offset
    Nodes(cmd::nodes::Args),
    /// Live view: per GPU utilization/memory/power/PCIe rate, per RDMA device tx/rx rate
    Watch(cmd::watch::Args),
    /// Record telemetry from agents into the store for a duration; prints the run id
    Record(cmd::record::Args),
    /// Load an OpenAI-compatible endpoint: closed/open loop, sweeps, trials; stores every request
    Load(cmd::load::Args),
    /// Show a stored run: load points, or a recording's summary
    Show(cmd::show::Args),
    /// Load runs side by side with deltas against the first
    Compare(cmd::compare::Args),
    /// Read `vllm bench serve` result JSON: failures, averaged aggregates, pooled vs averaged parts
    Import(cmd::import::Args),
    /// One HTML report of any runs: findings, load, TTFT decomposition, telemetry, fabric, startup
    Report(cmd::report::Args),
    /// List recorded runs
    Runs(cmd::runs::Args),
    /// Dump a run's samples as CSV or JSON lines
    Export(cmd::export::Args),
    /// Run the simulated OpenAI-compatible / vLLM endpoint (latency model, faults, vLLM /metrics)
    Sim(cmd::sim::Args),
    /// The product on loopback: agent over a p5-like sysfs tree, fabric probe, P/D simulator
    /// with a seeded fault under a pd run, startup rehearsal; findings first, one report
    Demo(cmd::demo::Args),
    /// The seeded-fault matrix: every fault injected on loopback must be named, the clean runs silent
    Selftest(cmd::selftest::Args),
    /// Replica startup phases from vLLM / Ray Serve LLM logs: parse, compare
    Startup(cmd::startup::Args),
    /// OTLP/gRPC trace receiver for vLLM: startup phases and llm_request spans
    Otlp(cmd::otlp::Args),
    /// Fabric probes between agents (libfabric, UCX) and preflight checks
    Fabric(Box<cmd::fabric::Args>),
    /// Prefill–decode experiments: a sweep through the proxy with engine scrapes and spans
    Pd(cmd::pd::Args),
    /// Per-request and per-point TTFT decomposition of a stored run, KV analysis, findings
    Attribute(cmd::pd::AttributeArgs),
    /// Named findings (evidence, fix) for a stored run of any kind: record, load, pd, exp, startup
    Diagnose(cmd::pd::AttributeArgs),
    /// Experiments as code: run an experiment file (resumable), its status, its report
    Exp(cmd::exp::Args),
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let r = rt.block_on(async move {
        match cli.command {
            Command::Nodes(a) => cmd::nodes::run(a).await,
            Command::Watch(a) => cmd::watch::run(a).await,
            Command::Record(a) => cmd::record::run(a).await,
            Command::Runs(a) => cmd::runs::run(a),
            Command::Import(a) => cmd::import::run(a),
            Command::Load(a) => cmd::load::run(a).await,
            Command::Show(a) => cmd::show::run(a),
            Command::Compare(a) => cmd::compare::run(a),
            Command::Report(a) => cmd::report::run(a),
            Command::Export(a) => cmd::export::run(a),
            Command::Demo(a) => cmd::demo::run(a).await,
            Command::Selftest(a) => cmd::selftest::run(a).await,
            Command::Sim(a) => cmd::sim::run(a).await,
            Command::Startup(a) => cmd::startup::run(a),
            Command::Otlp(a) => cmd::otlp::run(a).await,
            Command::Fabric(a) => cmd::fabric::run(*a).await,
            Command::Pd(a) => cmd::pd::run(a).await,
            Command::Attribute(a) => cmd::pd::attribute_cmd(a),
            Command::Diagnose(a) => cmd::pd::diagnose_cmd(a),
            Command::Exp(a) => cmd::exp::run(a).await,
        }
    });
    // The error and its causes on one line each, never a backtrace: this is the
    // user's output, not a crash report.
    if let Err(e) = r {
        eprintln!("Error: {e:#}");
        std::process::exit(1);
    }
    Ok(())
}
