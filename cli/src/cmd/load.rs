//! `servescope load`: client-side load against an OpenAI-compatible endpoint.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use servescope_coordinator::load::metrics::{parse_slo, AggregateOptions};
use servescope_coordinator::load::request::{Api, Target};
use servescope_coordinator::load::runner::{run_load, LoadConfig, LoadProgress, PointResult};
use servescope_coordinator::load::schedule::Arrival;
use servescope_coordinator::load::stats::parse_percentiles;
use servescope_coordinator::load::vllm_json::{export_file, ExportMeta, VllmBenchResult};
use servescope_coordinator::load::workload::RandomWorkload;

use super::common::{parse_duration, DbFlag};
use super::table;

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum ApiArg {
    Completions,
    Chat,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Base URL of the OpenAI-compatible server, e.g. http://127.0.0.1:8000
    #[arg(long)]
    pub endpoint: String,
    #[arg(long, value_enum, default_value = "completions")]
    pub api: ApiArg,
    /// Model name sent in requests
    #[arg(long, default_value = "servescope-sim")]
    pub model: String,
    /// Closed loop: requests kept in flight; a list is a sweep (4,8,16)
    #[arg(long, value_delimiter = ',')]
    pub concurrency: Vec<usize>,
    /// Open loop: requests per second (Poisson, or gamma with --burstiness); a list is a sweep
    #[arg(long, value_delimiter = ',')]
    pub request_rate: Vec<f64>,
    /// Gamma shape of inter-arrival times (1 = Poisson; < 1 burstier)
    #[arg(long, default_value_t = 1.0)]
    pub burstiness: f64,
    /// With --request-rate: at most this many in flight (the wait counts in latency)
    #[arg(long)]
    pub max_concurrency: Option<usize>,
    /// Requests per point
    #[arg(long)]
    pub num_prompts: Option<usize>,
    /// Time per point (stops sending new requests then)
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Unmeasured requests before each point
    #[arg(long, default_value_t = 0)]
    pub warmup: usize,
    /// Repeat each point this many times
    #[arg(long, default_value_t = 1)]
    pub trials: usize,
    /// Prompt length in tokens (whitespace words without a tokenizer)
    #[arg(long, default_value_t = 1024)]
    pub input_len: u32,
    /// Output length in tokens (max_tokens)
    #[arg(long, default_value_t = 128)]
    pub output_len: u32,
    /// Ask the server to ignore EOS, so every answer has --output-len tokens
    #[arg(long)]
    pub ignore_eos: bool,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// x-request-id is this prefix plus the request index
    #[arg(long, default_value = "servescope-")]
    pub request_id_prefix: String,
    /// Goodput SLOs, e.g. ttft:500ms,tpot:50ms
    #[arg(long)]
    pub slo: Option<String>,
    /// Percentiles to report
    #[arg(long, default_value = "90,95,99")]
    pub percentiles: String,
    /// GPUs behind the endpoint (per-GPU throughput)
    #[arg(long)]
    pub gpus: Option<u32>,
    /// Replicas behind the endpoint (per-replica throughput)
    #[arg(long)]
    pub replicas: Option<u32>,
    /// After each point, send a counting prompt whose continuation is known and flag wrong output
    #[arg(long)]
    pub probe: bool,
    #[command(flatten)]
    pub db: DbFlag,
    #[arg(long, default_value = "")]
    pub label: String,
    /// Also write each point as `vllm bench serve` JSON into this folder
    #[arg(long)]
    pub export_vllm: Option<PathBuf>,
    /// Print JSON instead of tables
    #[arg(long)]
    pub json: bool,
}

pub async fn run(a: Args) -> anyhow::Result<()> {
    if a.num_prompts.is_none() && a.duration.is_none() {
        bail!("give --num-prompts N or --duration D");
    }
    let mut points: Vec<Arrival> = a
        .concurrency
        .iter()
        .map(|&c| Arrival::Closed { concurrency: c })
        .collect();
    points.extend(a.request_rate.iter().map(|&r| Arrival::Open {
        rate: r,
        burstiness: a.burstiness,
        max_concurrency: a.max_concurrency,
    }));
    if points.is_empty() {
        bail!("give --concurrency N[,N…] or --request-rate R[,R…]");
    }
    let slo = a
        .slo
        .as_deref()
        .map(parse_slo)
        .transpose()
        .context("--slo")?;
    let percentiles = parse_percentiles(&a.percentiles).context("--percentiles")?;
    let max_conn = a
        .concurrency
        .iter()
        .copied()
        .chain(a.max_concurrency)
        .max()
        .unwrap_or(256);
    let cfg = LoadConfig {
        target: Target {
            base_url: a.endpoint.clone(),
            api: match a.api {
                ApiArg::Completions => Api::Completions,
                ApiArg::Chat => Api::Chat,
            },
            model: a.model.clone(),
            request_id_prefix: a.request_id_prefix.clone(),
            sse_limits: Default::default(),
        },
        points,
        num_prompts: a.num_prompts,
        duration: a.duration,
        warmup: a.warmup,
        trials: a.trials,
        workload: RandomWorkload {
            input_tokens: a.input_len,
            output_tokens: a.output_len,
            ignore_eos: a.ignore_eos,
            seed: a.seed,
        },
        probe: a.probe,
        aggregate: AggregateOptions {
            percentiles,
            slo,
            gpus: a.gpus,
            replicas: a.replicas,
        },
        db: a.db.db.clone(),
        label: a.label.clone(),
        max_connections: max_conn,
    };
    let progress = Arc::new(LoadProgress::default());
    let bar = if a.json {
        None
    } else {
        Some(progress_bar(Arc::clone(&progress)))
    };
    let res = run_load(cfg, progress).await;
    if let Some(b) = bar {
        b.abort();
    }
    let (run_id, results) = res?;
    if let Some(dir) = &a.export_vllm {
        export_points(dir, &a, &results)?;
    }
    if a.json {
        let v: Vec<_> = results
            .iter()
            .map(|r| serde_json::json!({"point": r.point, "trial": r.trial, "label": r.label,
                "probe": r.probe.as_ref().map(|p| p.is_ok()), "max_dispatch_lag_ms": r.max_dispatch_lag_ms,
                "aggregate": r.aggregate}))
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({"run": run_id, "points": v}))?
        );
        return Ok(());
    }
    print_points(&results);
    println!("run {run_id} stored in {}", a.db.db.display());
    Ok(())
}

pub fn print_points(results: &[PointResult]) {
    println!("{}", table::HEADER);
    for r in results {
        let label = if r.trial > 0 || results.iter().any(|x| x.trial > 0) {
            format!("{} #{}", r.label, r.trial + 1)
        } else {
            r.label.clone()
        };
        println!("{}", table::row(&label, &r.aggregate));
        for n in table::notes(&r.aggregate) {
            println!("{n}");
        }
        if let Some(Err(d)) = &r.probe {
            println!("  WARNING correctness probe failed: {d}");
        }
        if r.max_dispatch_lag_ms > 10.0 {
            println!(
                "  WARNING the client lagged its schedule by up to {:.1} ms: it may be the bottleneck",
                r.max_dispatch_lag_ms
            );
        }
    }
}

fn progress_bar(p: Arc<LoadProgress>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{prefix} [{bar:30}] {pos}/{len} {msg} {elapsed}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        loop {
            let planned = p.planned.load(Ordering::Relaxed) as u64;
            bar.set_length(planned.max(1));
            bar.set_position(p.done.load(Ordering::Relaxed) as u64);
            bar.set_prefix(format!(
                "point {}/{}",
                p.point.load(Ordering::Relaxed) + 1,
                p.points.load(Ordering::Relaxed)
            ));
            bar.set_message(format!("{} failed", p.failed.load(Ordering::Relaxed)));
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
}

fn export_points(dir: &PathBuf, a: &Args, results: &[PointResult]) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for r in results {
        let (rate, conc) = match a.concurrency.get(r.point) {
            Some(c) => (None, Some(*c as u64)),
            None => (
                a.request_rate.get(r.point - a.concurrency.len()).copied(),
                a.max_concurrency.map(|c| c as u64),
            ),
        };
        let meta = ExportMeta {
            date: super::runs::utc(servescope_agent::clock::now_ns() as i64)
                .replace(['-', ':'], "")
                .replace(' ', "-"),
            backend: match a.api {
                ApiArg::Completions => "openai".into(),
                ApiArg::Chat => "openai-chat".into(),
            },
            label: (!a.label.is_empty()).then(|| a.label.clone()),
            model_id: a.model.clone(),
            tokenizer_id: a.model.clone(),
            request_rate: rate,
            burstiness: a.burstiness,
            max_concurrency: conc,
        };
        let v = VllmBenchResult::from_aggregate(&r.aggregate, &meta);
        let name = format!("point{}-trial{}.json", r.point, r.trial);
        export_file(&dir.join(&name), &v).with_context(|| format!("writing {name}"))?;
    }
    Ok(())
}
