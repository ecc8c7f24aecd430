//! `servescope report RUN… --out report.html`: one self-contained HTML file for
//! whatever the runs hold: findings first, load results, the TTFT decomposition,
//! requests and node telemetry on one time axis, fabric probes, startup waterfalls.

use std::path::PathBuf;

use anyhow::Context;
use servescope_coordinator::report;

use super::common::DbFlag;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Run ids of any kind (load runs: one series per run; linked telemetry and
    /// fabric runs are read too)
    #[arg(required = true, num_args = 1..)]
    pub runs: Vec<i64>,
    /// HTML file to write
    #[arg(long, short = 'o')]
    pub out: PathBuf,
    #[command(flatten)]
    pub db: DbFlag,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    report::write_report(a.db.existing()?, &a.runs, &a.out)
        .with_context(|| format!("report for run(s) {:?}", a.runs))?;
    println!("wrote {}", a.out.display());
    Ok(())
}
