//! The experiment report: one self-contained HTML page with the family's charts
//! (per-replica throughput vs concurrency per deployment; TTFT and TPOT vs
//! concurrency; throughput vs latency), the scaling and matrix tables, the failure
//! table, the warnings, and any diagnosis findings.

use std::fmt::Write;

use crate::analysis::exp::{ExpAnalysis, PointView};
use crate::analysis::pd::Finding;
use crate::report::chart::{Chart, Point, Series, XAxis, PALETTE};
use crate::report::svg::escape;
use crate::report::{findings, frame};

#[allow(clippy::too_many_arguments)]
fn chart(
    a: &ExpAnalysis,
    group: &str,
    title: &str,
    y_label: &str,
    x_of: fn(&PointView) -> f64,
    y_of: fn(&PointView) -> f64,
    x_label: &str,
    sweep: bool,
) -> String {
    let mut deps: Vec<&str> = Vec::new();
    for p in a
        .points
        .iter()
        .filter(|p| p.group.split('/').take(2).collect::<Vec<_>>().join("/") == group)
    {
        if !deps.contains(&p.deployment.as_str()) {
            deps.push(&p.deployment);
        }
    }
    let series = deps
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let mut pts: Vec<Point> = a
                .points
                .iter()
                .filter(|p| p.deployment == *d && p.status == "done" && p.group.starts_with(group))
                .map(|p| Point {
                    x: x_of(p),
                    y: y_of(p),
                    tip: Some(p.key.clone()),
                    ..Default::default()
                })
                .filter(|p| p.x.is_finite() && p.y.is_finite())
                .collect();
            pts.sort_by(|a, b| a.x.total_cmp(&b.x));
            Series {
                name: d.to_string(),
                color: PALETTE[i % PALETTE.len()].into(),
                markers: true,
                scatter: false,
                points: pts,
                ..Default::default()
            }
        })
        .collect();
    Chart {
        title: title.into(),
        x_label: x_label.into(),
        y_label: y_label.into(),
        width: 520.0,
        height: 320.0,
        x_axis: if sweep { XAxis::Sweep } else { XAxis::Linear },
        y_max: None,
        x_range: None,
        series,
    }
    .render()
}

/// The page's own rules (after the shared frame's).
const CSS: &str = "body{max-width:1150px}td:first-child{text-align:left}.charts{display:flex;flex-wrap:wrap;gap:8px}";

/// The page; `findings` are (point key, finding) from the diagnosis, when run.
pub fn render(a: &ExpAnalysis, findings: &[(String, Finding)]) -> String {
    let css = format!("{CSS}{}", findings::CSS);
    let mut h = frame::open(&format!("servescope experiment {}", a.name), &css);
    let _ = write!(
        h,
        "<h1>Experiment {0}</h1><p>Status: {1}; {2} point(s) stored.</p>",
        escape(&a.name),
        escape(&a.status),
        a.points.len()
    );
    if !a.warnings.is_empty() {
        h.push_str("<h2>Warnings</h2><ul>");
        for w in &a.warnings {
            let _ = write!(h, "<li class=bad>{}</li>", escape(w));
        }
        h.push_str("</ul>");
    }
    let mut groups: Vec<String> = Vec::new();
    for p in &a.points {
        let g = p.group.split('/').take(2).collect::<Vec<_>>().join("/");
        if !groups.contains(&g) {
            groups.push(g);
        }
    }
    for g in &groups {
        let _ = write!(h, "<h2>{}</h2><div class=charts>", escape(g));
        h.push_str(&chart(
            a,
            g,
            "requests/s per replica vs concurrency",
            "req/s per replica",
            |p| p.nominal,
            |p| p.aggregate.request_throughput / f64::from(p.replicas.max(1)),
            "concurrency (per replica when scaled)",
            true,
        ));
        h.push_str(&chart(
            a,
            g,
            "TTFT p50 vs concurrency",
            "ms",
            |p| p.nominal,
            |p| p.aggregate.ttft_ms.median,
            "concurrency",
            true,
        ));
        h.push_str(&chart(
            a,
            g,
            "TPOT p50 vs concurrency",
            "ms",
            |p| p.nominal,
            |p| p.aggregate.tpot_ms.median,
            "concurrency",
            true,
        ));
        h.push_str(&chart(
            a,
            g,
            "throughput vs latency",
            "output tok/s per GPU",
            |p| p.aggregate.ttft_ms.median,
            |p| p.aggregate.output_throughput / f64::from(p.gpus.max(1)),
            "TTFT p50 ms",
            false,
        ));
        h.push_str("</div>");
    }
    h.push_str("<h2>Horizontal scaling</h2><table><tr><th>workload</th><th>deployment</th><th>replicas</th><th>GPUs</th><th>req/s</th><th>req/s per replica</th><th>out tok/s per GPU</th><th>efficiency T(N)/(N·T(1))</th><th>client-bound</th></tr>");
    for r in &a.scaling {
        let _ = write!(h, "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.2}</td><td>{:.2}</td><td>{:.1}</td><td>{}</td><td>{}</td></tr>", escape(&r.group), escape(&r.deployment), r.replicas, r.gpus, r.request_throughput, r.per_replica_rps, r.per_gpu_output_tps, r.efficiency.map_or("–".into(), |e| format!("{:.1} %", e * 100.0)), if r.client_bound { "<span class=bad>yes</span>" } else { "no" });
    }
    h.push_str("</table><h2>Deployment matrix</h2><table><tr><th>workload</th><th>metric</th><th>values (mean ± sd, n; Δ vs first)</th></tr>");
    for m in &a.matrix {
        let cells: Vec<String> = m
            .cells
            .iter()
            .map(|c| {
                let noise = match (c.delta, c.within_noise) {
                    (Some(d), Some(true)) => format!(" Δ {d:+.2} (within noise)"),
                    (Some(d), Some(false)) => format!(" Δ {d:+.2} (significant)"),
                    (Some(d), None) => format!(" Δ {d:+.2} (one trial: no noise estimate)"),
                    (None, _) => String::new(),
                };
                format!(
                    "{}: {:.2} ± {:.2} (n={}){noise}",
                    escape(&c.deployment),
                    c.mean,
                    c.std,
                    c.n
                )
            })
            .collect();
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td style=\"text-align:left\">{}</td></tr>",
            escape(&m.group),
            m.metric,
            cells.join("<br>")
        );
    }
    h.push_str("</table><h2>Points and failures</h2><table><tr><th>point</th><th>status</th><th>requests</th><th>failed</th><th>errors</th><th>detail</th></tr>");
    for p in &a.points {
        let cls = if p.status == "done" { "" } else { " class=bad" };
        let errs: Vec<String> = p
            .aggregate
            .errors_by_class
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        let _ = write!(h, "<tr{cls}><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td style=\"text-align:left\">{}</td></tr>", escape(&p.key), escape(&p.status), p.aggregate.num_requests, p.aggregate.failed, escape(&errs.join(", ")), escape(p.detail.as_deref().unwrap_or("")));
    }
    h.push_str("</table><h2>Fabric preflight</h2>");
    match &a.preflight {
        None => h.push_str(
            "<p>Not run (add <code>fabric_check</code> to <code>analyses</code>, with agents).</p>",
        ),
        Some(f) if f.is_empty() => h.push_str("<p>No finding on any agent.</p>"),
        Some(f) => {
            h.push_str("<table><tr><th>agent</th><th>severity</th><th>finding</th><th>evidence</th><th>fix</th></tr>");
            for x in f {
                let _ = write!(h, "<tr><td>{}</td><td>{}</td><td>{}</td><td style=\"text-align:left\">{}</td><td style=\"text-align:left\">{}</td></tr>", escape(&x.agent), escape(&x.severity), escape(&x.title), escape(&x.evidence), escape(&x.fix));
            }
            h.push_str("</table>");
        }
    }
    if !a.startup.is_empty() {
        h.push_str("<h2>Startup</h2><table><tr><th>deployment</th><th>deploy → ready (s)</th><th>phases (from the agents' logs)</th></tr>");
        for r in &a.startup {
            let ph: Vec<String> = r
                .phases
                .iter()
                .map(|(k, s)| format!("{k} {s:.1} s"))
                .collect();
            let text = if ph.is_empty() {
                r.note.clone().unwrap_or_default()
            } else {
                ph.join(", ")
            };
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{:.1}</td><td style=\"text-align:left\">{}</td></tr>",
                escape(&r.deployment),
                r.ready_s,
                escape(&text)
            );
        }
        h.push_str("</table>");
    }
    if !a.telemetry_runs.is_empty() {
        h.push_str("<h2>Node telemetry</h2><ul>");
        for (id, l) in &a.telemetry_runs {
            let _ = write!(
                h,
                "<li>run {id}: {} (<code>servescope report {id}</code>)</li>",
                escape(l)
            );
        }
        h.push_str("</ul>");
    }
    if !findings.is_empty() {
        h.push_str("<h2>Diagnosis</h2>");
        let mut keys: Vec<&str> = Vec::new();
        for (k, _) in findings {
            if !keys.contains(&k.as_str()) {
                keys.push(k);
            }
        }
        for k in keys {
            let mine: Vec<Finding> = findings
                .iter()
                .filter(|(x, _)| x == k)
                .map(|(_, f)| f.clone())
                .collect();
            let _ = write!(h, "<p><b>{}</b></p>", escape(k));
            h.push_str(&findings::render(&mine));
        }
    }
    frame::close(&mut h);
    h
}
