//! `servescope startup infer` and the agents' side of `startup run`: phases from
//! NVML telemetry (every GPU side by side, the slowest rank setting the waterfall)
//! and from the startup lines the agents streamed.

use std::path::{Path, PathBuf};

use anyhow::Context;
use servescope_coordinator::analysis::startup::agent_logs::{self, AgentLogParse};
use servescope_coordinator::analysis::startup::gpus::{self, GpuStartup, SeriesFilter};
use servescope_coordinator::analysis::startup::{nvml_check, LogParse, ParseOptions, Timeline};
use servescope_coordinator::orchestration::startup_run::{self as live, ClientTimes, Trial};
use servescope_coordinator::Store;

use super::startup_common::{options, print_parse, secs, TimeFlags};

#[derive(clap::Args, Debug)]
pub struct InferArgs {
    /// The recorded run (see `servescope runs`)
    pub run: i64,
    #[command(flatten)]
    pub db: super::common::DbFlag,
    /// Only this GPU index (default: every GPU a process held memory on)
    #[arg(long)]
    pub gpu: Option<u32>,
    /// Process to follow (default: per GPU, the one holding the most GPU memory)
    #[arg(long)]
    pub pid: Option<u32>,
    /// Ground-truth markers (JSON lines: marker, edge, t_ns) to compare the slowest
    /// rank against
    #[arg(long)]
    pub markers: Option<PathBuf>,
    /// Gaps shorter than this are not shown as unattributed time (s)
    #[arg(long, default_value_t = 1.0)]
    pub min_gap: f64,
    /// Write an HTML page: the waterfall and the GPUs side by side
    #[arg(short = 'o', long = "output")]
    pub output: Option<PathBuf>,
    /// Print the per-GPU timelines and the waterfall as JSON
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub time: TimeFlags,
}

fn open(db: &Path) -> anyhow::Result<Store> {
    Store::open(db).with_context(|| format!("opening the store {}", db.display()))
}

/// Per-GPU cold starts of a run (in a window of the coordinator's clock).
fn infer_gpus(store: &Store, run: i64, f: SeriesFilter) -> anyhow::Result<Vec<GpuStartup>> {
    let series =
        gpus::series_from_store(store, run, f).with_context(|| format!("reading run {run}"))?;
    Ok(gpus::infer_all(&series))
}

/// The waterfall: log phases, NVML phases where the logs have none, gaps.
fn waterfall(logs: &[LogParse], gpus: &[GpuStartup], c: &ClientTimes, min_gap: f64) -> Timeline {
    let nvml = gpus::waterfall_source(gpus);
    live::merge_with(logs, nvml.as_ref(), c, min_gap)
}

/// Log vs NVML disagreements, one line each.
fn print_disagreements(logs: &[LogParse], gpus: &[GpuStartup]) {
    if let Some(n) = gpus::waterfall_source(gpus) {
        for l in logs {
            for d in nvml_check::cross_check(&l.timeline, &n) {
                println!("DISAGREEMENT {}: {d}", l.name);
            }
        }
    }
}

pub(super) fn infer_cmd(a: InferArgs) -> anyhow::Result<()> {
    if !(a.min_gap.is_finite() && a.min_gap >= 0.0) {
        anyhow::bail!("--min-gap must be ≥ 0");
    }
    let store = open(&a.db.db)?;
    let f = SeriesFilter {
        gpu: a.gpu,
        pid: a.pid,
        ..Default::default()
    };
    let gpus = infer_gpus(&store, a.run, f)?;
    if gpus.is_empty() {
        let which = a.gpu.map_or("any GPU".into(), |g| format!("GPU {g}"));
        anyhow::bail!("run {}: no process held memory on {which}", a.run);
    }
    let mut o = options(&a.time)?;
    o.min_gap_s = a.min_gap;
    if a.time.year.is_none() {
        let row = store
            .run(a.run)
            .with_context(|| format!("reading run {}", a.run))?;
        o.year = servescope_proto::ext::year_of_ns(row.started_ns);
    }
    let logs: Vec<LogParse> = agent_logs::parse_run(&store, a.run, &o)
        .with_context(|| format!("reading run {}", a.run))?
        .into_iter()
        .map(|l| l.parse)
        .collect();
    let client = ClientTimes::default();
    let t = waterfall(&logs, &gpus, &client, a.min_gap);
    if a.json {
        let v = serde_json::json!({"gpus": gpus, "waterfall": t});
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!(
            "run {}: {} GPU(s) with a cold start, {} streamed log(s)",
            a.run,
            gpus.len(),
            logs.len()
        );
        for g in &gpus {
            println!("{} pid {}: {} samples", g.label(), g.pid, g.samples);
        }
        print!("{}", gpus::side_by_side_text(&gpus));
        println!();
        print!("{}", live::timeline_text(&t, None));
        print_disagreements(&logs, &gpus);
    }
    if let Some(m) = &a.markers {
        let slow = gpus::slowest(&gpus).map(|i| &gpus[i]);
        print_markers(m, slow.map(|g| &g.timeline))?;
    }
    if let Some(out) = &a.output {
        let tr = Trial {
            index: 0,
            timeline: t,
            logs,
            client,
            error: None,
        };
        let page = live::render_html_with(&[tr], &format!("run {}", a.run), "", &gpus);
        std::fs::write(out, page).with_context(|| format!("writing {}", out.display()))?;
        eprintln!("wrote {}", out.display());
    }
    Ok(())
}

fn print_markers(m: &Path, tl: Option<&Timeline>) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(m).with_context(|| format!("reading {}", m.display()))?;
    let empty = Timeline::default();
    let rows = nvml_check::compare(tl.unwrap_or(&empty), &nvml_check::parse_markers(&text));
    println!(
        "\n{:<14} {:>10} {:>10} {:>9} {:>9} {:>4}   (goal: boundaries ±{} ms, durations > 2 s within {:.0} %)",
        "marker", "Δbegin ms", "Δend ms", "truth s", "nvml s", "ok",
        nvml_check::BOUNDARY_MS, nvml_check::DURATION_FRACTION * 100.0
    );
    let f = |v: Option<f64>, p: usize| v.map_or("-".to_string(), |x| format!("{x:.p$}"));
    for r in &rows {
        println!(
            "{:<14} {:>10} {:>10} {:>9} {:>9} {:>4}",
            r.marker,
            f(r.d_begin_ms, 0),
            f(r.d_end_ms, 0),
            f(r.truth_s, 2),
            f(r.inferred_s, 2),
            if r.ok { "yes" } else { "NO" }
        );
    }
    Ok(())
}

/// What `startup run --agent` needs to record the agents.
pub struct AgentSources<'a> {
    pub agents: &'a [String],
    pub token_file: Option<PathBuf>,
    pub db: Option<&'a Path>,
    pub label: &'a str,
    pub parse: ParseOptions,
}

/// The agents' ring buffers recorded into a store, and the log lines they streamed.
pub struct Recorded {
    store: Store,
    pub run_id: i64,
    pub agents: usize,
    pub logs: Vec<AgentLogParse>,
}

impl Recorded {
    /// The per-GPU cold starts inside a trial (coordinator clock, ns).
    pub fn gpus(&self, tr: &Trial) -> anyhow::Result<Vec<GpuStartup>> {
        let c = &tr.client;
        let from = i64::try_from(c.cmd_start_ns.unwrap_or(c.start_ns)).unwrap_or(0);
        let to = c
            .answer_ns
            .and_then(|v| i64::try_from(v).ok())
            .map_or(i64::MAX, |v| v.saturating_add(2_000_000_000));
        let f = SeriesFilter {
            window: Some((from, to)),
            ..Default::default()
        };
        infer_gpus(&self.store, self.run_id, f)
    }

    /// The agents' part of the output: streamed logs, NVML per GPU, disagreements.
    pub fn print(&self, gpus: &[GpuStartup], offset_s: i32) {
        println!(
            "\n== agents: run {} ({} agent(s))",
            self.run_id, self.agents
        );
        if self.logs.is_empty() {
            println!("no startup log lines streamed by the agents (are the logs regular files or in --startup-log-glob?)");
        }
        for l in &self.logs {
            print_parse(&l.parse, offset_s);
        }
        if gpus.is_empty() {
            println!("nvml: no process held GPU memory during the window");
            return;
        }
        for g in gpus {
            println!(
                "nvml: {} pid {}, {} phases inferred",
                g.label(),
                g.pid,
                g.timeline.phases.len()
            );
            for p in &g.timeline.phases {
                println!(
                    "  {:<26} {:>8} s  (confidence {:.1})",
                    p.kind.label(),
                    secs(p.seconds()),
                    p.confidence
                );
            }
        }
        let logs: Vec<LogParse> = self.logs.iter().map(|l| l.parse.clone()).collect();
        print_disagreements(&logs, gpus);
    }
}

/// The agents' side of a startup run: their ring buffers (which cover the trials)
/// recorded into the store and the startup log lines they streamed parsed.
pub(super) async fn agent_sources(s: AgentSources<'_>) -> anyhow::Result<Recorded> {
    let eps = super::common::AgentFlags {
        agents: s.agents.to_vec(),
        token_file: s.token_file.clone(),
        tls_ca: None,
        tls_domain: None,
        tls_client_cert: None,
        tls_client_key: None,
    }
    .endpoints()?;
    let db = match s.db {
        Some(d) => d.to_path_buf(),
        None => tempfile_path(),
    };
    record_agent_logs(eps, &db, s.label, &s.parse).await
}

/// Records the agents' ring buffers into the store at `db` and parses the startup
/// log lines they streamed.
pub(super) async fn record_agent_logs(
    eps: Vec<servescope_coordinator::AgentEndpoint>,
    db: &Path,
    label: &str,
    parse: &ParseOptions,
) -> anyhow::Result<Recorded> {
    use servescope_coordinator::orchestration::record::{record, RecordConfig};
    let mut cfg = RecordConfig::new(eps, std::time::Duration::from_secs(2), db.to_path_buf());
    cfg.include_history = true;
    cfg.label = format!("{label} (agents)");
    let out = record(cfg, Default::default())
        .await
        .context("recording the agents' buffers")?;
    let store = open(db)?;
    let logs = agent_logs::parse_run(&store, out.run_id, parse)?;
    Ok(Recorded {
        store,
        run_id: out.run_id,
        agents: out.agents.len(),
        logs,
    })
}

fn tempfile_path() -> PathBuf {
    std::env::temp_dir().join(format!(
        "servescope-startup-{}-{}.db",
        std::process::id(),
        servescope_proto::now_ns()
    ))
}
