//! `servescope runs`: list recorded runs.

use super::common::{or_dash, StoreView};

pub type Args = StoreView;

pub fn run(a: Args) -> anyhow::Result<()> {
    let st = a.db.open_existing()?;
    let runs = st.runs()?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&runs)?);
        return Ok(());
    }
    println!(
        "{:>5} {:<8} {:<11} {:<25} {:>9} {:>7} {:>9} {:>9}  label",
        "run", "kind", "status", "started (UTC)", "duration", "agents", "samples", "requests"
    );
    for r in runs {
        let dur = or_dash(
            r.ended_ns
                .map(|e| format!("{:.1}s", (e - r.started_ns) as f64 / 1e9)),
        );
        println!(
            "{:>5} {:<8} {:<11} {:<25} {:>9} {:>7} {:>9} {:>9}  {}",
            r.id,
            r.kind,
            r.status,
            utc(r.started_ns),
            dur,
            r.agents,
            r.samples,
            r.requests,
            r.label
        );
    }
    Ok(())
}

pub use servescope_coordinator::text::utc;
