//! The attribution report: one self-contained HTML page with the findings, stacked
//! TTFT components against concurrency, a waterfall of the slowest requests, the KV
//! transfer rate over time beside the nodes' byte counters, and the tables behind
//! them. All text from the store is escaped.

use std::fmt::Write;

use crate::analysis::pd::attribution::{Attribution, PointAttribution};
use crate::report::chart::{Chart, Point, Series, XAxis, PALETTE};
use crate::report::svg::escape;
use crate::report::{bars, findings, frame};

/// Colour of a component (stable across charts).
pub fn color(name: &str) -> &'static str {
    const ORDER: [&str; 13] = [
        "client_wait",
        "ingress",
        "upstream",
        "p_queue",
        "p_prefill",
        "handoff",
        "kv_handshake",
        "kv_transfer",
        "d_wait",
        "d_queue",
        "d_first_step",
        "network_back",
        "other",
    ];
    let i = ORDER.iter().position(|n| *n == name).unwrap_or(ORDER.len());
    [
        "#bcbd22", "#7f7f7f", "#7f7f7f", "#1f77b4", "#aec7e8", "#c7c7c7", "#ff9896", "#d62728",
        "#ff7f0e", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b",
    ]
    .get(i)
    .copied()
    .unwrap_or("#17becf")
}

/// Stacked horizontal bars in the kit's look, segments coloured by component.
fn bars(rows: &[(String, Vec<(String, f64)>)], title: &str) -> String {
    let rows: Vec<bars::Row> = rows
        .iter()
        .map(|(label, segs)| bars::stacked_row(label, segs, |n| color(n).to_string()))
        .collect();
    bars::render(title, "ms", &rows)
}

fn point_label(p: &PointAttribution) -> String {
    match p.concurrency {
        Some(c) => format!("concurrency {c}"),
        None => p.label.clone(),
    }
}

/// The TTFT components: stacked mean components per point, the table behind them
/// and where each component comes from.
pub fn decomposition(a: &Attribution) -> String {
    let mut h = String::new();
    // Stacked mean components per point.
    let mut names: Vec<String> = Vec::new();
    for p in &a.points {
        for (n, _) in &p.components_mean {
            if !names.contains(n) {
                names.push(n.clone());
            }
        }
    }
    let rows: Vec<(String, Vec<(String, f64)>)> = a
        .points
        .iter()
        .map(|p| (point_label(p), p.components_mean.clone()))
        .collect();
    h.push_str("<h2>TTFT components vs concurrency (mean per request)</h2>");
    h.push_str(&bars(&rows, "mean TTFT by component"));
    // Table with sources.
    h.push_str("<table><tr><th>point</th><th>requests</th><th>failed</th><th>TTFT p50 ms</th>");
    for n in &names {
        let _ = write!(h, "<th>{}</th>", escape(n));
    }
    h.push_str("</tr>");
    for p in &a.points {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td>",
            escape(&p.label),
            p.requests,
            p.failed,
            p.ttft_p50_ms.map_or("–".into(), |v| format!("{v:.1}"))
        );
        for n in &names {
            let _ = write!(
                h,
                "<td>{}</td>",
                p.component(n).map_or("–".into(), |v| format!("{v:.2}"))
            );
        }
        h.push_str("</tr>");
    }
    h.push_str("</table>");
    if let Some(b) = a.points.iter().flat_map(|p| p.breakdowns.first()).next() {
        h.push_str("<p>Sources: ");
        for c in &b.components {
            let _ = write!(h, "<b>{}</b>: {}; ", escape(c.name), escape(c.source));
        }
        h.push_str("</p>");
    }
    h
}

/// The waterfall of the slowest requests at the most loaded point.
pub fn slowest_requests(a: &Attribution, slowest: usize) -> String {
    // Waterfall of the slowest requests at the most loaded point.
    let mut h = String::new();
    if let Some(p) = a.points.iter().max_by(|x, y| {
        x.concurrency
            .unwrap_or(0.0)
            .total_cmp(&y.concurrency.unwrap_or(0.0))
    }) {
        let mut b = p.breakdowns.clone();
        b.sort_by(|x, y| y.ttft_ms.total_cmp(&x.ttft_ms));
        let rows: Vec<(String, Vec<(String, f64)>)> = b
            .iter()
            .take(slowest.max(1))
            .map(|b| {
                (
                    b.request_id.clone(),
                    b.components
                        .iter()
                        .map(|c| (c.name.to_string(), c.ms))
                        .collect(),
                )
            })
            .collect();
        let _ = write!(
            h,
            "<h2>Slowest requests at {}</h2>",
            escape(&point_label(p))
        );
        h.push_str(&bars(&rows, "per-request waterfall (TTFT)"));
    }
    h
}

/// The page's own rules (after the shared frame's).
const CSS: &str = "body{max-width:1100px}td:first-child{text-align:left}";

/// The page.
pub fn render(a: &Attribution, slowest: usize) -> String {
    let css = format!("{CSS}{}", findings::CSS);
    let mut h = frame::open(&format!("servescope attribution, run {}", a.run_id), &css);
    let _ = write!(h, "<h1>P/D attribution, run {}</h1>", a.run_id);
    h.push_str("<h2>Findings</h2>");
    h.push_str(&findings::render(&a.findings));
    let j = &a.join;
    let _ = write!(h, "<p>Joined {} requests: {} with D's metrics block, {} with a P span, {} with a D span; {} spans matched no request.</p>", j.requests, j.with_metrics_block, j.with_prefill_span, j.with_decode_span, j.unmatched_spans);
    h.push_str(&decomposition(a));
    h.push_str("<h2>From engine metrics alone</h2><table><tr><th>point</th><th>stages (mean ms)</th><th>uncertainty</th></tr>");
    for p in &a.points {
        let st = p
            .run_level
            .as_ref()
            .map_or("no P/D scrapes around this point".into(), |r| {
                r.stages
                    .iter()
                    .map(|s| format!("{} {:.2}", s.name, s.mean_ms))
                    .collect::<Vec<_>>()
                    .join(", ")
            });
        let un = p
            .run_level
            .as_ref()
            .map_or(String::new(), |r| r.uncertainty.clone());
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td style=\"text-align:left\">{}</td></tr>",
            escape(&p.label),
            escape(&st),
            escape(&un)
        );
    }
    h.push_str("</table>");
    h.push_str(&slowest_requests(a, slowest));
    // KV.
    let k = &a.kv;
    h.push_str("<h2>KV transfers</h2>");
    let _ = write!(
        h,
        "<p>{:.0} transfers, {:.1} MB, effective {}; capacity {}; {:.0} failed, {:.0} expired.</p>",
        k.transfers,
        k.bytes / 1e6,
        k.effective_gbps
            .map_or("–".into(), |g| format!("{g:.2} GB/s")),
        match (k.capacity_gbps, &k.capacity_source) {
            (Some(c), Some(s)) => format!("{c:.2} GB/s ({})", escape(s)),
            _ => "not measured (run servescope fabric probe)".into(),
        },
        k.failed,
        k.expired
    );
    if !k.series.is_empty() {
        let mut targets: Vec<&str> = k.series.iter().map(|s| s.target.as_str()).collect();
        targets.dedup();
        let t0 = k.series.iter().map(|s| s.t_ns).min().unwrap_or(0);
        let series = targets
            .iter()
            .enumerate()
            .map(|(i, t)| Series {
                name: t.to_string(),
                color: PALETTE[i % PALETTE.len()].into(),
                markers: true,
                points: k
                    .series
                    .iter()
                    .filter(|s| s.target == *t)
                    .map(|s| Point {
                        x: (s.t_ns - t0) as f64 / 1e9,
                        y: s.wall_gbps,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            })
            .collect();
        let c = Chart {
            title: "KV bytes moved per second (vllm:nixl_bytes_transferred)".into(),
            x_label: "s since the first scrape".into(),
            y_label: "GB/s".into(),
            width: 760.0,
            height: 300.0,
            x_axis: XAxis::Linear,
            y_max: None,
            x_range: None,
            series,
        };
        h.push_str(&c.render());
    }
    if !k.nodes.is_empty() {
        h.push_str("<table><tr><th>node</th><th>RDMA tx B</th><th>RDMA rx B</th><th>TCP/IP tx B</th><th>TCP/IP rx B</th></tr>");
        for n in &k.nodes {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&n.host),
                n.rdma_tx_bytes,
                n.rdma_rx_bytes,
                n.net_tx_bytes,
                n.net_rx_bytes
            );
        }
        let _ = write!(
            h,
            "</table><p>Carrier by the counters: {}</p>",
            k.carrier.map_or("unknown".into(), |c| format!("{c:?}"))
        );
    }
    if !a.notes.is_empty() {
        h.push_str("<h2>Notes</h2><ul>");
        for n in &a.notes {
            let _ = write!(h, "<li>{}</li>", escape(n));
        }
        h.push_str("</ul>");
    }
    frame::close(&mut h);
    h
}
