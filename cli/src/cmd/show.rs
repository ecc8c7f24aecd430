//! `servescope show RUN`: what a stored run holds.

use servescope_coordinator::analysis::summary::summarize;
use servescope_coordinator::store::RunKind;
use servescope_coordinator::store::ERRORS_SHOWN;

use super::common::{fmt_bytes, fmt_kinds, StoreView};
use super::table;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Run id (see `servescope runs`)
    pub run: i64,
    #[command(flatten)]
    pub view: StoreView,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let st = a.view.db.open_existing()?;
    let r = st.run(a.run)?;
    let points = st.points(a.run)?;
    if a.view.json {
        let mut pts = Vec::with_capacity(points.len());
        for p in &points {
            let errors = st.point_errors(p.id, ERRORS_SHOWN)?;
            pts.push(serde_json::json!({"point": p.point, "trial": p.trial, "label": p.label, "config": p.config, "aggregate": p.aggregate, "errors": errors}));
        }
        let sums = if r.kind == RunKind::Record {
            Some(summarize(&st, a.run)?)
        } else {
            None
        };
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({"run": r, "points": pts, "agents": sums})
            )?
        );
        return Ok(());
    }
    println!("run {} ({}, {}) {}", r.id, r.kind, r.status, r.label);
    if !points.is_empty() {
        println!("{}", table::HEADER);
        for p in &points {
            let label = if points.iter().any(|x| x.trial > 0) {
                format!("{} #{}", p.label, p.trial + 1)
            } else {
                p.label.clone()
            };
            println!("{}", table::row(&label, &p.aggregate));
            let errors = st.point_errors(p.id, ERRORS_SHOWN)?;
            for n in table::notes(&p.aggregate)
                .into_iter()
                .chain(table::error_lines(&errors))
            {
                println!("{n}");
            }
            if let Some(d) = p.config.probe.as_ref().and_then(|v| v.failure()) {
                println!(
                    "  WARNING correctness probe failed: {}",
                    serde_json::json!(d)
                );
            }
        }
    }
    if r.kind == RunKind::Startup {
        let args = st.run_args(a.run)?;
        print!("{}", super::show_startup::render(&args)?);
    }
    if r.kind == RunKind::Record {
        for s in summarize(&st, a.run)? {
            let host = s
                .agent
                .as_ref()
                .map(|x| x.hostname.clone())
                .unwrap_or_default();
            println!(
                "{host}: {} over {:.1} s; cpu mean {:.1}%; net rx {} tx {}",
                fmt_kinds(&s.samples_by_kind),
                s.span_s,
                s.cpu_mean_pct,
                fmt_bytes(s.net_rx_bytes as f64),
                fmt_bytes(s.net_tx_bytes as f64)
            );
            if let Some(ag) = s.agent.as_ref().filter(|a| a.lost > 0) {
                println!(
                    "  {} samples lost in gaps (no longer held by the agent when asked for)",
                    ag.lost
                );
            }
            for g in &s.gpus {
                println!(
                    "  gpu {}: util mean {:.1}% | memory max {} | power mean {:.0} W",
                    g.index,
                    g.util_mean_pct,
                    fmt_bytes(g.memory_used_max_bytes as f64),
                    g.power_mean_w
                );
            }
        }
        let agents = st.run_agents(a.run)?;
        let instance = |id: i64| {
            agents
                .iter()
                .find(|x| x.agent_id == id)
                .map(|x| format!("{} instance {:x}", x.address, x.instance))
                .unwrap_or_else(|| format!("agent {id}"))
        };
        for (before, after) in st.restarts(a.run)? {
            println!(
                "agent restarted: {} → {} (its sequences started over; recorded apart)",
                instance(before),
                instance(after)
            );
        }
    }
    Ok(())
}
