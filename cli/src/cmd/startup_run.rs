//! `servescope startup run`: the live experiment's flags, trials and output.

use std::path::PathBuf;

use anyhow::Context;
use servescope_coordinator::analysis::startup::compare;
use servescope_coordinator::analysis::startup::gpus::side_by_side_text;
use servescope_coordinator::orchestration::startup_run::{self as live, RunOptions, Trial};

use super::startup_common::{options, TimeFlags};
use super::startup_sources::{agent_sources, AgentSources};

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

pub(super) async fn run_cmd(a: RunArgs) -> anyhow::Result<()> {
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
    let mut o = RunOptions::new(&a.endpoint, &a.model, parse.clone());
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
    // The agents' buffers: NVML phases fill in what the logs have no line for.
    let recorded = if a.agents.is_empty() {
        None
    } else {
        Some(
            agent_sources(AgentSources {
                agents: &a.agents,
                token_file: a.token_file.clone(),
                db: a.db.as_deref(),
                label: &a.label,
                parse: parse.clone(),
            })
            .await?,
        )
    };
    let mut gpus = Vec::new();
    if let Some(r) = &recorded {
        for tr in &mut trials {
            let g = r.gpus(tr)?;
            if let Some(n) = servescope_coordinator::analysis::startup::gpus::waterfall_source(&g) {
                tr.timeline = live::merge_with(&tr.logs, Some(&n), &tr.client, a.min_gap);
            }
            gpus.push(g);
        }
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
            if let Some(g) = gpus.get(tr.index).filter(|g| !g.is_empty()) {
                print!("{}", side_by_side_text(g));
            }
            print!("{}", live::waterfall_text(tr));
        }
        if trials.len() > 1 {
            let c = compare::compare(&live::labeled(&trials, &a.label, &a.model));
            print!("{}", compare::text_table(&c));
        }
    }
    if let Some(r) = &recorded {
        r.print(gpus.last().map_or(&[], Vec::as_slice), parse.utc_offset_s);
    }
    if let Some(out) = &a.output {
        let g = gpus.last().map_or(&[][..], Vec::as_slice);
        std::fs::write(out, live::render_html_with(&trials, &a.label, &a.model, g))
            .with_context(|| format!("writing {}", out.display()))?;
        eprintln!("wrote {}", out.display());
    }
    if let Some(db) = &a.db {
        let run = store_trials(db, &a.label, &a.endpoint, &a.model, &trials)?;
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

/// Stores the trials as a startup run; returns its id.
pub(super) fn store_trials(
    db: &std::path::Path,
    label: &str,
    endpoint: &str,
    model: &str,
    trials: &[Trial],
) -> anyhow::Result<i64> {
    let store = servescope_coordinator::store::Store::open(db)
        .with_context(|| format!("opening {}", db.display()))?;
    let started = trials.first().map_or(0, |t| t.client.start_ns);
    let args = serde_json::json!({"endpoint": endpoint, "model": model, "trials": trials});
    let run = store.create_run(
        servescope_coordinator::store::RunKind::Startup,
        label,
        started,
        &args.to_string(),
    )?;
    let ok = trials.iter().all(|t| t.error.is_none());
    let end = servescope_proto::now_ns();
    store.finish_run(run, end, if ok { "done" } else { "failed" })?;
    Ok(run)
}
