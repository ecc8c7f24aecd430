//! `servescope show RUN` of a `startup run`: each trial's waterfall (the phases
//! the run recorded), its logs' pattern tables and its error.

use anyhow::Context;
use servescope_coordinator::analysis::startup::Timeline;
use servescope_coordinator::orchestration::startup_run::timeline_text;

/// The trials of a startup run's stored arguments, as text.
pub fn render(args: &serde_json::Value) -> anyhow::Result<String> {
    use std::fmt::Write;
    let trials = args
        .get("trials")
        .and_then(|t| t.as_array())
        .context("the run's arguments hold no trials")?;
    let mut out = String::new();
    for (i, tr) in trials.iter().enumerate() {
        let _ = writeln!(out, "== trial {} of {}", i + 1, trials.len());
        for l in tr
            .get("logs")
            .and_then(|l| l.as_array())
            .into_iter()
            .flatten()
        {
            let s = |k: &str| l.get(k).map_or("?".into(), |v| v.to_string());
            let _ = writeln!(
                out,
                "log {}: table {}, {} lines, {} recognised, {} unplaced",
                s("name").trim_matches('"'),
                s("table").trim_matches('"'),
                s("lines"),
                s("recognised_lines"),
                l.get("unplaced_lines")
                    .map_or("0".into(), |v| v.to_string()),
            );
        }
        if let Some(e) = tr.get("error").and_then(|e| e.as_str()) {
            let _ = writeln!(out, "error: {e}");
        }
        let timeline: Timeline = serde_json::from_value(tr["timeline"].clone())
            .with_context(|| format!("reading trial {}'s timeline", i + 1))?;
        let answer = tr["client"]["answer_ns"].as_u64();
        out.push_str(&timeline_text(&timeline, answer));
    }
    Ok(out)
}
