//! The unified page: the shared frame, findings first, then each section whose data
//! the runs hold. No script, no external resource; all store text escaped.

use std::fmt::Write;

use super::timeline::{request_charts, telemetry_charts, Axis};
use super::{fabric, startup, Sources};
use crate::report::chart::Chart;
use crate::report::html::{load_sections, utc, CSS as LOAD_CSS};
use crate::report::pd::{decomposition, slowest_requests};
use crate::report::svg::escape;
use crate::report::{findings, frame};

const CSS: &str = "section{margin-bottom:8px}p.run{font-weight:600;margin:14px 0 4px}";

fn findings_section(h: &mut String, src: &Sources) {
    h.push_str("<section id=findings><h2>Findings</h2>");
    for (run, f) in &src.findings {
        let _ = write!(
            h,
            "<p class=run>run {} · {}{}</p>",
            run.id,
            escape(run.kind.as_str()),
            if run.label.is_empty() {
                String::new()
            } else {
                format!(" · {}", escape(&run.label))
            }
        );
        h.push_str(&findings::render(f));
    }
    h.push_str("</section>");
}

fn runs_table(h: &mut String, src: &Sources) {
    h.push_str("<section id=runs><h2>Runs</h2><div class=tw><table><tr><th>run</th><th class=l>kind</th><th class=l>label</th><th class=l>status</th><th class=l>started (UTC)</th><th>agents</th><th>samples</th><th>requests</th></tr>");
    for r in &src.runs {
        let _ = write!(
            h,
            "<tr><td>{}</td><td class=l>{}</td><td class=l>{}</td><td class=l>{}</td><td class=l>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            r.id,
            escape(r.kind.as_str()),
            escape(&r.label),
            escape(&r.status),
            utc(r.started_ns),
            r.agents,
            r.samples,
            r.requests
        );
    }
    h.push_str("</table></div>");
    if !src.telemetry_runs.is_empty() {
        let ids: Vec<String> = src.telemetry_runs.iter().map(i64::to_string).collect();
        let _ = write!(
            h,
            "<p class=sub>node telemetry from run(s) {}</p>",
            ids.join(", ")
        );
    }
    h.push_str("</section>");
}

fn grid(h: &mut String, charts: &[Chart]) {
    h.push_str("<div class=grid>");
    for c in charts {
        h.push_str(&c.render());
    }
    h.push_str("</div>");
}

/// The time axis every timed chart shares: requests and telemetry together.
fn axis(src: &Sources) -> Option<Axis> {
    let spans = src
        .requests
        .iter()
        .filter_map(|r| r.span())
        .chain(src.telemetry.span());
    let (a, b) = spans.reduce(|x, y| (x.0.min(y.0), x.1.max(y.1)))?;
    Some(Axis {
        t0_ns: a,
        seconds: (b - a) as f64 / 1e9,
    })
}

fn timeline_section(h: &mut String, src: &Sources) {
    let Some(axis) = axis(src) else { return };
    let mut reqs = request_charts(&axis, &src.requests);
    reqs.retain(|c| c.series.iter().any(|s| !s.points.is_empty()));
    let tele = telemetry_charts(&axis, &src.telemetry);
    if reqs.is_empty() && tele.is_empty() {
        return;
    }
    let _ = write!(
        h,
        "<section id=timeline><h2>On one clock: requests and node telemetry</h2><p class=sub>x: seconds since {} UTC (agents' samples moved onto the coordinator's clock by their measured offsets)</p>",
        utc(axis.t0_ns)
    );
    grid(h, &reqs);
    if !tele.is_empty() {
        h.push_str("<h2>Node telemetry</h2>");
        grid(h, &tele);
    }
    h.push_str("</section>");
}

/// The whole page.
pub fn render(src: &Sources) -> String {
    let ids: Vec<String> = src.runs.iter().map(|r| r.id.to_string()).collect();
    let css = format!("{LOAD_CSS}{}{CSS}", findings::CSS);
    let mut h = frame::open(&format!("servescope report: run {}", ids.join(", ")), &css);
    let _ = write!(
        h,
        "<h1>servescope report</h1><p class=sub>runs {} · latencies count from each request's scheduled time (waiting for a slot included) · points: mean over trials, whiskers min–max</p>",
        escape(&ids.join(", "))
    );
    findings_section(&mut h, src);
    runs_table(&mut h, src);
    if !src.load.is_empty() {
        h.push_str("<section id=load>");
        load_sections(&mut h, &src.load);
        h.push_str("</section>");
    }
    for a in &src.attributions {
        if a.points.iter().all(|p| p.components_mean.is_empty()) {
            continue;
        }
        let _ = write!(
            h,
            "<section id=ttft-{}><p class=run>run {}</p>",
            a.run_id, a.run_id
        );
        h.push_str(&decomposition(a));
        h.push_str(&slowest_requests(a, super::SLOWEST));
        h.push_str("</section>");
    }
    timeline_section(&mut h, src);
    if !src.fabric.is_empty() {
        h.push_str("<section id=fabric><h2>Fabric probes</h2><div class=grid>");
        h.push_str(&fabric::chart(&src.fabric).render());
        h.push_str("</div>");
        h.push_str(&fabric::table(&src.fabric));
        h.push_str("</section>");
    }
    if !src.startup.is_empty() {
        h.push_str("<section id=startup><h2>Startup</h2><div class=grid>");
        for r in &src.startup {
            for svg in startup::waterfalls(r) {
                h.push_str(&svg);
            }
        }
        h.push_str("</div></section>");
    }
    if !src.notes.is_empty() {
        h.push_str("<h2>Notes</h2><ul>");
        for n in &src.notes {
            let _ = write!(h, "<li>{}</li>", escape(n));
        }
        h.push_str("</ul>");
    }
    frame::close(&mut h);
    h
}
