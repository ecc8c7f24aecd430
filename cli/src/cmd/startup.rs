//! `servescope startup parse|compare|run|infer`: replica startup phases from vLLM /
//! Ray Serve LLM logs offline (here), live ([`super::startup_run`]) and from NVML
//! telemetry ([`super::startup_sources`]).

use std::path::PathBuf;

use anyhow::Context;
use servescope_coordinator::analysis::startup::compare::{self, Labeled};
use servescope_coordinator::analysis::startup::{self as st, LogParse, ParseOptions};
use servescope_coordinator::report::startup::page;

use super::startup_common::{options, print_parse, TimeFlags};
use super::startup_run::{run_cmd, RunArgs};

pub type Args = super::common::Subcommands<Sub>;

#[derive(clap::Subcommand, Debug)]
pub enum Sub {
    /// Phases of each log: start, end, duration, evidence lines, confidence, total
    Parse(ParseArgs),
    /// Model × configuration tables (phases as columns) and a stacked-bar HTML chart
    Compare(CompareArgs),
    /// Live: (start a command,) wait for /health, send the first request, tail the
    /// engine logs, and draw the waterfall of log, client and (with --agent) NVML phases
    Run(RunArgs),
    /// Waterfall from a recorded run's NVML telemetry (per-process GPU memory, PCIe
    /// RX, utilisation; every GPU side by side) and the startup lines its agents
    /// streamed; with --markers, compared to ground-truth phase markers
    Infer(super::startup_sources::InferArgs),
}

#[derive(clap::Args, Debug)]
pub struct ParseArgs {
    /// Log files
    #[arg(required_unless_present = "from_run")]
    pub logs: Vec<PathBuf>,
    /// Parse the logs the agents streamed during this recorded run (their startup
    /// watchers' `startup_log` events), one timeline per node and file
    #[arg(long, value_name = "RUN")]
    pub from_run: Option<i64>,
    #[command(flatten)]
    pub db: super::common::DbFlag,
    /// Print the parse results (timelines included) as JSON
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub time: TimeFlags,
}

#[derive(clap::Args, Debug)]
pub struct CompareArgs {
    /// Log files, labelled by file name
    pub logs: Vec<PathBuf>,
    /// A labelled log, NAME=LOG; logs sharing a name are trials of one configuration
    #[arg(long = "label", value_name = "NAME=LOG")]
    pub labels: Vec<String>,
    /// Write an HTML page with the stacked-bar chart and the tables
    #[arg(short = 'o', long = "output")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub time: TimeFlags,
}

fn parse_one(path: &std::path::Path, o: &ParseOptions) -> anyhow::Result<LogParse> {
    st::parse_file(path, o.clone()).with_context(|| format!("parsing {}", path.display()))
}

pub fn run(a: Args) -> anyhow::Result<()> {
    match a.command {
        Sub::Parse(p) => parse(p),
        Sub::Infer(i) => super::startup_sources::infer_cmd(i),
        Sub::Compare(c) => compare_cmd(c),
        Sub::Run(r) => {
            tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(run_cmd(r)))
        }
    }
}

fn parse(a: ParseArgs) -> anyhow::Result<()> {
    let mut o = options(&a.time)?;
    let mut all = Vec::new();
    for path in &a.logs {
        all.push(parse_one(path, &o)?);
    }
    if let Some(run) = a.from_run {
        all.extend(from_run(&a, run, &mut o)?);
    }
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&all).context("encoding JSON")?
        );
        return Ok(());
    }
    for (i, r) in all.iter().enumerate() {
        if i > 0 {
            println!();
        }
        print_parse(r, o.utc_offset_s);
    }
    Ok(())
}

/// Parses of the logs the agents streamed during a recorded run; without --year,
/// the year is the run's.
fn from_run(a: &ParseArgs, run: i64, o: &mut ParseOptions) -> anyhow::Result<Vec<LogParse>> {
    use servescope_coordinator::analysis::startup::agent_logs;
    let store = servescope_coordinator::Store::open(&a.db.db)
        .with_context(|| format!("opening the store {}", a.db.db.display()))?;
    let row = store
        .run(run)
        .with_context(|| format!("reading run {run}"))?;
    if a.time.year.is_none() {
        o.year = servescope_proto::ext::year_of_ns(row.started_ns);
    }
    let got =
        agent_logs::parse_run(&store, run, o).with_context(|| format!("reading run {run}"))?;
    if got.is_empty() {
        anyhow::bail!("run {run}: the agents streamed no startup log lines");
    }
    Ok(got.into_iter().map(|g| g.parse).collect())
}

fn label_of(path: &std::path::Path) -> String {
    path.file_stem().map_or_else(
        || path.display().to_string(),
        |s| s.to_string_lossy().into_owned(),
    )
}

fn compare_cmd(a: CompareArgs) -> anyhow::Result<()> {
    let o = options(&a.time)?;
    let mut items = Vec::new();
    for path in &a.logs {
        items.push(Labeled {
            label: label_of(path),
            parse: parse_one(path, &o)?,
        });
    }
    for l in &a.labels {
        let (name, path) = l
            .split_once('=')
            .filter(|(n, p)| !n.is_empty() && !p.is_empty())
            .with_context(|| format!("--label {l:?}: expected NAME=LOG"))?;
        let path = PathBuf::from(path);
        items.push(Labeled {
            label: name.to_string(),
            parse: parse_one(&path, &o)?,
        });
    }
    if items.is_empty() {
        anyhow::bail!("no logs given (LOG… or --label NAME=LOG)");
    }
    let c = compare::compare(&items);
    print!("{}", compare::text_table(&c));
    if let Some(out) = &a.output {
        page::write_html(&c, out)?;
        eprintln!("wrote {}", out.display());
    }
    Ok(())
}
