//! The report page: inline CSS, the runs, the charts (inline SVG), a summary table
//! and a failure table. No script, no external resource; all data text escaped.

use std::fmt::Write;

use super::figures::charts;
use super::frame;
use super::svg::{escape, format_value};
use super::sweep::{groups, run_name, short_label};
use super::RunData;
use crate::store::PointRow;
use servescope_loadgen::metrics::Aggregate;

/// The report's own rules (after the shared frame's).
pub(crate) const CSS: &str = "
h2{margin-top:28px;border-bottom:1px solid var(--line);padding-bottom:4px}
p.sub{color:var(--muted);margin:0 0 16px;font-size:13px}
.grid{display:flex;flex-wrap:wrap;gap:16px}
th,td{white-space:nowrap}th{white-space:normal;vertical-align:bottom}
td.bad{font-weight:600}td.ok{text-align:left}td.wrap{white-space:normal;max-width:420px;text-align:left}
.tw{overflow-x:auto;max-width:100%}
.notes{font-size:12.5px;color:var(--muted);max-width:1100px}
";

pub use crate::text::utc;

fn td(s: &mut String, v: &str) {
    let _ = write!(s, "<td>{}</td>", escape(v));
}

fn lat(s: &servescope_loadgen::stats::Summary, p: Option<f64>) -> String {
    if s.count == 0 {
        return "–".into();
    }
    match p {
        None => format_value(s.mean),
        Some(p) => s.percentile(p).map_or("–".into(), format_value),
    }
}

fn runs_table(s: &mut String, runs: &[RunData]) {
    s.push_str("<div class=tw><table><tr><th>run</th><th class=l>label</th><th class=l>kind</th><th class=l>status</th><th class=l>started (UTC)</th><th>points</th><th>trials</th><th>requests</th></tr>");
    for r in runs {
        let trials = r.points.iter().map(|p| p.trial + 1).max().unwrap_or(0);
        let _ = write!(
            s,
            "<tr><td>{}</td><td class=l>{}</td><td class=l>{}</td><td class=l>{}</td><td class=l>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            r.run.id,
            escape(&r.run.label),
            escape(r.run.kind.as_str()),
            escape(&r.run.status),
            utc(r.run.started_ns),
            groups(r).len(),
            trials,
            r.run.requests
        );
    }
    s.push_str("</table></div>");
}

fn summary_row(s: &mut String, r: &RunData, p: &PointRow) {
    let a: &Aggregate = &p.aggregate;
    let _ = write!(
        s,
        "<tr><td class=l>{}</td><td class=l>{}</td><td>{}</td>",
        r.run.id,
        escape(&short_label(p)),
        p.trial
    );
    td(s, &format_value(a.request_throughput));
    td(s, &format_value(a.output_throughput));
    td(
        s,
        &a.per_gpu
            .map_or("–".into(), |n| format_value(n.output_throughput)),
    );
    td(s, &a.request_goodput.map_or("–".into(), format_value));
    for sm in [&a.ttft_ms, &a.tpot_ms] {
        td(s, &lat(sm, None));
        td(s, &lat(sm, Some(99.0)));
    }
    td(s, &lat(&a.itl_ms, None));
    td(
        s,
        &(if a.e2el_ms.count == 0 {
            "–".into()
        } else {
            format_value(a.e2el_ms.median)
        }),
    );
    td(s, &lat(&a.e2el_ms, Some(99.0)));
    td(s, &a.peak_concurrency.to_string());
    let lag = p
        .config
        .max_dispatch_lag_ms
        .map_or("–".into(), format_value);
    td(s, &lag);
    s.push_str("</tr>");
}

fn summary_table(s: &mut String, runs: &[RunData]) {
    s.push_str("<div class=tw><table><tr><th class=l>run</th><th class=l>point</th><th>trial</th><th>req/s</th><th>out tok/s</th><th>out tok/s per GPU</th><th>goodput req/s</th><th>TTFT mean ms</th><th>TTFT p99 ms</th><th>TPOT mean ms</th><th>TPOT p99 ms</th><th>ITL mean ms</th><th>E2EL p50 ms</th><th>E2EL p99 ms</th><th>peak in flight</th><th>max dispatch lag ms</th></tr>");
    for r in runs {
        for p in &r.points {
            summary_row(s, r, p);
        }
    }
    s.push_str("</table></div>");
}

/// The probe's verdict from a point's config: text and CSS class.
fn probe(p: &PointRow) -> (String, &'static str) {
    match p.config.probe.as_ref().map(|v| v.failure()) {
        Some(None) => ("ok".into(), "ok"),
        Some(Some(d)) => (format!("FAILED {d}"), "bad wrap"),
        None => ("not sent".into(), "l"),
    }
}

fn failure_table(s: &mut String, runs: &[RunData]) {
    s.push_str("<div class=tw><table><tr><th class=l>run</th><th class=l>point</th><th>trial</th><th>requests</th><th>completed</th><th>failed</th><th>failure rate</th><th class=l>failed by class</th><th class=l>output probe</th></tr>");
    for r in runs {
        for p in &r.points {
            let a = &p.aggregate;
            let mut classes: Vec<String> = a
                .errors_by_class
                .iter()
                .map(|(k, n)| format!("{k}: {n}"))
                .collect();
            for e in r.errors.get(&p.id).into_iter().flatten() {
                classes.push(format!("{} × {}", e.count, e.detail));
            }
            let rate_class = if a.failed > 0 { " class=bad" } else { "" };
            let (verdict, vclass) = probe(p);
            let _ = write!(
                s,
                "<tr><td class=l>{}</td><td class=l>{}</td><td>{}</td><td>{}</td><td>{}</td><td{rate_class}>{}</td><td{rate_class}>{:.1} %</td><td class=\"wrap\">{}</td><td class=\"{vclass}\">{}</td></tr>",
                escape(&run_name(r)),
                escape(&short_label(p)),
                p.trial,
                a.num_requests,
                a.completed,
                a.failed,
                a.failure_rate * 100.0,
                escape(&if classes.is_empty() { "–".into() } else { classes.join(", ") }),
                escape(&verdict)
            );
        }
    }
    s.push_str("</table></div>");
}

/// The load sections of a page: the charts by section, the summary, the failures
/// and the notes on definitions.
pub(crate) fn load_sections(s: &mut String, runs: &[RunData]) {
    let mut section = "";
    for (name, chart) in charts(runs) {
        if name != section {
            if !section.is_empty() {
                s.push_str("</div>");
            }
            let _ = write!(s, "<h2>{}</h2><div class=grid>", escape(name));
            section = name;
        }
        s.push_str(&chart.render());
    }
    if !section.is_empty() {
        s.push_str("</div>");
    }
    s.push_str("<h2>Summary</h2>");
    summary_table(s, runs);
    s.push_str("<h2>Failures and output probe</h2>");
    failure_table(s, runs);
    s.push_str("<div class=notes><p>TTFT, TPOT, ITL and E2EL follow <code>vllm bench serve</code>'s definitions (TPOT = (E2EL − TTFT)/(output tokens − 1)); percentiles are over all samples of a point. Throughputs count successful requests over the point's duration. Max dispatch lag is the client's own delay in sending (large values mean the client, not the server, was saturated). The output probe is a counting prompt with a known continuation, sent after each point.</p></div>");
}

/// The whole report page.
pub fn render_html(runs: &[RunData]) -> String {
    let ids: Vec<String> = runs.iter().map(|r| r.run.id.to_string()).collect();
    let mut s = frame::open(&format!("servescope report: run {}", ids.join(", ")), CSS);
    let _ = write!(
        s,
        "<h1>servescope load report</h1><p class=sub>runs {} · latencies count from each request's scheduled time (waiting for a slot included) · points: mean over trials, whiskers min–max</p>",
        escape(&ids.join(", "))
    );
    s.push_str("<h2>Runs</h2>");
    runs_table(&mut s, runs);
    load_sections(&mut s, runs);
    frame::close(&mut s);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formats_epoch_and_leap_day() {
        assert_eq!(utc(0), "1970-01-01 00:00:00");
        // 2024-02-29 12:34:56 UTC
        assert_eq!(utc(1_709_210_096 * 1_000_000_000), "2024-02-29 12:34:56");
    }
}
