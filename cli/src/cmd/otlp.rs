//! `servescope otlp listen`: an OTLP/gRPC trace receiver for vLLM
//! (`vllm serve … --otlp-traces-endpoint HOST:PORT`): startup timelines per service
//! and host, and a summary of `llm_request` spans.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use servescope_coordinator::analysis::otlp::{self, Collected, RequestSummary};
use servescope_coordinator::analysis::startup::{Phase, PhaseKind};
use servescope_coordinator::orchestration::otlp_receiver::{Limits, Receiver, DEFAULT_LISTEN};
use servescope_coordinator::text::utc;

use super::columns::{self, Align};
use super::common::parse_duration;

pub type Args = super::common::Subcommands<Sub>;

#[derive(clap::Subcommand, Debug)]
pub enum Sub {
    /// Receive OTLP/gRPC traces for a duration (or until Ctrl-C), then print the
    /// startup timelines and the request summary
    Listen(ListenArgs),
}

#[derive(clap::Args, Debug)]
pub struct ListenArgs {
    /// Address to listen on (OTLP/gRPC; point vLLM's --otlp-traces-endpoint here)
    #[arg(long, default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// How long to collect
    #[arg(long, value_parser = parse_duration, default_value = "60s")]
    pub duration: Duration,
    /// Print everything collected (timelines, request spans, counters) as JSON
    #[arg(long)]
    pub json: bool,
    /// Largest gRPC message accepted, in MiB
    #[arg(long, default_value_t = 16)]
    pub max_message_mib: usize,
    /// Most spans kept; the rest are counted as dropped
    #[arg(long, default_value_t = 1_000_000)]
    pub max_spans: u64,
}

pub async fn run(a: Args) -> anyhow::Result<()> {
    match a.command {
        Sub::Listen(l) => listen(l).await,
    }
}

async fn listen(a: ListenArgs) -> anyhow::Result<()> {
    let limits = Limits {
        max_message_bytes: a.max_message_mib.saturating_mul(1 << 20),
        max_spans: a.max_spans,
        ..Limits::default()
    };
    let r = Receiver::start(a.listen, limits)
        .await
        .with_context(|| format!("starting the OTLP receiver on {}", a.listen))?;
    eprintln!(
        "listening for OTLP/gRPC traces on {} for {:.0} s (Ctrl-C to stop early)",
        r.local_addr(),
        a.duration.as_secs_f64()
    );
    tokio::select! {
        _ = tokio::time::sleep(a.duration) => {}
        _ = tokio::signal::ctrl_c() => eprintln!("interrupted"),
    }
    let got = r.shutdown().await.context("stopping the OTLP receiver")?;
    if a.json {
        let summary = otlp::summarize(&got.requests);
        let v = serde_json::json!({ "collected": got, "request_summary": summary });
        println!(
            "{}",
            serde_json::to_string_pretty(&v).context("encoding JSON")?
        );
        return Ok(());
    }
    print!("{}", render(&got));
    Ok(())
}

fn secs(v: Option<f64>) -> String {
    v.map_or("–".into(), |s| format!("{s:.2}"))
}

fn ms(v: Option<f64>) -> String {
    v.map_or("–".into(), |s| format!("{:.1}", s * 1e3))
}

fn time(ns: Option<i64>) -> String {
    ns.map_or("–".into(), |t| {
        utc(t).get(11..).unwrap_or_default().to_string()
    })
}

fn phase_row(p: &Phase) -> Vec<String> {
    let indent = if p.kind.parent().is_some() { "  " } else { "" };
    let span = p
        .attrs
        .get("otlp.span")
        .or(p.attrs.get("otlp.derived_from"));
    vec![
        format!("{indent}{}", p.kind.label()),
        time(p.start_ns),
        time(p.end_ns),
        if p.kind.is_milestone() {
            String::new()
        } else {
            secs(p.seconds())
        },
        format!("{:.2}", p.confidence),
        p.process.clone().unwrap_or_else(|| "–".into()),
        span.cloned().unwrap_or_default(),
    ]
}

fn request_row(s: &RequestSummary) -> Vec<String> {
    vec![
        s.service.clone(),
        s.host.clone().unwrap_or_else(|| "?".into()),
        s.count.to_string(),
        s.errors.to_string(),
        ms(s.ttft_p50_s),
        ms(s.ttft_p99_s),
        ms(s.e2e_p50_s),
        ms(s.e2e_p99_s),
        ms(s.queue_p50_s),
        ms(s.queue_p99_s),
    ]
}

const PHASE_HEADER: [&str; 7] = [
    "phase", "start", "end", "seconds", "conf", "process", "span",
];
const PHASE_ALIGN: [Align; 7] = [
    Align::Left,
    Align::Right,
    Align::Right,
    Align::Right,
    Align::Right,
    Align::Left,
    Align::Left,
];
const REQUEST_HEADER: [&str; 10] = [
    "service",
    "host",
    "count",
    "errors",
    "ttft p50",
    "ttft p99",
    "e2e p50",
    "e2e p99",
    "queue p50",
    "queue p99",
];

/// What `otlp listen` prints: counters, one startup timeline per engine, the
/// request summary; columns as wide as their widest cell.
fn render(got: &Collected) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let st = &got.stats;
    let _ = writeln!(
        out,
        "{} exports, {} spans: {} startup, {} llm_request, {} dropped (limits), {} invalid",
        st.exports, st.spans, st.startup_spans, st.request_spans, st.dropped, st.invalid
    );
    for s in &got.startups {
        let t = &s.timeline;
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "== startup: service {} on host {} (times: that host's clock, UTC)",
            s.service,
            t.host.as_deref().unwrap_or("?")
        );
        if !s.processes.is_empty() {
            let _ = writeln!(
                out,
                "engine processes ({}): {}",
                s.processes.len(),
                s.processes.join(", ")
            );
        }
        if t.phases.is_empty() {
            let _ = writeln!(out, "no known startup span");
        } else {
            let rows: Vec<Vec<String>> = t.phases.iter().map(phase_row).collect();
            out.push_str(&columns::render(&PHASE_HEADER, &PHASE_ALIGN, &rows));
            let _ = writeln!(
                out,
                "total: → API ready {} s, → first request {} s, → first token {} s, first → last phase {} s",
                secs(t.until(PhaseKind::ApiReady)),
                secs(t.until(PhaseKind::FirstRequest)),
                secs(t.until(PhaseKind::FirstToken)),
                secs(t.total_s()),
            );
        }
        if !s.other_spans.is_empty() {
            let names: Vec<String> = s
                .other_spans
                .iter()
                .map(|o| {
                    let d = (o.end_ns.saturating_sub(o.start_ns)) as f64 / 1e9;
                    format!("{} ×{} ({d:.2} s)", o.name, o.count)
                })
                .collect();
            let _ = writeln!(out, "other spans: {}", names.join("; "));
        }
    }
    let sums = otlp::summarize(&got.requests);
    if !sums.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "== llm_request spans (ms, from gen_ai.latency.* attributes)"
        );
        let rows: Vec<Vec<String>> = sums.iter().map(request_row).collect();
        let mut align = [Align::Right; 10];
        align[0] = Align::Left;
        align[1] = Align::Left;
        out.push_str(&columns::render(&REQUEST_HEADER, &align, &rows));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;
    use servescope_coordinator::orchestration::otlp_receiver::Collector;
    use servescope_proto::otlp::collector::trace::v1::ExportTraceServiceRequest;

    /// The captured vLLM 0.32 exports (`coordinator/tests/fixtures/vllm032/otlp`).
    fn vllm032() -> Collected {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../coordinator/tests/fixtures/vllm032/otlp");
        let c = Collector::new(Limits::default());
        for i in 0..6 {
            let b = std::fs::read(dir.join(format!("export-{i:03}.pb"))).unwrap();
            let req = ExportTraceServiceRequest::decode(b.as_slice()).unwrap();
            c.ingest(&req, Some("127.0.0.1"));
        }
        c.take()
    }

    /// The column a header word starts at, on the header line.
    fn col(header: &str, word: &str) -> usize {
        header.find(word).unwrap()
    }

    #[test]
    fn otlp_listen_columns_hold_long_names() {
        let text = render(&vllm032());
        let lines: Vec<&str> = text.lines().collect();
        // One engine, with its API-ready point and totals.
        assert_eq!(text.matches("== startup:").count(), 1, "{text}");
        assert!(text.contains("engine processes (3)"), "{text}");
        assert!(text.contains("total: → API ready 28.64 s"), "{text}");
        // The request table: service "unknown_service:python3" (23 chars) and a
        // 36-char instance id as host; every row's count ends under "count"…
        let h = lines.iter().position(|l| l.starts_with("service")).unwrap();
        let header = lines[h];
        let end_of = |w: &str| col(header, w) + w.len();
        for row in &lines[h + 1..] {
            assert!(row.starts_with("unknown_service:python3 "), "{row:?}");
            let cells: Vec<&str> = row.split_whitespace().collect();
            assert_eq!(cells.len(), 10, "{row:?}");
            let count_end = row.find(&format!(" {} ", cells[2])).unwrap() + 1 + cells[2].len();
            assert_eq!(count_end, end_of("count"), "{header}\n{row}");
            assert_eq!(row.len(), end_of("queue p99"), "{header}\n{row}");
        }
        // …and the phase table's span column starts at one position.
        let p = lines.iter().position(|l| l.starts_with("phase")).unwrap();
        let span_col = col(lines[p], "span");
        let ready = lines.iter().find(|l| l.starts_with("API ready")).unwrap();
        assert_eq!(ready.find("Overall Loading"), Some(span_col), "{text}");
    }
}
