//! `servescope record`: stream agents into the store for a duration.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use servescope_coordinator::orchestration::record::{
    record, resume_config, AgentProgress, RecordConfig, RecordOutcome,
};

use super::common::{fmt_ns, parse_duration, AgentFlags, DbFlag};

#[derive(clap::Args, Debug)]
#[command(mut_arg("agents", |a| a.required(false).required_unless_present("resume").conflicts_with("resume")))]
pub struct Args {
    #[command(flatten)]
    pub agents: AgentFlags,
    /// How long to record
    #[arg(long, value_parser = parse_duration, default_value = "60s", conflicts_with = "resume")]
    pub duration: Duration,
    #[command(flatten)]
    pub db: DbFlag,
    /// A label stored with the run
    #[arg(long, default_value = "", conflicts_with = "resume")]
    pub label: String,
    /// Also take what the agents' ring buffers already hold
    #[arg(long, conflicts_with = "resume")]
    pub include_history: bool,
    /// Continue run RUN, interrupted when its recorder died, from the last
    /// sequence stored per agent: same agents (token and TLS from the flags), for
    /// what is left of its duration (at least 2 s). What the agents no longer hold
    /// is stored as a counted gap
    #[arg(long, value_name = "RUN")]
    pub resume: Option<i64>,
    /// No progress lines on stderr
    #[arg(long, short)]
    pub quiet: bool,
}

pub async fn run(a: Args) -> anyhow::Result<()> {
    let cfg = match a.resume {
        Some(run) => {
            // The flags' credentials, for the run's addresses.
            let creds = a
                .agents
                .endpoints_for(&[String::new()])?
                .into_iter()
                .next()
                .context("agent credentials")?;
            let cfg = resume_config(&a.db.db, run, |addr| {
                let mut e = creds.clone();
                e.address = addr.to_string();
                e
            })
            .with_context(|| format!("resuming run {run}"))?;
            if !a.quiet {
                eprintln!(
                    "resuming run {run}: {} agent(s) for {:.0} s",
                    cfg.agents.len(),
                    cfg.duration.as_secs_f64()
                );
            }
            cfg
        }
        None => {
            let mut cfg = RecordConfig::new(a.agents.endpoints()?, a.duration, a.db.db.clone());
            cfg.label = a.label.clone();
            cfg.include_history = a.include_history;
            cfg
        }
    };
    let out = record_with_progress(cfg, a.quiet).await?;
    print_outcome(&out);
    println!("{}", out.run_id);
    if !out.failures.is_empty() && out.failures.len() == out.agents.len() {
        anyhow::bail!("no agent could be recorded");
    }
    Ok(())
}

/// Records while printing one progress line per second to stderr.
pub async fn record_with_progress(cfg: RecordConfig, quiet: bool) -> anyhow::Result<RecordOutcome> {
    let progress = Arc::new(Mutex::new(Vec::<AgentProgress>::new()));
    let total = cfg.duration;
    let p2 = Arc::clone(&progress);
    let ticker = tokio::spawn(async move {
        let start = tokio::time::Instant::now();
        let mut t = tokio::time::interval(Duration::from_secs(1));
        t.tick().await;
        loop {
            t.tick().await;
            if quiet {
                continue;
            }
            let p = p2.lock().map(|p| p.clone()).unwrap_or_default();
            let parts: Vec<String> = p
                .iter()
                .map(|a| {
                    format!(
                        "{} {} samples{}{}",
                        a.address,
                        a.samples,
                        if a.connected { "" } else { " (disconnected)" },
                        if a.lost > 0 {
                            format!(", {} lost", a.lost)
                        } else {
                            String::new()
                        }
                    )
                })
                .collect();
            eprintln!(
                "recording {:>4.0}s / {:.0}s: {}",
                start.elapsed().as_secs_f64(),
                total.as_secs_f64(),
                parts.join(" | ")
            );
        }
    });
    let out = record(cfg, progress).await;
    ticker.abort();
    Ok(out?)
}

pub fn print_outcome(out: &RecordOutcome) {
    for a in &out.agents {
        let off = a
            .offset
            .map(|o| format!("offset {} ± {}", fmt_ns(o.offset_ns), fmt_ns(o.error_ns)))
            .unwrap_or_else(|| "offset unknown".into());
        eprintln!(
            "{} ({}): {} samples, last seq {}, {} lost in gaps, {} reconnects, {off}",
            a.address, a.hostname, a.samples, a.last_seq, a.lost, a.reconnects
        );
        if let Some(e) = &a.last_error {
            eprintln!("  last error: {e}");
        }
    }
    for (addr, why) in &out.failures {
        eprintln!("{addr}: FAILED: {why}");
    }
}
