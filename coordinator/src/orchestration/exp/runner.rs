//! `servescope exp run FILE`: the points of an experiment that the store does not hold
//! yet, deployment by deployment: deploy, wait until the endpoint answers, send each
//! point through the shards, store it (run, requests and experiment row in one
//! transaction), tear down. Interrupted (the `stop` flag, e.g. on SIGINT), it returns
//! before the current point is stored; running the file again finishes the rest.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use super::file::{Deployment, ExperimentFile};
use super::plan::{expand, mode_name, shard_specs, Load, Planned};
use super::shards::{send, Client};
use crate::analysis::exp::ExpError;
use crate::store::{ExpPoint, ExpPointFacts, LoadPoint, PointConfig, RunKind, RunLinks, Store};
use servescope_loadgen::metrics::{aggregate, AggregateOptions};
use servescope_loadgen::schedule::Arrival;

/// How long an endpoint without a deploy step gets to answer before its points fail.
const NOT_DEPLOYED_READY: Duration = Duration::from_secs(5);

/// What to run.
pub struct ExpRunConfig {
    pub file_path: PathBuf,
    pub db: PathBuf,
    /// Agents for the client shards (from the file's `client.agents`, with the token).
    pub client: Client,
    /// Agents on the serving nodes (the file's `agents`): fabric preflight, telemetry.
    pub agents: Vec<crate::orchestration::connect::AgentEndpoint>,
    /// Set to stop after the current point is abandoned (not stored).
    pub stop: Arc<AtomicBool>,
    /// Progress lines.
    pub progress: Box<dyn Fn(&str) + Send + Sync>,
}

/// What happened.
#[derive(Debug, Clone)]
pub struct ExpRunOutcome {
    pub exp_id: i64,
    pub ran: usize,
    pub skipped: usize,
    pub failed: usize,
}

fn sh(cmd: &str, dir: &Path) -> Result<(), String> {
    let st = std::process::Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .current_dir(dir)
        .status()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if st.success() {
        Ok(())
    } else {
        Err(format!("{cmd:?} exited with {st}"))
    }
}

/// Waits until `GET {endpoint}/v1/models` answers 2xx.
async fn wait_ready(endpoint: &str, timeout: Duration, stop: &AtomicBool) -> Result<(), String> {
    let client = servescope_loadgen::http::HttpClient::new(2);
    let url = format!("{}/v1/models", endpoint.trim_end_matches('/'));
    let t0 = Instant::now();
    let mut last = String::new();
    while t0.elapsed() < timeout {
        if stop.load(Ordering::Relaxed) {
            return Err("interrupted".into());
        }
        match client.get(&url, 1 << 20, Duration::from_secs(5)).await {
            Ok((s, _)) if (200..300).contains(&s) => return Ok(()),
            Ok((s, _)) => last = format!("HTTP {s}"),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Err(format!("{url} not ready after {timeout:?} (last: {last})"))
}

async fn deploy(d: &Deployment, dir: &Path, stop: &AtomicBool) -> Result<(), ExpError> {
    let fail = |m: String| ExpError::Deploy {
        deployment: d.name.clone(),
        message: m,
    };
    let Some(step) = &d.deploy else {
        return Ok(());
    };
    if let Some(cmd) = &step.command {
        sh(cmd, dir).map_err(fail)?;
    }
    if let Some(rs) = &step.ray_serve {
        super::ray_step::apply(rs, dir, Duration::from_secs_f64(step.ready_timeout_s))
            .await
            .map_err(fail)?;
    }
    wait_ready(
        &d.endpoint,
        Duration::from_secs_f64(step.ready_timeout_s),
        stop,
    )
    .await
    .map_err(fail)
}

async fn teardown(d: &Deployment, dir: &Path) -> Result<(), ExpError> {
    let fail = |m: String| ExpError::Deploy {
        deployment: d.name.clone(),
        message: format!("teardown: {m}"),
    };
    let Some(t) = &d.teardown else {
        return Ok(());
    };
    if t.ray_serve_delete {
        if let Some(rs) = d.deploy.as_ref().and_then(|s| s.ray_serve.as_ref()) {
            super::ray_step::delete(rs).await.map_err(fail)?;
        }
    }
    if let Some(cmd) = &t.command {
        sh(cmd, dir).map_err(fail)?;
    }
    Ok(())
}

/// The agents the preflight checks: the file's `agents`, else the client's.
fn preflight_agents(cfg: &ExpRunConfig) -> Vec<crate::orchestration::connect::AgentEndpoint> {
    if !cfg.agents.is_empty() {
        return cfg.agents.clone();
    }
    match &cfg.client {
        Client::Agents(a) => a.clone(),
        Client::Local => Vec::new(),
    }
}

/// Marks the experiment interrupted; the error to return.
fn interrupted(
    store: &Store,
    exp: i64,
    out: &ExpRunOutcome,
    left_total: usize,
) -> Result<ExpError, ExpError> {
    store.set_experiment_status(exp, "interrupted")?;
    Ok(ExpError::Interrupted {
        done: out.ran + out.skipped,
        left: left_total - out.ran,
    })
}

/// Runs what is left of the experiment.
pub async fn run_experiment(cfg: ExpRunConfig) -> Result<ExpRunOutcome, ExpError> {
    let text = std::fs::read_to_string(&cfg.file_path).map_err(|source| ExpError::Read {
        path: cfg.file_path.display().to_string(),
        source,
    })?;
    let f = super::file::parse(&text)?;
    let dir = cfg
        .file_path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let mut store = Store::open(&cfg.db)?;
    let exp = store.open_experiment(&f.name, &text, servescope_proto::now_ns())?;
    let done: std::collections::HashSet<String> =
        store.exp_points(exp)?.into_iter().map(|p| p.key).collect();
    let all = expand(&f);
    let shards = f.client.shards.unwrap_or(match &cfg.client {
        Client::Local => 1,
        Client::Agents(a) => a.len(),
    });
    let mut out = ExpRunOutcome {
        exp_id: exp,
        ran: 0,
        skipped: 0,
        failed: 0,
    };
    let left_total = all.iter().filter(|p| !done.contains(&p.key)).count();
    (cfg.progress)(&format!(
        "experiment {:?}: {} points, {} stored, {} to run ({shards} shard(s) {})",
        f.name,
        all.len(),
        all.len() - left_total,
        left_total,
        match &cfg.client {
            Client::Local => "here".to_string(),
            Client::Agents(a) => format!("on {} agent(s)", a.len()),
        }
    ));
    store.set_experiment_status(exp, "running")?;
    if left_total > 0 && f.analyses.contains(&super::file::Analysis::FabricCheck) {
        let agents = preflight_agents(&cfg);
        let found = super::preflight::check(&agents).await;
        (cfg.progress)(&format!(
            "fabric preflight: {} finding(s) on {} agent(s)",
            found.len(),
            agents.len()
        ));
        store.create_linked_run(
            RunKind::FabricCheck,
            &format!("{}: fabric preflight", f.name),
            servescope_proto::now_ns(),
            &json!({"experiment": f.name, "findings": found}).to_string(),
            &RunLinks {
                experiment: Some(exp),
                ..Default::default()
            },
        )?;
    }
    for (di, d) in f.deployments.iter().enumerate() {
        let todo: Vec<(usize, &Planned)> = all
            .iter()
            .enumerate()
            .filter(|(_, p)| p.deployment == di && !done.contains(&p.key))
            .collect();
        out.skipped += all
            .iter()
            .filter(|p| p.deployment == di && done.contains(&p.key))
            .count();
        if todo.is_empty() {
            continue;
        }
        // A deployment that cannot be deployed or does not answer: its points are
        // stored as failed (with the reason), the experiment goes on.
        let deploy_t0 = std::time::Instant::now();
        let ready = match deploy(d, &dir, &cfg.stop).await {
            Ok(()) if d.deploy.is_none() => wait_ready(&d.endpoint, NOT_DEPLOYED_READY, &cfg.stop)
                .await
                .map_err(|m| format!("endpoint not ready: {m}")),
            Ok(()) => Ok(()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(why) = ready {
            if cfg.stop.load(Ordering::Relaxed) {
                return Err(interrupted(&store, exp, &out, left_total)?);
            }
            for (_, p) in &todo {
                let now = servescope_proto::now_ns();
                store_point(
                    &mut store,
                    exp,
                    &f,
                    p,
                    &[],
                    std::slice::from_ref(&why),
                    (now, now),
                    &mut out,
                )?;
                (cfg.progress)(&format!(
                    "[{}/{}] {}: FAILED — {why}",
                    out.ran + out.skipped,
                    all.len(),
                    p.key
                ));
            }
            let _ = teardown(d, &dir).await;
            continue;
        }
        if d.deploy.is_some() && f.analyses.contains(&super::file::Analysis::Startup) {
            let ready_s = deploy_t0.elapsed().as_secs_f64();
            let row =
                super::preflight::startup(&cfg.agents, &cfg.db, &f.name, &d.name, ready_s).await;
            (cfg.progress)(&format!("{}: ready {ready_s:.1} s after the deploy step started; {} startup phase(s) from the agents' logs", d.name, row.phases.len()));
            store.create_linked_run(
                RunKind::ExpStartup,
                &format!("{}: {} startup", f.name, d.name),
                servescope_proto::now_ns(),
                &json!({"experiment": f.name, "startup": row}).to_string(),
                &RunLinks {
                    experiment: Some(exp),
                    ..Default::default()
                },
            )?;
        }
        for (seq, p) in todo {
            if cfg.stop.load(Ordering::Relaxed) {
                return Err(interrupted(&store, exp, &out, left_total)?);
            }
            let specs = shard_specs(&f, p, seq, shards);
            let started = servescope_proto::now_ns();
            let run = send(&cfg.client, specs);
            tokio::pin!(run);
            let (outcomes, problems) = loop {
                tokio::select! {
                    r = &mut run => break r,
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {
                        if cfg.stop.load(Ordering::Relaxed) {
                            return Err(interrupted(&store, exp, &out, left_total)?);
                        }
                    }
                }
            };
            let ended = servescope_proto::now_ns();
            store_point(
                &mut store,
                exp,
                &f,
                p,
                &outcomes,
                &problems,
                (started, ended),
                &mut out,
            )?;
            let last = out.ran + out.skipped;
            (cfg.progress)(&format!(
                "[{last}/{}] {}: {} requests{}",
                all.len(),
                p.key,
                outcomes.len(),
                if problems.is_empty() {
                    String::new()
                } else {
                    format!(" — {}", problems.join("; "))
                }
            ));
        }
        if !cfg.agents.is_empty() {
            let label = format!("{}: {} telemetry", f.name, d.name);
            match super::preflight::record_telemetry(&cfg.agents, &cfg.db, &label).await {
                Ok(run) => (cfg.progress)(&format!(
                    "{}: agents' telemetry recorded as run {run}",
                    d.name
                )),
                Err(e) => (cfg.progress)(&format!("{}: recording the agents failed: {e}", d.name)),
            }
        }
        teardown(d, &dir).await?;
    }
    store.set_experiment_status(
        exp,
        if out.failed > 0 {
            "done with failures"
        } else {
            "done"
        },
    )?;
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
fn store_point(
    store: &mut Store,
    exp: i64,
    f: &ExperimentFile,
    p: &Planned,
    outcomes: &[servescope_loadgen::request::Outcome],
    problems: &[String],
    span: (u64, u64),
    out: &mut ExpRunOutcome,
) -> Result<(), ExpError> {
    let d = &f.deployments[p.deployment];
    let opts = AggregateOptions {
        gpus: Some(d.gpus),
        replicas: Some(d.replicas),
        ..Default::default()
    };
    let records: Vec<_> = outcomes.iter().map(|o| o.record.clone()).collect();
    let agg = aggregate(&records, &opts)?;
    let failed = agg.completed == 0 || !problems.is_empty();
    let detail = if agg.completed == 0 && problems.is_empty() {
        Some(format!("no request succeeded ({:?})", agg.errors_by_class))
    } else if !problems.is_empty() {
        Some(problems.join("; "))
    } else {
        None
    };
    let max_lag = outcomes
        .iter()
        .map(|o| o.dispatch_lag.as_secs_f64() * 1e3)
        .fold(0.0, f64::max);
    let config = PointConfig {
        arrival: match p.load {
            Load::Closed { concurrency } => Arrival::Closed { concurrency },
            Load::Open { rate } => Arrival::Open {
                rate,
                burstiness: 1.0,
                max_concurrency: None,
            },
        },
        trial: p.trial,
        max_dispatch_lag_ms: Some(max_lag),
        probe: None,
        exp: Some(ExpPointFacts {
            deployment: d.name.clone(),
            nominal: p.nominal,
            input_tokens: p.input,
            output_tokens: p.output,
            workload_mode: mode_name(p.mode).to_string(),
            gpus: d.gpus,
            replicas: d.replicas,
            labels: d.labels.clone(),
        }),
    };
    let args = json!({"experiment": f.name, "key": p.key, "endpoint": d.endpoint});
    store.save_exp_point(
        exp,
        &ExpPoint {
            key: &p.key,
            deployment: &d.name,
            run_args: &args,
            point: LoadPoint {
                point: 0,
                trial: 0,
                label: &format!("{}: {}", f.name, p.key),
                config: &config,
                aggregate: &agg,
                outcomes,
                warmup: &[],
                span_ns: span,
            },
            status: if failed { "failed" } else { "done" },
            detail: detail.as_deref(),
        },
    )?;
    out.ran += 1;
    out.failed += usize::from(failed);
    Ok(())
}
