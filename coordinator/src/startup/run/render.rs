//! Merging the sources of a trial into one timeline, and showing it.

use super::super::phase::{ns_to_s, Phase, PhaseKind, Source, Timeline};
use super::super::{compare, logparse::LogParse, ParseOptions};
use super::{ClientTimes, Trial};

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
    let mut t = Timeline::new(logs.iter().find_map(|l| l.timeline.host.clone()));
    for l in logs {
        for p in &l.timeline.phases {
            if p.kind != PhaseKind::Unattributed && t.get(p.kind).is_none() {
                let mut p = p.clone();
                p.attrs.insert("log".into(), l.name.clone());
                t.phases.push(p);
            }
        }
    }
    let engine_request = t.get(PhaseKind::FirstRequest).and_then(|p| p.start_ns);
    if let Some(ns) = c.first_request_ns {
        t.phases.retain(|p| p.kind != PhaseKind::FirstRequest);
        let mut p = instant(PhaseKind::FirstRequest, ns, 1.0);
        p.attrs.insert("attempts".into(), c.attempts.to_string());
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
    // Spawn → the engine's first line: process start, imports.
    let first_log = t.first_ns();
    if let (Some(cmd), Some(f)) = (c.cmd_start_ns, first_log) {
        let cmd = i64::try_from(cmd).unwrap_or(i64::MAX);
        if f > cmd && t.get(PhaseKind::ActorStart).is_none() {
            let mut p = Phase::new(PhaseKind::ActorStart, Source::Client, 0.8).span(cmd, f);
            p.attrs.insert(
                "boundaries".into(),
                "start command spawned → first log line".into(),
            );
            t.phases.push(p);
        }
    }
    t.fill_gaps(min_gap_s);
    t
}

/// The waterfall of a trial as a text table: offsets from the first instant.
pub fn waterfall_text(tr: &Trial) -> String {
    use std::fmt::Write;
    let t = &tr.timeline;
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
            .unwrap_or_default();
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
    let answer = match (tr.client.answer_ns, t.first_ns()) {
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
    s
}

/// The trials as [`super::compare`] items (one label: mean and min–max per phase).
pub fn labeled(trials: &[Trial], label: &str, model: &str) -> Vec<compare::Labeled> {
    trials
        .iter()
        .map(|tr| {
            let mut parse = tr.logs.first().cloned().unwrap_or_else(|| {
                super::super::logparse::parse_str("", "client", ParseOptions::new(1970))
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

/// HTML page: the stacked bar(s) and tables of [`super::compare`], then each
/// trial's waterfall table.
pub fn render_html(trials: &[Trial], label: &str, model: &str) -> String {
    use crate::report::svg::escape;
    let c = compare::compare(&labeled(trials, label, model));
    let page = compare::render_html(&c);
    let mut extra = String::new();
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
