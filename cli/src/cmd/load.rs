//! `servescope load`: client-side load against an OpenAI-compatible endpoint.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use servescope_coordinator::analysis::load::vllm_json::{export_file, ExportMeta, VllmBenchResult};
use servescope_coordinator::orchestration::load::metrics::{parse_slo, AggregateOptions};
use servescope_coordinator::orchestration::load::request::{Api, Target};
use servescope_coordinator::orchestration::load::runner::{
    run_load, LoadConfig, LoadProgress, PointResult,
};
use servescope_coordinator::orchestration::load::schedule::Arrival;
use servescope_coordinator::orchestration::load::stats::parse_percentiles;
use servescope_coordinator::orchestration::load::workload::{
    PrefixRepetition, PrefixSpec, RandomWorkload, ShareGpt, ShareGptOptions, TokenCounter, Workload,
};

use super::common::{parse_duration, DbFlag};
use super::table;

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum ApiArg {
    Completions,
    Chat,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum DatasetArg {
    /// Every request its own random text of exactly --input-len tokens
    Random,
    /// vLLM's prefix_repetition: --num-prefixes shared prefixes of --prefix-len tokens, each
    /// prompt one of them plus its own --suffix-len random tokens
    PrefixRepetition,
    /// A ShareGPT JSON file (--dataset-path): first human turn, length of the first gpt answer
    Sharegpt,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Base URL of the OpenAI-compatible server, e.g. http://127.0.0.1:8000 (for `pd run`:
    /// the P/D proxy, also spelt --proxy)
    #[arg(long, visible_alias = "proxy")]
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
    /// What to send (boxed: keeps the `Command` enum small)
    #[command(flatten)]
    pub workload: Box<WorkloadArgs>,
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
    /// Continue run RUN, interrupted when its process died: run the same command
    /// again with this flag; the points and trials it stored are kept, the rest run
    /// into it (a point cut short stored nothing and runs again)
    #[arg(long, value_name = "RUN")]
    pub resume: Option<i64>,
    /// Also write each point as `vllm bench serve` JSON into this folder
    #[arg(long)]
    pub export_vllm: Option<PathBuf>,
    /// Print JSON instead of tables
    #[arg(long)]
    pub json: bool,
}

/// `--dataset` and its options.
#[derive(clap::Args, Debug)]
pub struct WorkloadArgs {
    /// Workload
    #[arg(long, value_enum, default_value = "random")]
    pub dataset: DatasetArg,
    /// The ShareGPT JSON file (--dataset sharegpt)
    #[arg(long)]
    pub dataset_path: Option<PathBuf>,
    /// Hugging Face tokenizer.json of the served model: exact token counts (without it a
    /// token is a whitespace-separated word, an approximation)
    #[arg(long)]
    pub tokenizer: Option<PathBuf>,
    /// Prompt length in tokens (random) [default: 1024]
    #[arg(long)]
    pub input_len: Option<u32>,
    /// Output length in tokens (max_tokens) [default: 128; sharegpt: the answer's length]
    #[arg(long)]
    pub output_len: Option<u32>,
    /// Shared prefix length in tokens (prefix-repetition) [default: 256]
    #[arg(long)]
    pub prefix_len: Option<u32>,
    /// Per-request suffix length in tokens (prefix-repetition) [default: 256]
    #[arg(long)]
    pub suffix_len: Option<u32>,
    /// Number of distinct prefixes (prefix-repetition) [default: 10]
    #[arg(long)]
    pub num_prefixes: Option<u32>,
    /// Keep the same prefixes for every point and trial (prefix-repetition; by default each
    /// point and trial gets its own, so none starts with another's prefixes cached)
    #[arg(long)]
    pub reuse_prefixes: bool,
}

/// The load configuration the flags ask for.
pub fn load_config(a: &Args) -> anyhow::Result<LoadConfig> {
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
        workload: build_workload(a)?,
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
        point_hook: None,
        resume: a.resume,
    };
    Ok(cfg)
}

pub async fn run(a: Args) -> anyhow::Result<()> {
    let cfg = load_config(&a)?;
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
            .map(|r| serde_json::json!({"point": r.point, "trial": r.config.trial, "label": r.label,
                "probe": r.config.probe.as_ref().map(|p| p.ok), "max_dispatch_lag_ms": r.config.max_dispatch_lag_ms.unwrap_or(0.0),
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

/// The workload the flags ask for; prints (stderr) how lengths are counted and what a
/// dataset file held.
pub fn build_workload(a: &Args) -> anyhow::Result<Workload> {
    let (d, ignore_eos, seed) = (&*a.workload, a.ignore_eos, a.seed);
    let only = |set: bool, flag: &str, ds: &str| -> anyhow::Result<()> {
        if set {
            bail!("{flag} applies to --dataset {ds} only");
        }
        Ok(())
    };
    let random = d.dataset == DatasetArg::Random;
    let prefix = d.dataset == DatasetArg::PrefixRepetition;
    let sharegpt = d.dataset == DatasetArg::Sharegpt;
    only(!random && d.input_len.is_some(), "--input-len", "random")?;
    only(
        !sharegpt && d.dataset_path.is_some(),
        "--dataset-path",
        "sharegpt",
    )?;
    for (set, flag) in [
        (d.prefix_len.is_some(), "--prefix-len"),
        (d.suffix_len.is_some(), "--suffix-len"),
        (d.num_prefixes.is_some(), "--num-prefixes"),
        (d.reuse_prefixes, "--reuse-prefixes"),
    ] {
        only(!prefix && set, flag, "prefix-repetition")?;
    }
    let tok = match &d.tokenizer {
        Some(p) => TokenCounter::from_file(p).context("--tokenizer")?,
        None => TokenCounter::words(),
    };
    let w = match d.dataset {
        DatasetArg::Random => Workload::Random {
            spec: RandomWorkload {
                input_tokens: d.input_len.unwrap_or(1024),
                output_tokens: d.output_len.unwrap_or(128),
                ignore_eos,
                seed,
            },
            tokenizer: tok,
        },
        DatasetArg::PrefixRepetition => {
            let spec = PrefixSpec {
                num_prefixes: d.num_prefixes.unwrap_or(10),
                prefix_len: d.prefix_len.unwrap_or(256),
                suffix_len: d.suffix_len.unwrap_or(256),
                output_tokens: d.output_len.unwrap_or(128),
                ignore_eos,
                seed,
                reuse_prefixes: d.reuse_prefixes,
            };
            if spec.num_prefixes == 0 {
                bail!("--num-prefixes must be at least 1");
            }
            if spec.prefix_len + spec.suffix_len == 0 {
                bail!("--prefix-len + --suffix-len must be at least 1");
            }
            Workload::PrefixRepetition(PrefixRepetition::new(spec, tok))
        }
        DatasetArg::Sharegpt => {
            let Some(path) = &d.dataset_path else {
                bail!("--dataset sharegpt needs --dataset-path FILE (a ShareGPT JSON file)");
            };
            let opts = ShareGptOptions {
                output_len: d.output_len,
                ignore_eos,
                seed,
                limit: a.num_prompts.map(|n| n + a.warmup),
                ..Default::default()
            };
            Workload::ShareGpt(ShareGpt::load(path, &tok, &opts).context("--dataset-path")?)
        }
    };
    for n in w.notes() {
        eprintln!("note: {n}");
    }
    Ok(w)
}

pub fn print_points(results: &[PointResult]) {
    println!("{}", table::HEADER);
    for r in results {
        let label = if results.iter().any(|x| x.config.trial > 0) {
            format!("{} #{}", r.label, r.config.trial + 1)
        } else {
            r.label.clone()
        };
        println!("{}", table::row(&label, &r.aggregate));
        for n in table::notes(&r.aggregate)
            .into_iter()
            .chain(table::error_lines(&r.errors))
        {
            println!("{n}");
        }
        if let Some(d) = r.config.probe.as_ref().and_then(|v| v.failure()) {
            println!("  WARNING correctness probe failed: {d}");
        }
        let lag = r.config.max_dispatch_lag_ms.unwrap_or(0.0);
        if lag > 10.0 {
            println!(
                "  WARNING the client lagged its schedule by up to {lag:.1} ms: it may be the bottleneck"
            );
        }
    }
}

pub fn progress_bar(p: Arc<LoadProgress>) -> tokio::task::JoinHandle<()> {
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
        let (rate, burstiness, conc) = match r.config.arrival {
            Arrival::Closed { concurrency } => (None, a.burstiness, Some(concurrency as u64)),
            Arrival::Open {
                rate,
                burstiness,
                max_concurrency,
            } => (Some(rate), burstiness, max_concurrency.map(|c| c as u64)),
        };
        let meta = ExportMeta {
            date: super::runs::utc(servescope_proto::now_ns() as i64)
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
            burstiness,
            max_concurrency: conc,
        };
        let v = VllmBenchResult::from_aggregate(&r.aggregate, &meta);
        let name = format!("point{}-trial{}.json", r.point, r.config.trial);
        export_file(&dir.join(&name), &v).with_context(|| format!("writing {name}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod workload_tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    fn build(extra: &[&str]) -> anyhow::Result<Workload> {
        let mut argv = vec!["servescope", "--endpoint", "http://x", "--concurrency", "1"];
        argv.extend_from_slice(extra);
        build_workload(&Cli::try_parse_from(argv)?.args)
    }

    #[test]
    fn dataset_flags_build_the_workload_or_say_what_is_wrong() {
        let w = build(&["--input-len", "12", "--output-len", "3"]).unwrap();
        assert_eq!(w.name(), "random");
        assert_eq!(w.lengths(), (Some(12), Some(3)));
        assert_eq!(w.prompt(0).input_tokens, 12);
        let w = build(&[
            "--dataset",
            "prefix-repetition",
            "--prefix-len",
            "8",
            "--suffix-len",
            "4",
            "--num-prefixes",
            "2",
        ])
        .unwrap();
        assert_eq!(w.name(), "prefix-repetition");
        assert_eq!(w.prompt(0).input_tokens, 12);
        let err = |extra: &[&str]| format!("{:#}", build(extra).unwrap_err());
        assert!(err(&["--prefix-len", "8"])
            .contains("--prefix-len applies to --dataset prefix-repetition"));
        assert!(err(&["--dataset", "sharegpt"]).contains("needs --dataset-path"));
        assert!(err(&[
            "--dataset",
            "sharegpt",
            "--dataset-path",
            "/nonexistent/sg.json"
        ])
        .contains("/nonexistent/sg.json: no such file"));
        assert!(err(&["--dataset", "sharegpt", "--input-len", "5"]).contains("--input-len"));
        assert!(err(&["--tokenizer", "/nonexistent/tokenizer.json"]).contains("--tokenizer"));

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sg.json");
        let conv = serde_json::json!([{"conversations": [
            {"from": "human", "value": "one two three four five"},
            {"from": "gpt", "value": "a b c d e f g"}]}]);
        std::fs::write(&path, conv.to_string()).unwrap();
        let p = path.to_str().unwrap();
        let w = build(&["--dataset", "sharegpt", "--dataset-path", p]).unwrap();
        assert_eq!((w.prompt(0).input_tokens, w.prompt(0).max_tokens), (5, 7));
        let w = build(&[
            "--dataset",
            "sharegpt",
            "--dataset-path",
            p,
            "--output-len",
            "9",
        ])
        .unwrap();
        assert_eq!(w.prompt(5).max_tokens, 9);
    }
}
