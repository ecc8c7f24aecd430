//! `servescope report RUN… --out report.html`: one self-contained HTML file with SVG
//! charts (throughput, TTFT/TPOT vs load, throughput vs latency, latency CDFs) and
//! the summary and failure tables of the given load runs.

use std::path::PathBuf;

use anyhow::Context;
use servescope_coordinator::report;

use super::common::DbFlag;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Load run ids (one series per run)
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
