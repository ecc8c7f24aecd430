//! Fabric probes as the report shows them: bandwidth against message size per
//! probe, one row per probe with its headline bandwidth, and each side's transport
//! truth (library, provider, fabric, lanes, memory) with what it found wrong.

use std::fmt::Write;

use crate::analysis::fabric::matrix::headline_bps;
use crate::analysis::fabric::units::fmt_size;
use crate::report::chart::{Chart, Point, Series, XAxis, PALETTE};
use crate::report::svg::escape;
use crate::store::ProbeOutcome;

/// A fabric run's probes.
#[derive(Debug, Clone, Default)]
pub struct FabricRun {
    pub run: i64,
    pub label: String,
    pub probes: Vec<ProbeOutcome>,
}

fn probe_name(run: i64, o: &ProbeOutcome) -> String {
    format!("run {run}: {} → {} ({})", o.from, o.to, o.transport)
}

/// Bandwidth (GB/s) against message size (KiB), one series per probe and operation.
pub fn chart(runs: &[FabricRun]) -> Chart {
    let mut series = Vec::new();
    for r in runs {
        for o in &r.probes {
            let mut ops: Vec<&str> = o.results.iter().map(|x| x.op.as_str()).collect();
            ops.sort_unstable();
            ops.dedup();
            for op in ops {
                let points = o
                    .results
                    .iter()
                    .filter(|x| x.op == op)
                    .map(|x| Point {
                        x: x.size as f64 / 1024.0,
                        y: x.bandwidth_bps / 1e9,
                        tip: Some(format!(
                            "{} {op}: {:.2} GB/s",
                            fmt_size(x.size),
                            x.bandwidth_bps / 1e9
                        )),
                        ..Default::default()
                    })
                    .collect();
                series.push(Series {
                    name: format!("{} {op}", probe_name(r.run, o)),
                    color: PALETTE[series.len() % PALETTE.len()].into(),
                    markers: true,
                    points,
                    ..Default::default()
                });
            }
        }
    }
    Chart {
        title: "Fabric probe: bandwidth vs message size".into(),
        x_label: "message size (KiB)".into(),
        y_label: "GB/s".into(),
        width: 640.0,
        height: 360.0,
        x_axis: XAxis::Sweep,
        y_max: None,
        x_range: None,
        series,
    }
}

fn truth_cell(o: &ProbeOutcome) -> String {
    let mut s = String::new();
    for (side, sum) in [("driver", &o.driver), ("responder", &o.responder)] {
        let Some(t) = sum.as_ref().and_then(|x| x.truth.as_ref()) else {
            continue;
        };
        let _ = write!(
            s,
            "<div><b>{side}</b>: {} {} · provider {} · fabric {} · lanes [{}] · rma {} · memory {}",
            escape(&t.library),
            escape(&t.version),
            escape(&t.provider),
            escape(&t.fabric),
            escape(&t.lanes.join(", ")),
            escape(&t.rma),
            escape(&t.memory)
        );
        for f in &t.findings {
            let _ = write!(
                s,
                "<br><span class=bad>{}</span>: {} (fix: {})",
                escape(&f.name),
                escape(&f.evidence.join("; ")),
                escape(&f.fix)
            );
        }
        s.push_str("</div>");
    }
    if s.is_empty() {
        s.push_str("no transport truth recorded");
    }
    s
}

/// The probes table: pair, transport, headline bandwidth, error, transport truth.
pub fn table(runs: &[FabricRun]) -> String {
    let mut s = String::from("<div class=tw><table><tr><th class=l>run</th><th class=l>from → to</th><th class=l>transport</th><th>GB/s at the largest size</th><th class=l>error</th><th class=l>transport truth</th></tr>");
    for r in runs {
        for o in &r.probes {
            let bw = headline_bps(o).map_or("–".into(), |b| format!("{:.2}", b / 1e9));
            let _ = write!(
                s,
                "<tr><td class=l>{} {}</td><td class=l>{} → {}</td><td class=l>{}</td><td>{bw}</td><td class=\"{}\">{}</td><td class=wrap>{}</td></tr>",
                r.run,
                escape(&r.label),
                escape(&o.from),
                escape(&o.to),
                escape(&o.transport),
                if o.error.is_some() { "bad wrap" } else { "l" },
                escape(o.error.as_deref().unwrap_or("–")),
                truth_cell(o)
            );
        }
    }
    s.push_str("</table></div>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use servescope_proto::v1::{ProbeFinding, ProbeSizeResult, ProbeSummary, TransportTruthMsg};

    #[test]
    fn probes_draw_and_tell_their_truth() {
        let o = ProbeOutcome {
            from: "a<1>".into(),
            to: "b".into(),
            transport: "libfabric:tcp".into(),
            results: [4096u64, 1 << 20]
                .iter()
                .map(|&size| ProbeSizeResult {
                    size,
                    op: "tag".into(),
                    bandwidth_bps: size as f64 * 1000.0,
                    ..Default::default()
                })
                .collect(),
            driver: Some(ProbeSummary {
                truth: Some(TransportTruthMsg {
                    library: "libfabric".into(),
                    provider: "tcp".into(),
                    findings: vec![ProbeFinding {
                        name: "tcp_not_efa".into(),
                        fix: "use efa".into(),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let runs = [FabricRun {
            run: 3,
            label: "x".into(),
            probes: vec![o],
        }];
        let svg = chart(&runs).render();
        assert!(svg.contains("a&lt;1&gt; → b") && !svg.contains("no data"));
        let t = table(&runs);
        assert!(
            t.contains("provider tcp") && t.contains("tcp_not_efa"),
            "{t}"
        );
        assert!(t.contains("<td>1.05</td>"), "{t}");
    }
}
