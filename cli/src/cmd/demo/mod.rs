//! `servescope demo`: the product on one machine in under a minute. An agent on
//! loopback over a p5-like sysfs tree, a loopback fabric probe, the simulated P/D
//! deployment with one seeded fault under a short `pd run` sweep that records the
//! agent, a startup rehearsal followed by the agent's log watcher, then the findings
//! first, the evidence behind them and one report.

mod fabric;
mod stages;
mod summary;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use servescope_coordinator::analysis::pd::Finding;

use super::common::DbFlag;
use super::lab::Lab;
use super::pd_lab::PdOutcome;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub db: DbFlag,
    /// Where the report goes
    #[arg(long, default_value = "servescope-demo-report.html")]
    pub report: PathBuf,
    /// A clean run: no seeded fault, no finding
    #[arg(long)]
    pub no_fault: bool,
    /// The seeded fault: share of KV transfers on a slow path
    #[arg(long, default_value_t = 0.3)]
    pub slow_kv_share: f64,
    /// The seeded fault: how many times slower that path is than the probed fabric
    #[arg(long, default_value_t = 20.0)]
    pub slow_kv_factor: f64,
}

/// What the stages build up, read by the summary.
pub struct State {
    pub args: Args,
    pub lab: Option<Lab>,
    /// The loopback probe, where a transport worked.
    pub probe: Option<fabric::Probed>,
    /// Why each transport failed, when none worked.
    pub probe_notes: Vec<String>,
    pub pd: Option<PdOutcome>,
    pub startup: Option<stages::Startup>,
    pub findings: Vec<Finding>,
    /// Stage name and how long it took.
    pub timings: Vec<(&'static str, Duration)>,
}

type StageFn = for<'a> fn(
    &'a mut State,
) -> std::pin::Pin<
    Box<dyn std::future::Future<Output = anyhow::Result<()>> + 'a>,
>;

/// The stages, in order.
const STAGES: &[(&str, StageFn)] = &[
    ("agent over a p5-like sysfs tree", stages::agent),
    ("loopback fabric probe", stages::fabric_probe),
    (
        "P/D sweep through the simulated deployment",
        stages::pd_sweep,
    ),
    ("startup rehearsal", stages::startup),
    ("findings and report", stages::findings_and_report),
];

pub async fn run(a: Args) -> anyhow::Result<()> {
    if !(a.slow_kv_share > 0.0 && a.slow_kv_share <= 1.0) {
        anyhow::bail!("--slow-kv-share must be in (0, 1]");
    }
    if !(a.slow_kv_factor.is_finite() && a.slow_kv_factor > 1.0) {
        anyhow::bail!("--slow-kv-factor must be above 1");
    }
    let mut s = State {
        args: a,
        lab: None,
        probe: None,
        probe_notes: Vec::new(),
        pd: None,
        startup: None,
        findings: Vec::new(),
        timings: Vec::new(),
    };
    let started = Instant::now();
    let mut result = Ok(());
    for (i, (name, stage)) in STAGES.iter().enumerate() {
        eprintln!("servescope demo [{}/{}] {name}", i + 1, STAGES.len());
        let t = Instant::now();
        result = stage(&mut s).await;
        s.timings.push((name, t.elapsed()));
        if result.is_err() {
            break;
        }
    }
    if let Some(lab) = s.lab.take() {
        lab.shutdown().await;
    }
    result?;
    summary::print(&s, started.elapsed());
    Ok(())
}
