//! Merging the sources of a trial into one timeline, and showing it.

use super::trial::{ClientTimes, Trial};
use crate::analysis::startup::gpus::{side_by_side_text, GpuStartup};
use crate::analysis::startup::nvml::{uncertainty_ms, END_UNCERTAINTY, START_UNCERTAINTY};
use crate::analysis::startup::nvml_merge::add_nvml;
use crate::analysis::startup::phase::{ns_to_s, Phase, PhaseKind, Source, Timeline};
use crate::analysis::startup::ParseOptions;
use crate::analysis::startup::SERVER_UP_NS;
use crate::analysis::startup::{compare, logparse::LogParse};
use crate::report::startup::gpus::side_by_side_html;
use crate::report::startup::page;

/// Attribute of the client's first request: seconds after the engine said it was
/// ready (its server-up line, else its first API-ready line); on the log's clock,
/// so within the log's timestamp resolution.
pub const AFTER_READY_S: &str = "after_engine_ready_s";
/// Attribute of the client's first request: the most its own readiness polling
/// (and `/v1/models` check) can have delayed it, in seconds: from its last failed
/// `/health` poll to the request.
pub const CLIENT_SHARE_S: &str = "client_share_max_s";

fn instant(kind: PhaseKind, ns: u64, conf: f32) -> Phase {
    let t = i64::try_from(ns).unwrap_or(i64::MAX);
    let mut p = Phase::new(kind, Source::Client, conf);
    p.start_ns = Some(t);
    p.end_ns = Some(t);
    p
}

/// Log phases (per kind, the first log that has it) plus the client's phases, with
/// the gaps between them as `Unattributed`.
pub fn merge(logs: &[LogParse], c: &ClientTimes, min_gap_s: f64) -> Timeline {
    merge_with(logs, None, c, min_gap_s)
}

/// [`merge`], with NVML-inferred phases filling in what the logs have no line for
/// ([`add_nvml`]): without any log, the waterfall is formed from NVML phases.
pub fn merge_with(
    logs: &[LogParse],
    nvml: Option<&Timeline>,
    c: &ClientTimes,
    min_gap_s: f64,
) -> Timeline {
    let mut t = Timeline::new(logs.iter().find_map(|l| l.timeline.host.clone()));
    // The phases are on the first log's clock.
    t.clock_offset_ns = logs.first().map_or(0, |l| l.timeline.clock_offset_ns);
    for l in logs {
        for p in &l.timeline.phases {
            if p.kind != PhaseKind::Unattributed && t.get(p.kind).is_none() {
                let mut p = p.clone();
                p.attrs.insert("log".into(), l.name.clone());
                t.phases.push(p);
            }
        }
    }
    if let Some(n) = nvml {
        add_nvml(&mut t, n);
    }
    let engine_request = t.get(PhaseKind::FirstRequest).and_then(|p| p.start_ns);
    // The engine's own ready time: its server-up line, else its first API-ready line.
    let engine_ready = t.get(PhaseKind::ApiReady).and_then(|p| {
        p.attrs
            .get(SERVER_UP_NS)
            .and_then(|v| v.parse::<i64>().ok())
            .or(p.start_ns)
    });
    if let Some(ns) = c.first_request_ns {
        t.phases.retain(|p| p.kind != PhaseKind::FirstRequest);
        let mut p = instant(PhaseKind::FirstRequest, ns, 1.0);
        p.attrs.insert("attempts".into(), c.attempts.to_string());
        p.attrs
            .insert("health_polls".into(), c.health_polls.to_string());
        // The client's own part of "→ first request": the endpoint became ready
        // after its last failed poll, so polling and the /v1/models check delayed
        // the request by at most this much.
        if let Some(n) = c.last_not_ready_ns.filter(|n| *n <= ns) {
            p.attrs.insert(
                CLIENT_SHARE_S.into(),
                format!("{:.3}", ns_to_s((ns - n) as i64)),
            );
        }
        // From the engine's server-up line to the request: the HTTP server's own
        // start, plus the client's share above.
        if let Some(r) = engine_ready {
            let sent = i64::try_from(ns).unwrap_or(i64::MAX);
            p.attrs.insert(
                AFTER_READY_S.into(),
                format!("{:.3}", ns_to_s(sent.saturating_sub(r))),
            );
        }
        if let Some(e) = engine_request {
            p.attrs.insert("engine_logged_ns".into(), e.to_string());
        }
        t.phases.push(p);
    }
    if let (Some(ft), Some(rq)) = (c.first_token_ns, c.first_request_ns) {
        let mut p = instant(PhaseKind::FirstToken, ft, 1.0);
        let s = |a: u64| format!("{:.3}", ns_to_s(a.saturating_sub(rq) as i64));
        p.attrs.insert("ttft_s".into(), s(ft));
        if let Some(a) = c.answer_ns {
            p.attrs.insert("answer_s".into(), s(a));
            p.attrs.insert("answer_ns".into(), a.to_string());
        }
        p.attrs
            .insert("output_tokens".into(), c.output_tokens.to_string());
        t.phases.push(p);
    }
    if let Some(h) = c.health_ok_ns {
        match t.phases.iter_mut().find(|p| p.kind == PhaseKind::ApiReady) {
            Some(p) => {
                p.attrs.insert("health_200_ns".into(), h.to_string());
            }
            None => {
                let mut p = instant(PhaseKind::ApiReady, h, 0.8);
                p.attrs
                    .insert("evidence".into(), "first /health 200".into());
                t.phases.push(p);
            }
        }
    }
    // Spawn → the engine's first line (or first NVML phase): process start, imports.
    let first_log = t.first_ns();
    if let (Some(cmd), Some(f)) = (c.cmd_start_ns, first_log) {
        let cmd = i64::try_from(cmd).unwrap_or(i64::MAX);
        if f > cmd && t.get(PhaseKind::ActorStart).is_none() {
            let mut p = Phase::new(PhaseKind::ActorStart, Source::Client, 0.8).span(cmd, f);
            p.attrs.insert(
                "boundaries".into(),
                "start command spawned → first log line or GPU activity".into(),
            );
            t.phases.push(p);
        }
    }
    t.fill_gaps(min_gap_s);
    t
}

/// The waterfall of a trial as a text table: offsets from the first instant.
pub fn waterfall_text(tr: &Trial) -> String {
    timeline_text(&tr.timeline, tr.client.answer_ns)
}

/// A boundary uncertainty note (`±start/±end ms`) for inferred phases.
fn uncertainty(p: &Phase) -> String {
    let u = |k: &str| uncertainty_ms(p, k).map_or("?".to_string(), |v| format!("±{v:.0}"));
    if p.attrs.contains_key(START_UNCERTAINTY) || p.attrs.contains_key(END_UNCERTAINTY) {
        format!(" [{}/{} ms]", u(START_UNCERTAINTY), u(END_UNCERTAINTY))
    } else {
        String::new()
    }
}

/// A waterfall as a text table: offsets from the first instant; `answer_ns` is the
/// last byte of the first answer, when the client saw one.
pub fn timeline_text(t: &Timeline, answer_ns: Option<u64>) -> String {
    use std::fmt::Write;
    let Some(origin) = t.first_ns() else {
        return "no phases\n".into();
    };
    let off = |ns: Option<i64>| {
        ns.map_or("–".into(), |v| {
            format!("{:+.2}", ns_to_s(v.saturating_sub(origin)))
        })
    };
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<24} {:>9} {:>9} {:>9}  {:<8} {:>4}  note",
        "phase", "start s", "end s", "seconds", "source", "conf"
    );
    for p in &t.phases {
        let indent = if p.kind.parent().is_some() { "  " } else { "" };
        let secs = match p.seconds() {
            Some(v) if !p.kind.is_milestone() => format!("{v:.2}"),
            _ => String::new(),
        };
        let note = ["ttft_s", "boundaries", "evidence", "log"]
            .iter()
            .find_map(|k| p.attrs.get(*k).map(|v| format!("{k}: {v}")))
            .unwrap_or_default()
            + &uncertainty(p);
        let src = serde_json::to_value(p.source)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "{:<24} {:>9} {:>9} {:>9}  {:<8} {:>4.2}  {}",
            format!("{indent}{}", p.kind.label()),
            off(p.start_ns),
            off(p.end_ns),
            secs,
            src,
            p.confidence,
            note
        );
    }
    let f = |k: PhaseKind| t.until(k).map_or("–".into(), |v| format!("{v:.2}"));
    let answer = match (answer_ns, t.first_ns()) {
        (Some(a), Some(o)) => format!("{:.2}", ns_to_s((a as i64).saturating_sub(o))),
        _ => "–".into(),
    };
    let _ = writeln!(
        s,
        "total: → API ready {} s, → first request {} s, → first token {} s, → full answer {} s",
        f(PhaseKind::ApiReady),
        f(PhaseKind::FirstRequest),
        f(PhaseKind::FirstToken),
        answer
    );
    if let Some(fr) = t.get(PhaseKind::FirstRequest) {
        let (after, share) = (fr.attrs.get(AFTER_READY_S), fr.attrs.get(CLIENT_SHARE_S));
        if after.is_some() || share.is_some() {
            let _ = writeln!(
                s,
                "first request: {} s after the engine's server-up line (log clock, 1 s resolution); of that, at most {} s is this client's (last failed /health poll → request)",
                after.map_or("–", String::as_str),
                share.map_or("–", String::as_str),
            );
        }
    }
    s
}

/// The trials as [`compare`] items (one label: mean and min–max per phase).
pub fn labeled(trials: &[Trial], label: &str, model: &str) -> Vec<compare::Labeled> {
    trials
        .iter()
        .map(|tr| {
            let mut parse = tr.logs.first().cloned().unwrap_or_else(|| {
                crate::analysis::startup::logparse::parse_str("", "client", ParseOptions::new(1970))
            });
            parse.name = format!("trial {}", tr.index + 1);
            parse.model = Some(model.to_string());
            parse.timeline = tr.timeline.clone();
            compare::Labeled {
                label: label.to_string(),
                parse,
            }
        })
        .collect()
}

/// HTML page: the stacked bar(s) and tables of [`compare`], then each
/// trial's waterfall table.
pub fn render_html(trials: &[Trial], label: &str, model: &str) -> String {
    render_html_with(trials, label, model, &[])
}

/// [`render_html`] with the per-GPU cold starts side by side.
pub fn render_html_with(trials: &[Trial], label: &str, model: &str, gpus: &[GpuStartup]) -> String {
    use crate::report::svg::escape;
    let c = compare::compare(&labeled(trials, label, model));
    let page = page::render_html(&c);
    let mut extra = String::new();
    if !gpus.is_empty() {
        extra.push_str(&side_by_side_html(gpus));
        extra.push_str(&format!("<pre>{}</pre>", escape(&side_by_side_text(gpus))));
    }
    for tr in trials {
        extra.push_str(&format!("<h2>Trial {} waterfall</h2>", tr.index + 1));
        if let Some(e) = &tr.error {
            extra.push_str(&format!("<p class=n>error: {}</p>", escape(e)));
        }
        extra.push_str(&format!("<pre>{}</pre>", escape(&waterfall_text(tr))));
    }
    match page.rfind("</body>") {
        Some(i) => format!("{}{extra}{}", &page[..i], &page[i..]),
        None => page + &extra,
    }
}
