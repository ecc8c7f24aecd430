//! Startup waterfalls: each trial of a `startup` run as one span bar per phase,
//! placed at its start on the trial's own clock (seconds since its first phase),
//! coloured as `startup compare` colours phases.

use crate::analysis::startup::Timeline;
use crate::report::bars::{self, Row, Segment};
use crate::report::startup::chart::color;

/// A startup run's trials (their merged timelines, as the run stored them).
#[derive(Debug, Clone, Default)]
pub struct StartupRun {
    pub run: i64,
    pub label: String,
    pub timelines: Vec<Timeline>,
}

/// The trials' timelines from a startup run's arguments (`trials[].timeline`);
/// trials whose timeline does not read are left out.
pub fn timelines(args: &serde_json::Value) -> Vec<Timeline> {
    args.get("trials")
        .and_then(|t| t.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|t| t.get("timeline"))
                .filter_map(|t| serde_json::from_value::<Timeline>(t.clone()).ok())
                .filter(|t| !t.phases.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// One waterfall per trial: a row per phase with a start and an end.
pub fn waterfalls(r: &StartupRun) -> Vec<String> {
    let mut out = Vec::new();
    for (i, t) in r.timelines.iter().enumerate() {
        let spans: Vec<_> = t
            .phases
            .iter()
            .filter_map(|p| Some((p, p.start_ns?, p.end_ns?)))
            .collect();
        let Some(t0) = spans.iter().map(|s| s.1).min() else {
            continue;
        };
        let rows: Vec<Row> = spans
            .iter()
            .map(|(p, a, b)| Row {
                label: p.kind.label().to_string(),
                segments: vec![Segment {
                    name: p.kind.name().to_string(),
                    start: (a - t0) as f64 / 1e9,
                    len: (b - a).max(0) as f64 / 1e9,
                    color: color(p.kind).to_string(),
                }],
            })
            .collect();
        let title = format!(
            "Startup waterfall: run {} {} · trial {}",
            r.run,
            r.label,
            i + 1
        );
        out.push(bars::render(&title, "s", &rows));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::startup::phase::{Phase, PhaseKind, Source};

    #[test]
    fn stored_trials_become_waterfalls() {
        let mut t = Timeline::new(Some("h".into()));
        t.phases
            .push(Phase::new(PhaseKind::ModelLoad, Source::Log, 1.0).span(0, 4_000_000_000));
        t.phases.push(
            Phase::new(PhaseKind::CudaGraphCapture, Source::Log, 1.0)
                .span(5_000_000_000, 7_000_000_000),
        );
        t.phases
            .push(Phase::new(PhaseKind::Warmup, Source::Log, 0.5));
        let args = serde_json::json!({"trials": [{"timeline": t}, {"timeline": "junk"}]});
        let tl = timelines(&args);
        assert_eq!(tl.len(), 1);
        let svgs = waterfalls(&StartupRun {
            run: 4,
            label: "cold".into(),
            timelines: tl,
        });
        assert_eq!(svgs.len(), 1);
        assert!(svgs[0].contains("model_load: 4.00 s") && svgs[0].contains(">2.00 s</text>"));
    }
}
