//! The demo's stages, one function each, in the order [`super::STAGES`] runs them.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use anyhow::Context;
use servescope_coordinator::analysis::startup::agent_logs::AgentLogParse;
use servescope_coordinator::orchestration::startup_run::{self as live, RunOptions, Trial};
use servescope_coordinator::Store;

use super::super::findings;
use super::super::lab::{Drive, Lab};
use super::super::pd_lab::{clean_cluster, run_pd, Sweep};
use super::super::startup_common::{options, TimeFlags};
use super::super::startup_run::store_trials;
use super::super::startup_sources::record_agent_logs;
use super::State;

type Stage<'a> = Pin<Box<dyn Future<Output = anyhow::Result<()>> + 'a>>;

/// The engine log the startup rehearsal writes and the agent's watcher follows.
pub const STARTUP_LOG: &str = "vllm-startup.log";
/// The rehearsal's phases (seconds), vLLM's order.
const STARTUP_PHASES: &str =
    "init=0.2,download=0.4,weight_load=0.6,compile=0.4,kv_cache=0.2,graph_capture=0.5,api=0.2";
/// The KV path's speed when no fabric probe worked (GB/s).
const DEFAULT_KV_GBPS: f64 = 5.0;
/// Time the agent's watcher gets to stream the last log lines.
const WATCH_SETTLE: Duration = Duration::from_millis(1500);

/// The rehearsal's outcome.
pub struct Startup {
    pub trial: Trial,
    /// The stored startup run and the agents' recording that holds the watched lines.
    pub run: i64,
    pub agents_run: i64,
    pub watched: Vec<AgentLogParse>,
}

fn lab(s: &State) -> anyhow::Result<&Lab> {
    s.lab.as_ref().context("the agent stage did not run")
}

pub fn agent(s: &mut State) -> Stage<'_> {
    Box::pin(async move {
        let lab = Lab::start(Some(STARTUP_LOG)).await?;
        eprintln!(
            "  agent on {} over {} (EFA {} / {})",
            lab.ep.address,
            lab.sysfs.display(),
            lab.efa,
            lab.netdev
        );
        s.lab = Some(lab);
        Ok(())
    })
}

pub fn fabric_probe(s: &mut State) -> Stage<'_> {
    Box::pin(async move {
        let ep = lab(s)?.ep.clone();
        s.probe = super::fabric::probe(&ep, &s.args.db.db, &mut s.probe_notes).await?;
        match &s.probe {
            Some(p) => eprintln!(
                "  {}: {:.2} GB/s, stored as run {}",
                p.transport, p.capacity_gbps, p.run
            ),
            None => eprintln!(
                "  no transport worked ({}); the KV path runs at {DEFAULT_KV_GBPS} GB/s",
                s.probe_notes.join("; ")
            ),
        }
        Ok(())
    })
}

pub fn pd_sweep(s: &mut State) -> Stage<'_> {
    Box::pin(async move {
        let kv_gbps = s
            .probe
            .as_ref()
            .map_or(DEFAULT_KV_GBPS, |p| p.capacity_gbps);
        let mut c = clean_cluster(kv_gbps);
        if !s.args.no_fault {
            if let Some(pd) = c.engine.pd.as_mut() {
                pd.slow_kv_rate = s.args.slow_kv_share;
                pd.slow_kv_factor = s.args.slow_kv_factor;
            }
        }
        let sweep = Sweep {
            concurrency: vec![1, 4],
            num_prompts: 16,
            output_tokens: 16,
            probe: true,
        };
        let fabric_run = s.probe.as_ref().map(|p| p.run);
        let out = run_pd(
            lab(s)?,
            c,
            &sweep,
            fabric_run,
            Drive::KvOverRdma,
            &s.args.db.db,
        )
        .await?;
        eprintln!(
            "  pd run {}: {} requests, agent telemetry in run {}",
            out.run_id,
            out.truth.len(),
            out.telemetry_run.map_or("–".into(), |t| t.to_string())
        );
        s.pd = Some(out);
        Ok(())
    })
}

pub fn startup(s: &mut State) -> Stage<'_> {
    Box::pin(async move {
        let lab = lab(s)?;
        let log = lab.path(STARTUP_LOG);
        let phases = servescope_sim::startup::parse_phases(STARTUP_PHASES)
            .map_err(anyhow::Error::msg)
            .context("the rehearsal's phases")?;
        let cfg = servescope_sim::SimConfig::default();
        let model = cfg.model.clone();
        let sim = servescope_sim::start_with(
            cfg,
            "127.0.0.1:0".parse()?,
            Some(servescope_sim::StartupConfig {
                phases,
                log: Some(log.clone()),
                stdout: false,
                millis: true,
            }),
        )
        .await
        .context("starting the simulator in startup mode")?;
        let parse = options(&TimeFlags {
            year: None,
            utc_offset: "+00:00".into(),
        })?;
        let mut o = RunOptions::new(&sim.url(), &model, parse.clone());
        o.logs = vec![log];
        o.logs_from_start = true;
        o.timeout = Duration::from_secs(60);
        o.parse.min_gap_s = 0.05;
        let trial = live::run_trial(&o, 0, &mut |m| eprintln!("  {m}")).await;
        tokio::time::sleep(WATCH_SETTLE).await;
        let rec = record_agent_logs(
            vec![lab.ep.clone()],
            &s.args.db.db,
            "demo startup rehearsal",
            &parse,
        )
        .await;
        sim.shutdown().await;
        let rec = rec?;
        let run = store_trials(
            &s.args.db.db,
            "demo startup rehearsal",
            &o.endpoint,
            &model,
            std::slice::from_ref(&trial),
        )?;
        if let Some(e) = &trial.error {
            anyhow::bail!("the startup rehearsal failed: {e}");
        }
        s.startup = Some(Startup {
            trial,
            run,
            agents_run: rec.run_id,
            watched: rec.logs,
        });
        Ok(())
    })
}

pub fn findings_and_report(s: &mut State) -> Stage<'_> {
    Box::pin(async move {
        let run = s.pd.as_ref().context("the P/D stage did not run")?.run_id;
        let store = Store::open(&s.args.db.db)
            .with_context(|| format!("opening {}", s.args.db.db.display()))?;
        s.findings = findings::findings(&store, run)?.unwrap_or_default();
        // One page: the P/D run (with its linked recording and probe) and the
        // startup rehearsal.
        let mut runs = vec![run];
        runs.extend(s.startup.as_ref().map(|st| st.run));
        findings::write_report(&store, &runs, &s.args.report)?;
        Ok(())
    })
}
