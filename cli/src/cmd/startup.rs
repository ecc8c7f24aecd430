//! `servescope startup parse|compare`: replica startup phases from vLLM / Ray Serve
//! LLM logs, offline.

use std::path::PathBuf;

use anyhow::Context;
use servescope_coordinator::startup::compare::{self, Labeled};
use servescope_coordinator::startup::run::{self as live, RunOptions, Trial};
use servescope_coordinator::startup::{self as st, LogParse, ParseOptions, Phase, PhaseKind};
use servescope_coordinator::text::utc;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub command: Sub,
}

#[derive(clap::Subcommand, Debug)]
pub enum Sub {
    /// Phases of each log: start, end, duration, evidence lines, confidence, total
    Parse(ParseArgs),
    /// Model × configuration tables (phases as columns) and a stacked-bar HTML chart
    Compare(CompareArgs),
    /// Live: (start a command,) wait for /health, send the first request, tail the
    /// engine logs, and draw the waterfall of log and client phases
    Run(RunArgs),
    /// Phases inferred from a recorded run's NVML telemetry (per-process GPU memory,
    /// PCIe RX, utilisation); with --markers, compared to ground-truth phase markers
    Infer(super::startup_sources::InferArgs),
}

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// Endpoint base URL, e.g. http://127.0.0.1:8000
    #[arg(long)]
    pub endpoint: String,
    /// Model name for the first request
    #[arg(long)]
    pub model: String,
    /// Engine log to tail during the window (repeatable); appended lines are read
    #[arg(long = "log", value_name = "PATH")]
    pub logs: Vec<PathBuf>,
    /// Read the --log files from their start (default: only lines appended during the run)
    #[arg(long)]
    pub log_from_start: bool,
    /// Trials (restarts of --start-cmd); mean and min–max per phase
    #[arg(long, default_value_t = 1)]
    pub trials: usize,
    /// From the start of a trial to the first answer, e.g. 20m
    #[arg(long, default_value = "20m", value_parser = super::common::parse_duration)]
    pub timeout: std::time::Duration,
    /// Command (sh -c) started at the beginning of each trial and stopped at its end
    #[arg(long)]
    pub start_cmd: Option<String>,
    /// Output tokens of the first request
    #[arg(long, default_value_t = 16)]
    pub max_tokens: u32,
    /// Gaps shorter than this are timestamp rounding, not unattributed time (s)
    #[arg(long, default_value_t = 1.0)]
    pub min_gap: f64,
    /// Configuration label in the tables and the chart
    #[arg(long, default_value = "live")]
    pub label: String,
    /// Also record the run (trials as JSON) in this store
    #[arg(long)]
    pub db: Option<PathBuf>,
    /// Write an HTML page: stacked bar(s) and each trial's waterfall
    #[arg(short = 'o', long = "output")]
    pub output: Option<PathBuf>,
    /// Print the trials (timelines, parses, client times) as JSON instead of tables
    #[arg(long)]
    pub json: bool,
    /// Agents on the serving nodes: after the trials their ring buffers (the last
    /// `--buffer-horizon-s`, 10 min by default) are recorded, the startup log lines
    /// they streamed are parsed and NVML-inferred phases are cross-checked
    #[arg(long = "agent")]
    pub agents: Vec<String>,
    /// File holding the agents' bearer token
    #[arg(long, env = "SERVESCOPE_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    #[command(flatten)]
    pub time: TimeFlags,
}

#[derive(clap::Args, Debug)]
pub struct TimeFlags {
    /// Year of the logs' `MM-DD HH:MM:SS` timestamps (default: this year)
    #[arg(long)]
    pub year: Option<i32>,
    /// Offset of the logs' clock from UTC, e.g. -07:00 (default: UTC)
    #[arg(long, default_value = "+00:00", allow_hyphen_values = true)]
    pub utc_offset: String,
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

fn this_year() -> i32 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    // Civil year of `secs` (UTC).
    let days = secs / 86_400;
    let mut y = 1970;
    let mut d = days;
    loop {
        let len = if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 {
            366
        } else {
            365
        };
        if d < len {
            return y;
        }
        d -= len;
        y += 1;
    }
}

pub(super) fn options(t: &TimeFlags) -> anyhow::Result<ParseOptions> {
    let mut o = ParseOptions::new(t.year.unwrap_or_else(this_year));
    o.utc_offset_s = st::parse_utc_offset(&t.utc_offset)?;
    Ok(o)
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

pub(super) fn secs(v: Option<f64>) -> String {
    v.map_or("–".into(), |s| format!("{s:.2}"))
}

fn time(ns: Option<i64>, offset_s: i32) -> String {
    // Shown on the log's own clock, like the log lines.
    ns.map_or("–".into(), |t| {
        utc(t.saturating_add(i64::from(offset_s) * 1_000_000_000))
            .get(11..)
            .unwrap_or_default()
            .to_string()
    })
}

fn lines(p: &Phase) -> String {
    let v: Vec<String> = p.lines.iter().take(3).map(|l| l.to_string()).collect();
    if v.is_empty() {
        "–".into()
    } else {
        v.join(",")
    }
}

pub(super) fn print_parse(r: &LogParse, offset_s: i32) {
    println!("== {}", r.name);
    println!(
        "table {} ({}); model {}; {} lines, {} recognised, {} echoes dropped",
        r.table,
        r.table_reason,
        r.model.as_deref().unwrap_or("?"),
        r.lines,
        r.recognised_lines,
        r.duplicates_dropped
    );
    for w in &r.warnings {
        println!("warning: {w}");
    }
    println!(
        "{:<24} {:>8} {:>8} {:>9}  {:>4}  {:<12} {:<6} range / note",
        "phase", "start", "end", "seconds", "conf", "lines", "rank"
    );
    for p in &r.timeline.phases {
        let indent = if p.kind.parent().is_some() { "  " } else { "" };
        let note = match (p.attrs.get("min_s"), p.attrs.get("max_s")) {
            (Some(a), Some(b)) => format!(
                "{a}–{b} s over {} processes",
                p.attrs.get("processes").map_or("?", String::as_str)
            ),
            _ => p
                .attrs
                .get("boundaries")
                .or(p.attrs.get("evidence"))
                .cloned()
                .unwrap_or_default(),
        };
        println!(
            "{:<24} {:>8} {:>8} {:>9}  {:>4.2}  {:<12} {:<6} {}",
            format!("{indent}{}", p.kind.label()),
            time(p.start_ns, offset_s),
            time(p.end_ns, offset_s),
            if p.kind.is_milestone() {
                "".into()
            } else {
                secs(p.seconds())
            },
            p.confidence,
            lines(p),
            p.rank.as_deref().unwrap_or("–"),
            note
        );
    }
    let t = &r.timeline;
    println!(
        "total: first line → API ready {} s, → first request {} s, first → last phase {} s",
        secs(t.until(PhaseKind::ApiReady)),
        secs(t.until(PhaseKind::FirstRequest)),
        secs(t.total_s())
    );
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
    use servescope_coordinator::startup::agent_logs;
    let store = servescope_coordinator::Store::open(&a.db.db)
        .with_context(|| format!("opening the store {}", a.db.db.display()))?;
    let row = store
        .run(run)
        .with_context(|| format!("reading run {run}"))?;
    if a.time.year.is_none() {
        o.year = agent_logs::year_of_ns(row.started_ns);
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
        compare::write_html(&c, out)?;
        eprintln!("wrote {}", out.display());
    }
    Ok(())
}

async fn run_cmd(a: RunArgs) -> anyhow::Result<()> {
    if a.trials == 0 {
        anyhow::bail!("--trials must be at least 1");
    }
    if a.trials > 1 && a.start_cmd.is_none() {
        anyhow::bail!(
            "--trials {} needs --start-cmd: the endpoint must be restarted for each trial",
            a.trials
        );
    }
    if !(a.min_gap.is_finite() && a.min_gap >= 0.0) {
        anyhow::bail!("--min-gap must be ≥ 0");
    }
    let mut parse = options(&a.time)?;
    parse.min_gap_s = a.min_gap;
    let mut o = RunOptions::new(&a.endpoint, &a.model, parse);
    o.logs = a.logs.clone();
    o.logs_from_start = a.log_from_start;
    o.start_cmd = a.start_cmd.clone();
    o.timeout = a.timeout;
    o.max_tokens = a.max_tokens;
    let mut trials: Vec<Trial> = Vec::new();
    for i in 0..a.trials {
        if a.trials > 1 {
            eprintln!("trial {}/{}", i + 1, a.trials);
        }
        let tr = live::run_trial(&o, i, &mut |m| eprintln!("{m}")).await;
        if let Some(e) = &tr.error {
            eprintln!("trial {}: {e}", i + 1);
        }
        trials.push(tr);
    }
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&trials).context("encoding JSON")?
        );
    } else {
        for tr in &trials {
            println!(
                "== trial {} of {} at {}",
                tr.index + 1,
                a.trials,
                a.endpoint
            );
            for l in &tr.logs {
                println!(
                    "log {}: table {}, {} lines, {} recognised",
                    l.name, l.table, l.lines, l.recognised_lines
                );
            }
            if let Some(e) = &tr.error {
                println!("error: {e}");
            }
            print!("{}", live::waterfall_text(tr));
        }
        if trials.len() > 1 {
            let c = compare::compare(&live::labeled(&trials, &a.label, &a.model));
            print!("{}", compare::text_table(&c));
        }
    }
    if !a.agents.is_empty() {
        super::startup_sources::agent_sources(&a).await?;
    }
    if let Some(out) = &a.output {
        std::fs::write(out, live::render_html(&trials, &a.label, &a.model))
            .with_context(|| format!("writing {}", out.display()))?;
        eprintln!("wrote {}", out.display());
    }
    if let Some(db) = &a.db {
        let store = servescope_coordinator::store::Store::open(db)
            .with_context(|| format!("opening {}", db.display()))?;
        let started = trials.first().map_or(0, |t| t.client.start_ns);
        let args = serde_json::json!({"endpoint": a.endpoint, "model": a.model, "trials": trials});
        let run = store.create_run("startup", &a.label, started, &args.to_string())?;
        let ok = trials.iter().all(|t| t.error.is_none());
        let end = servescope_proto::now_ns();
        store.finish_run(run, end, if ok { "done" } else { "failed" })?;
        eprintln!("recorded as run {run} in {}", db.display());
    }
    let failed: Vec<String> = trials
        .iter()
        .filter_map(|t| {
            t.error
                .as_ref()
                .map(|e| format!("trial {}: {e}", t.index + 1))
        })
        .collect();
    if !failed.is_empty() {
        anyhow::bail!("{}", failed.join("; "));
    }
    Ok(())
}
