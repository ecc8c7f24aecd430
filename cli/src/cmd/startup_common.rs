//! What the startup commands share: the logs' clock flags and the phase tables.

use servescope_coordinator::analysis::startup::{
    self as st, LogParse, ParseOptions, Phase, PhaseKind,
};
use servescope_coordinator::text::utc;
use servescope_proto::ext::year_of_ns;
use servescope_proto::now_ns;

#[derive(clap::Args, Debug)]
pub struct TimeFlags {
    /// Year of the logs' `MM-DD HH:MM:SS` timestamps (default: this year)
    #[arg(long)]
    pub year: Option<i32>,
    /// Offset of the logs' clock from UTC, e.g. -07:00 (default: UTC)
    #[arg(long, default_value = "+00:00", allow_hyphen_values = true)]
    pub utc_offset: String,
}

fn this_year() -> i32 {
    year_of_ns(i64::try_from(now_ns()).unwrap_or(i64::MAX))
}

pub fn options(t: &TimeFlags) -> anyhow::Result<ParseOptions> {
    let mut o = ParseOptions::new(t.year.unwrap_or_else(this_year));
    o.utc_offset_s = st::parse_utc_offset(&t.utc_offset)?;
    Ok(o)
}

pub fn secs(v: Option<f64>) -> String {
    v.map_or("–".into(), |s| format!("{s:.2}"))
}

fn time(ns: Option<i64>, offset_s: i32) -> String {
    // Shown on the log's own clock, like the log lines.
    ns.map_or("–".into(), |t| {
        utc(t.saturating_add(i64::from(offset_s) * 1_000_000_000))
            .get(11..)
            .unwrap_or_default()
            .to_string()
    })
}

fn lines(p: &Phase) -> String {
    let v: Vec<String> = p.lines.iter().take(3).map(|l| l.to_string()).collect();
    if v.is_empty() {
        "–".into()
    } else {
        v.join(",")
    }
}

pub fn print_parse(r: &LogParse, offset_s: i32) {
    println!("== {}", r.name);
    println!(
        "table {} ({}); model {}; {} lines, {} recognised, {} echoes dropped",
        r.table,
        r.table_reason,
        r.model.as_deref().unwrap_or("?"),
        r.lines,
        r.recognised_lines,
        r.duplicates_dropped
    );
    for w in &r.warnings {
        println!("warning: {w}");
    }
    print_unplaced(r);
    println!(
        "{:<24} {:>8} {:>8} {:>9}  {:>4}  {:<12} {:<6} range / note",
        "phase", "start", "end", "seconds", "conf", "lines", "rank"
    );
    for p in &r.timeline.phases {
        let indent = if p.kind.parent().is_some() { "  " } else { "" };
        let note = match (p.attrs.get("min_s"), p.attrs.get("max_s")) {
            (Some(a), Some(b)) => format!(
                "{a}–{b} s over {} processes",
                p.attrs.get("processes").map_or("?", String::as_str)
            ),
            _ => p
                .attrs
                .get("boundaries")
                .or(p.attrs.get("evidence"))
                .cloned()
                .unwrap_or_default(),
        };
        let note = note + &facts(p);
        println!(
            "{:<24} {:>8} {:>8} {:>9}  {:>4.2}  {:<12} {:<6} {}",
            format!("{indent}{}", p.kind.label()),
            time(p.start_ns, offset_s),
            time(p.end_ns, offset_s),
            if p.kind.is_milestone() {
                "".into()
            } else {
                secs(p.seconds())
            },
            p.confidence,
            lines(p),
            p.rank.as_deref().unwrap_or("–"),
            note
        );
    }
    let t = &r.timeline;
    println!(
        "total: first line → API ready {} s, → first request {} s, first → last phase {} s",
        secs(t.until(PhaseKind::ApiReady)),
        secs(t.until(PhaseKind::FirstRequest)),
        secs(t.total_s())
    );
}

/// Engine lines the table recognised but could not place (the first ten).
fn print_unplaced(r: &LogParse) {
    if r.unplaced_lines == 0 {
        return;
    }
    println!(
        "unplaced: {} engine line(s) recognised but not placed with table {}",
        r.unplaced_lines, r.table
    );
    for u in r.unplaced.iter().take(10) {
        println!("  line {}: {} ({})", u.line, u.text, u.why);
    }
    if r.unplaced_lines > 10 {
        println!("  … {} more (--json lists up to 50)", r.unplaced_lines - 10);
    }
}

/// Figures the engine printed that are no phase of their own, e.g. ` [model_init_s=0.203]`.
fn facts(p: &Phase) -> String {
    const FACTS: [&str; 5] = [
        "model_init_s",
        "profile_run_s",
        "kv_tokens",
        "compilation_s",
        "gib",
    ];
    let v: Vec<String> = FACTS
        .iter()
        .filter_map(|k| p.attrs.get(*k).map(|v| format!("{k}={v}")))
        .collect();
    if v.is_empty() {
        String::new()
    } else {
        format!(" [{}]", v.join(", "))
    }
}
