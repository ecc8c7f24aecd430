//! `servescope startup infer` and the agents' side of `startup run`: phases from
//! NVML telemetry and from the startup lines the agents streamed.

use std::path::PathBuf;

use anyhow::Context;

use super::startup::{options, print_parse, secs, RunArgs};

#[derive(clap::Args, Debug)]
pub struct InferArgs {
    /// The recorded run (see `servescope runs`)
    pub run: i64,
    #[command(flatten)]
    pub db: super::common::DbFlag,
    /// GPU index on the agent
    #[arg(long, default_value_t = 0)]
    pub gpu: u32,
    /// Process to follow (default: the one holding the most GPU memory)
    #[arg(long)]
    pub pid: Option<u32>,
    /// Ground-truth markers (JSON lines: marker, edge, t_ns) to compare against
    #[arg(long)]
    pub markers: Option<std::path::PathBuf>,
    /// Print the inferred timeline as JSON
    #[arg(long)]
    pub json: bool,
}

pub(super) fn infer_cmd(a: InferArgs) -> anyhow::Result<()> {
    use servescope_coordinator::startup::{nvml, nvml_check};
    let store = servescope_coordinator::Store::open(&a.db.db)
        .with_context(|| format!("opening the store {}", a.db.db.display()))?;
    let (pts, pid) = nvml_check::points_from_store(&store, a.run, None, a.gpu, a.pid)
        .with_context(|| format!("reading run {}", a.run))?;
    let Some(pid) = pid else {
        anyhow::bail!("run {}: no process held memory on GPU {}", a.run, a.gpu);
    };
    let tl = nvml::infer(&pts, None);
    if a.json {
        println!("{}", serde_json::to_string_pretty(&tl)?);
    } else {
        println!(
            "run {} GPU {} pid {pid}: {} samples",
            a.run,
            a.gpu,
            pts.len()
        );
        let t0 = pts.first().map_or(0, |p| p.t_ns);
        let rel =
            |v: Option<i64>| v.map_or("-".to_string(), |t| format!("{:.3}", (t - t0) as f64 / 1e9));
        println!(
            "{:<26} {:>9} {:>9} {:>9} {:>5}  evidence",
            "phase", "start s", "end s", "dur s", "conf"
        );
        for p in &tl.phases {
            println!(
                "{:<26} {:>9} {:>9} {:>9} {:>5.1}  {}",
                p.kind.label(),
                rel(p.start_ns),
                rel(p.end_ns),
                p.seconds().map_or("-".into(), |s| format!("{s:.2}")),
                p.confidence,
                p.attrs.get("evidence").cloned().unwrap_or_default()
            );
        }
    }
    if let Some(m) = &a.markers {
        let text =
            std::fs::read_to_string(m).with_context(|| format!("reading {}", m.display()))?;
        let rows = nvml_check::compare(&tl, &nvml_check::parse_markers(&text));
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
    }
    Ok(())
}

/// The agents' side of a startup run: their ring buffers (which cover the trials)
/// recorded into the store, the startup log lines they streamed parsed, and the
/// NVML-inferred phases of the process holding the most GPU memory, cross-checked.
pub(super) async fn agent_sources(a: &RunArgs) -> anyhow::Result<()> {
    use servescope_coordinator::record::{record, RecordConfig};
    use servescope_coordinator::startup::{agent_logs, nvml, nvml_check};
    let eps = super::common::AgentFlags {
        agents: a.agents.clone(),
        token_file: a.token_file.clone(),
        tls_ca: None,
        tls_domain: None,
    }
    .endpoints()?;
    let tmp;
    let db = match &a.db {
        Some(d) => d.clone(),
        None => {
            tmp = tempfile_path()?;
            tmp.clone()
        }
    };
    let mut cfg = RecordConfig::new(eps, std::time::Duration::from_secs(2), db.clone());
    cfg.include_history = true;
    cfg.label = format!("{} (agents)", a.label);
    let out = record(cfg, Default::default())
        .await
        .context("recording the agents' buffers")?;
    println!(
        "\n== agents: run {} ({} agent(s))",
        out.run_id,
        out.agents.len()
    );
    let store = servescope_coordinator::Store::open(&db)
        .with_context(|| format!("opening {}", db.display()))?;
    let mut parse = options(&a.time)?;
    parse.min_gap_s = a.min_gap;
    let logs = agent_logs::parse_run(&store, out.run_id, &parse)?;
    if logs.is_empty() {
        println!("no startup log lines streamed by the agents (are the logs regular files or in --startup-log-glob?)");
    }
    for l in &logs {
        print_parse(&l.parse, parse.utc_offset_s);
    }
    let (pts, pid) = nvml_check::points_from_store(&store, out.run_id, None, 0, None)?;
    match pid {
        None => println!("nvml: no process held GPU memory during the window"),
        Some(pid) => {
            let tl = nvml::infer(&pts, None);
            println!("nvml: pid {pid}, {} phases inferred", tl.phases.len());
            for p in &tl.phases {
                println!(
                    "  {:<26} {:>8} s  (confidence {:.1})",
                    p.kind.label(),
                    secs(p.seconds()),
                    p.confidence
                );
            }
            for l in &logs {
                for d in nvml_check::cross_check(&l.parse.timeline, &tl) {
                    println!("DISAGREEMENT {}: {d}", l.parse.name);
                }
            }
        }
    }
    Ok(())
}

fn tempfile_path() -> anyhow::Result<PathBuf> {
    Ok(std::env::temp_dir().join(format!(
        "servescope-startup-{}-{}.db",
        std::process::id(),
        servescope_proto::now_ns()
    )))
}
