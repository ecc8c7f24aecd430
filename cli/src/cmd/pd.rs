//! `servescope pd run`, `servescope attribute RUN`, `servescope diagnose RUN`: P/D
//! attribution (see the coordinator's `pd` module).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use servescope_coordinator::analysis::diagnose::diagnose_run_with;
use servescope_coordinator::analysis::pd::analyze::{attribute, AttributeOptions};
use servescope_coordinator::analysis::pd::logs::{self, EngineLog};
use servescope_coordinator::analysis::pd::Attribution;
use servescope_coordinator::analysis::pd::Finding;
use servescope_coordinator::orchestration::load::runner::LoadProgress;
use servescope_coordinator::orchestration::otlp_receiver::{Limits, Receiver};
use servescope_coordinator::orchestration::pd_run::{pd_run, PdRunConfig};
use servescope_coordinator::report::pd as report;
use servescope_coordinator::Store;

use super::common::{parse_duration, AgentFlags, DbFlag};
use super::load;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub cmd: PdCmd,
}

#[derive(clap::Subcommand, Debug)]
pub enum PdCmd {
    /// A load sweep through the P/D proxy while every prefill and decode instance is
    /// scraped and their llm_request spans are received; then the attribution
    Run(Box<RunArgs>),
}

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// The sweep (the endpoint is the proxy: --proxy URL)
    #[command(flatten)]
    pub load: load::Args,
    /// A prefill instance's base URL (repeat for several)
    #[arg(long, required = true)]
    pub prefill: Vec<String>,
    /// A decode instance's base URL (repeat for several)
    #[arg(long, required = true)]
    pub decode: Vec<String>,
    /// Agent on an engine node (repeat): its RDMA and network counters of the run are recorded
    #[arg(long = "agent")]
    pub agents: Vec<String>,
    /// File holding the agents' bearer token
    #[arg(long, env = "SERVESCOPE_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// How often to scrape /metrics between the point edges
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub scrape_interval: Duration,
    /// Where the OTLP/gRPC receiver listens; point the engines' --otlp-traces-endpoint here
    #[arg(long, default_value = "0.0.0.0:4317")]
    pub otlp_listen: SocketAddr,
    /// Do not start the OTLP receiver (per-request P stages are then unknown)
    #[arg(long)]
    pub no_otlp: bool,
    /// Wait this long after the last request for the engines' span batches
    #[arg(long, default_value = "6s", value_parser = parse_duration)]
    pub span_wait: Duration,
    /// A stored fabric probe run (servescope fabric probe) giving the KV path's capacity
    #[arg(long)]
    pub fabric_run: Option<i64>,
    /// Also write the HTML report here
    #[arg(long)]
    pub html: Option<PathBuf>,
    /// An engine's log to read after the run (repeat; see `attribute --engine-log`)
    #[arg(long)]
    pub engine_log: Vec<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct AttributeArgs {
    /// The run (a pd run, or a load run)
    pub run: i64,
    #[command(flatten)]
    pub db: DbFlag,
    /// Capacity of the KV path, GB/s (else from the run's fabric probe, if any)
    #[arg(long)]
    pub capacity_gbps: Option<f64>,
    /// Requests in the slowest-request waterfall
    #[arg(long, default_value_t = 10)]
    pub slowest: usize,
    /// Write the HTML report here
    #[arg(long)]
    pub html: Option<PathBuf>,
    /// An engine's log (repeat): `KV Transfer metrics` lines where no NIXL metrics were
    /// scraped, and request-id lines (`Added request …`, expired KV blocks) for the join
    #[arg(long)]
    pub engine_log: Vec<PathBuf>,
    /// Print JSON (every component of the slowest requests) instead of tables
    #[arg(long)]
    pub json: bool,
}

pub async fn run(a: Args) -> anyhow::Result<()> {
    match a.cmd {
        PdCmd::Run(r) => run_pd(*r).await,
    }
}

/// The first URL given both as a prefill and as a decode instance (trailing `/` and
/// the case of scheme and host ignored): its counters would be read twice.
fn listed_twice<'a>(prefill: &'a [String], decode: &[String]) -> Option<&'a str> {
    let key = |u: &str| {
        let u = u.trim().trim_end_matches('/');
        match u.split_once("://") {
            Some((scheme, rest)) => {
                let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
                format!(
                    "{}://{}/{path}",
                    scheme.to_ascii_lowercase(),
                    host.to_ascii_lowercase()
                )
            }
            None => u.to_ascii_lowercase(),
        }
    };
    prefill
        .iter()
        .find(|p| decode.iter().any(|d| key(d) == key(p)))
        .map(String::as_str)
}

async fn run_pd(a: RunArgs) -> anyhow::Result<()> {
    if let Some(url) = listed_twice(&a.prefill, &a.decode) {
        bail!(
            "{url} is given both as --prefill and as --decode: its /metrics and spans would be \
             counted twice (prefill counted on the decode side too). List each instance once, \
             under the role it serves; for one non-disaggregated server use `servescope load`"
        );
    }
    let cfg = load::load_config(&a.load)?;
    let agents = if a.agents.is_empty() {
        Vec::new()
    } else {
        AgentFlags {
            agents: a.agents.clone(),
            token_file: a.token_file.clone(),
            tls_ca: None,
            tls_domain: None,
            tls_client_cert: None,
            tls_client_key: None,
        }
        .endpoints()?
    };
    let otlp = if a.no_otlp {
        None
    } else {
        let r = Receiver::start(a.otlp_listen, Limits::default())
            .await
            .with_context(|| format!("starting the OTLP receiver on {}", a.otlp_listen))?;
        eprintln!(
            "OTLP receiver on {} (engines: --otlp-traces-endpoint {})",
            r.local_addr(),
            r.local_addr()
        );
        Some(r)
    };
    let progress = Arc::new(LoadProgress::default());
    let bar = (!a.load.json).then(|| load::progress_bar(Arc::clone(&progress)));
    let out = pd_run(
        PdRunConfig {
            load: cfg,
            prefill: a.prefill.clone(),
            decode: a.decode.clone(),
            scrape_interval: a.scrape_interval,
            otlp,
            span_wait: a.span_wait,
            agents,
            fabric_run: a.fabric_run,
        },
        progress,
    )
    .await;
    if let Some(b) = bar {
        b.abort();
    }
    let out = out.context("pd run")?;
    eprintln!(
        "pd run {}: {} scrapes ({} failed), {} spans{}",
        out.run_id,
        out.scrapes,
        out.scrape_failures,
        out.spans,
        out.telemetry_run
            .map_or(String::new(), |t| format!(", agents' telemetry in run {t}"))
    );
    let store = Store::open(&a.load.db.db)
        .with_context(|| format!("opening {}", a.load.db.db.display()))?;
    let at = attribute(
        &store,
        out.run_id,
        &AttributeOptions {
            capacity_gbps: None,
            slowest: 10,
            engine_logs: read_logs(&a.engine_log)?,
        },
    )?;
    output(&at, a.load.json, a.html.as_ref(), 10)
}

fn output(
    at: &Attribution,
    json: bool,
    html: Option<&PathBuf>,
    slowest: usize,
) -> anyhow::Result<()> {
    if let Some(p) = html {
        std::fs::write(p, report::render(at, slowest))
            .with_context(|| format!("writing {}", p.display()))?;
        eprintln!("report written to {}", p.display());
    }
    if json {
        println!("{}", serde_json::to_string_pretty(at)?);
    } else {
        print_attribution(at);
    }
    Ok(())
}

/// `servescope attribute RUN`.
pub fn attribute_cmd(a: AttributeArgs) -> anyhow::Result<()> {
    let at = open_and_attribute(&a)?;
    output(&at, a.json, a.html.as_ref(), a.slowest)
}

/// `servescope diagnose RUN`: the findings of any run kind (record, load, pd, exp,
/// startup), by severity, each with its evidence and fix.
pub fn diagnose_cmd(a: AttributeArgs) -> anyhow::Result<()> {
    let (store, opts) = open_with_options(&a)?;
    let findings = diagnose_run_with(&store, a.run, &opts)
        .with_context(|| format!("diagnosing run {}", a.run))?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&findings)?);
        return Ok(());
    }
    if findings.is_empty() {
        println!("run {}: no finding", a.run);
    }
    print_findings(&findings);
    Ok(())
}

fn open_with_options(a: &AttributeArgs) -> anyhow::Result<(Store, AttributeOptions)> {
    a.db.existing()?;
    if let Some(c) = a.capacity_gbps {
        if !(c.is_finite() && c > 0.0) {
            bail!("--capacity-gbps must be a positive number (got {c})");
        }
    }
    let store = Store::open(&a.db.db).with_context(|| format!("opening {}", a.db.db.display()))?;
    let opts = AttributeOptions {
        capacity_gbps: a.capacity_gbps,
        slowest: a.slowest,
        engine_logs: read_logs(&a.engine_log)?,
    };
    Ok((store, opts))
}

fn open_and_attribute(a: &AttributeArgs) -> anyhow::Result<Attribution> {
    let (store, opts) = open_with_options(a)?;
    Ok(attribute(&store, a.run, &opts)?)
}

/// Largest engine log read.
const MAX_LOG_BYTES: u64 = 1 << 30;

fn read_logs(paths: &[PathBuf]) -> anyhow::Result<Vec<(String, EngineLog)>> {
    let mut out = Vec::new();
    for p in paths {
        let len = std::fs::metadata(p)
            .with_context(|| format!("--engine-log {}", p.display()))?
            .len();
        if len > MAX_LOG_BYTES {
            bail!(
                "--engine-log {}: {len} bytes, more than the 1 GiB read",
                p.display()
            );
        }
        let bytes = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
        out.push((
            p.display().to_string(),
            logs::parse(&String::from_utf8_lossy(&bytes)),
        ));
    }
    Ok(out)
}

fn print_findings(f: &[Finding]) {
    for x in f {
        println!("\n[{:?}] {} ({})", x.severity, x.title, x.rule);
        for e in &x.evidence {
            println!("  - {e}");
        }
        println!("  fix: {}", x.fix);
    }
}

fn print_attribution(at: &Attribution) {
    let j = &at.join;
    println!(
        "run {}: {} requests; {} with D's metrics block, {} with a P span, {} with a D span ({} spans unmatched)",
        at.run_id, j.requests, j.with_metrics_block, j.with_prefill_span, j.with_decode_span, j.unmatched_spans
    );
    for p in &at.points {
        println!(
            "\n== {} ({} requests, {} failed): TTFT p50 {} ms, mean {} ms",
            p.label,
            p.requests,
            p.failed,
            p.ttft_p50_ms.map_or("–".into(), |v| format!("{v:.1}")),
            p.ttft_mean_ms.map_or("–".into(), |v| format!("{v:.1}"))
        );
        let src = p.breakdowns.first();
        for (n, v) in &p.components_mean {
            let s = src
                .and_then(|b| b.components.iter().find(|c| c.name == n))
                .map_or("", |c| c.source);
            println!("  {n:<14} {v:>9.2} ms   {s}");
        }
        if let Some(rl) = &p.run_level {
            let st: Vec<String> = rl
                .stages
                .iter()
                .map(|s| format!("{} {:.2}", s.name, s.mean_ms))
                .collect();
            println!("  metrics only:  {}", st.join(", "));
        }
        let d = &p.decode;
        if let (Some(c), Some(e)) = (d.client_tpot_p50_ms, d.engine_itl_p50_ms) {
            println!(
                "  decode: client TPOT {c:.2} ms = engine ITL {e:.2} ms + streaming {:.2} ms; {:.1} tokens per arrival burst",
                c - e,
                d.tokens_per_burst_mean.unwrap_or(0.0)
            );
        }
    }
    let k = &at.kv;
    if k.transfers > 0.0 || k.failed > 0.0 {
        println!(
            "\nKV: {:.0} transfers, {:.1} MB, effective {} (capacity {}), {:.0} failed, {:.0} expired",
            k.transfers,
            k.bytes / 1e6,
            k.effective_gbps.map_or("–".into(), |g| format!("{g:.2} GB/s")),
            k.capacity_gbps.map_or("unknown".into(), |g| format!("{g:.2} GB/s")),
            k.failed,
            k.expired
        );
    }
    for n in &at.notes {
        println!("note: {n}");
    }
    if at.findings.is_empty() {
        println!("\nno finding");
    }
    print_findings(&at.findings);
}

#[cfg(test)]
mod tests {
    use super::listed_twice;

    #[test]
    fn the_same_instance_as_prefill_and_decode_is_found() {
        let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let p = v(&["http://10.0.0.1:8100", "http://10.0.0.2:8100/"]);
        assert_eq!(
            listed_twice(&p, &v(&["HTTP://10.0.0.2:8100"])),
            Some("http://10.0.0.2:8100/")
        );
        assert_eq!(listed_twice(&p, &v(&["http://10.0.0.3:8200"])), None);
        assert_eq!(
            listed_twice(&p, &v(&["http://10.0.0.1:8200", "http://10.0.0.1:8100"])),
            Some("http://10.0.0.1:8100")
        );
    }
}
