//! `servescope exp run FILE`, `exp status [NAME]`, `exp report NAME`: experiments as
//! code (see the coordinator's `exp` module for the file's schema).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context;
use servescope_coordinator::analysis::exp::analyze;
use servescope_coordinator::analysis::exp::ExpError;
use servescope_coordinator::analysis::pd::analyze::{attribute, AttributeOptions};
use servescope_coordinator::orchestration::exp::runner::{run_experiment, ExpRunConfig};
use servescope_coordinator::orchestration::exp::shards::Client;
use servescope_coordinator::report::exp as report;
use servescope_coordinator::Store;

use super::common::{AgentFlags, DbFlag};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub cmd: ExpCmd,
}

#[derive(clap::Subcommand, Debug)]
pub enum ExpCmd {
    /// Run the points of an experiment file that the store does not hold yet
    Run(RunArgs),
    /// Experiments in the store, or one experiment's points
    Status(StatusArgs),
    /// HTML report of an experiment (charts, scaling, matrix, failures, findings)
    Report(ReportArgs),
}

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// The experiment file (YAML)
    pub file: PathBuf,
    #[command(flatten)]
    pub db: DbFlag,
    /// File holding the agents' bearer token (overrides the file's client.token_file)
    #[arg(long, env = "SERVESCOPE_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// Also write the report here when done
    #[arg(long)]
    pub report: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    /// An experiment's name (all experiments when absent)
    pub name: Option<String>,
    #[command(flatten)]
    pub db: DbFlag,
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    pub name: String,
    #[command(flatten)]
    pub db: DbFlag,
    #[arg(long, short = 'o', default_value = "experiment.html")]
    pub out: PathBuf,
}

pub async fn run(a: Args) -> anyhow::Result<()> {
    match a.cmd {
        ExpCmd::Run(r) => run_cmd(r).await,
        ExpCmd::Status(s) => status(s),
        ExpCmd::Report(r) => report_cmd(r),
    }
}

async fn run_cmd(a: RunArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&a.file)
        .with_context(|| format!("reading {}", a.file.display()))?;
    let f = servescope_coordinator::orchestration::exp::parse(&text)
        .with_context(|| a.file.display().to_string())?;
    let client = if f.client.agents.is_empty() {
        Client::Local
    } else {
        let token_file = a
            .token_file
            .clone()
            .or_else(|| f.client.token_file.as_ref().map(PathBuf::from));
        Client::Agents(
            AgentFlags {
                agents: f.client.agents.clone(),
                token_file,
                tls_ca: None,
                tls_domain: None,
                tls_client_cert: None,
                tls_client_key: None,
            }
            .endpoints()?,
        )
    };
    let agents = if f.agents.is_empty() {
        Vec::new()
    } else {
        let token_file = a
            .token_file
            .clone()
            .or_else(|| f.client.token_file.as_ref().map(PathBuf::from));
        AgentFlags {
            agents: f.agents.clone(),
            token_file,
            tls_ca: None,
            tls_domain: None,
            tls_client_cert: None,
            tls_client_key: None,
        }
        .endpoints()?
    };
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = Arc::clone(&stop);
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("interrupt: stopping (the current point is not stored); Ctrl-C again quits at once");
                stop.store(true, Ordering::Relaxed);
                if tokio::signal::ctrl_c().await.is_ok() {
                    std::process::exit(130);
                }
            }
        });
    }
    let out = run_experiment(ExpRunConfig {
        file_path: a.file.clone(),
        db: a.db.db.clone(),
        client,
        agents,
        stop,
        progress: Box::new(|l| eprintln!("{l}")),
    })
    .await;
    match out {
        Ok(o) => {
            println!(
                "experiment {:?}: {} point(s) run, {} already stored, {} failed",
                f.name, o.ran, o.skipped, o.failed
            );
        }
        Err(e @ ExpError::Interrupted { .. }) => {
            eprintln!("{e}");
            std::process::exit(130);
        }
        Err(e) => return Err(e.into()),
    }
    if let Some(p) = &a.report {
        write_report(&a.db.db, &f.name, p)?;
    }
    Ok(())
}

fn status(a: StatusArgs) -> anyhow::Result<()> {
    let store = a.db.open_existing()?;
    let Some(name) = a.name else {
        let all = store.experiments()?;
        if a.json {
            println!("{}", serde_json::to_string_pretty(&all)?);
            return Ok(());
        }
        println!(
            "{:<24} {:<20} {:>7} {:>7}",
            "experiment", "status", "points", "failed"
        );
        for e in all {
            println!(
                "{:<24} {:<20} {:>7} {:>7}",
                e.name, e.status, e.points, e.failed
            );
        }
        return Ok(());
    };
    let an = analyze(&store, &name)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&an)?);
        return Ok(());
    }
    let planned = store
        .experiment(&name)?
        .and_then(|e| servescope_coordinator::orchestration::exp::parse(&e.file).ok())
        .map(|f| servescope_coordinator::orchestration::exp::plan::expand(&f).len());
    println!(
        "experiment {:?}: {}; {} of {} point(s) stored",
        an.name,
        an.status,
        an.points.len(),
        planned.map_or("?".into(), |n| n.to_string())
    );
    println!(
        "{:<40} {:<8} {:>8} {:>7} {:>9} {:>10} {:>9}",
        "point", "status", "requests", "failed", "req/s", "TTFT p50", "TPOT p50"
    );
    for p in &an.points {
        let g = &p.aggregate;
        println!(
            "{:<40} {:<8} {:>8} {:>7} {:>9.2} {:>10.1} {:>9.2}",
            p.key,
            p.status,
            g.num_requests,
            g.failed,
            g.request_throughput,
            g.ttft_ms.median,
            g.tpot_ms.median
        );
    }
    if !an.scaling.is_empty() {
        println!("\nscaling (efficiency = T(N) / (N × T(1)))");
        for r in &an.scaling {
            println!("  {:<28} {:<10} replicas {:>2}: {:>8.2} req/s, {:>7.2} per replica, efficiency {}{}", r.group, r.deployment, r.replicas, r.request_throughput, r.per_replica_rps,
                r.efficiency.map_or("–".into(), |e| format!("{:.1} %", e * 100.0)), if r.client_bound { "  (client-bound)" } else { "" });
        }
    }
    for w in &an.warnings {
        println!("warning: {w}");
    }
    Ok(())
}

fn write_report(db: &std::path::Path, name: &str, out: &std::path::Path) -> anyhow::Result<()> {
    let store = Store::open(db)?;
    let an = analyze(&store, name)?;
    let mut findings = Vec::new();
    let wants_pd = store
        .experiment(name)?
        .and_then(|e| servescope_coordinator::orchestration::exp::parse(&e.file).ok())
        .is_some_and(|f| {
            f.analyses
                .contains(&servescope_coordinator::orchestration::exp::file::Analysis::Pd)
        });
    if wants_pd {
        for p in &an.points {
            if let Ok(at) = attribute(&store, p.run_id, &AttributeOptions::default()) {
                findings.extend(at.findings.into_iter().map(|f| (p.key.clone(), f)));
            }
        }
    }
    std::fs::write(out, report::render(&an, &findings))
        .with_context(|| format!("writing {}", out.display()))?;
    eprintln!("report written to {}", out.display());
    Ok(())
}

fn report_cmd(a: ReportArgs) -> anyhow::Result<()> {
    write_report(a.db.existing()?, &a.name, &a.out)
}
