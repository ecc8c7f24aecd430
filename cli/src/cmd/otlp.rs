//! `servescope otlp listen`: an OTLP/gRPC trace receiver for vLLM
//! (`vllm serve … --otlp-traces-endpoint HOST:PORT`): startup timelines per service
//! and host, and a summary of `llm_request` spans.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use servescope_coordinator::otlp::{self, Collected, Limits, Receiver, RequestSummary};
use servescope_coordinator::startup::{Phase, PhaseKind};
use servescope_coordinator::text::utc;

use super::common::parse_duration;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub command: Sub,
}

#[derive(clap::Subcommand, Debug)]
pub enum Sub {
    /// Receive OTLP/gRPC traces for a duration (or until Ctrl-C), then print the
    /// startup timelines and the request summary
    Listen(ListenArgs),
}

#[derive(clap::Args, Debug)]
pub struct ListenArgs {
    /// Address to listen on (OTLP/gRPC; point vLLM's --otlp-traces-endpoint here)
    #[arg(long, default_value = otlp::DEFAULT_LISTEN)]
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
    print(&got);
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

fn print_phase(p: &Phase) {
    let indent = if p.kind.parent().is_some() { "  " } else { "" };
    let span = p
        .attrs
        .get("otlp.span")
        .or(p.attrs.get("otlp.derived_from"));
    println!(
        "{:<24} {:>15} {:>15} {:>9}  {:>4.2}  {:<22} {}",
        format!("{indent}{}", p.kind.label()),
        time(p.start_ns),
        time(p.end_ns),
        if p.kind.is_milestone() {
            String::new()
        } else {
            secs(p.seconds())
        },
        p.confidence,
        p.process.as_deref().unwrap_or("–"),
        span.map_or("", String::as_str),
    );
}

fn print_requests(s: &RequestSummary) {
    println!(
        "{:<20} {:<16} {:>7} {:>6} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}",
        s.service,
        s.host.as_deref().unwrap_or("?"),
        s.count,
        s.errors,
        ms(s.ttft_p50_s),
        ms(s.ttft_p99_s),
        ms(s.e2e_p50_s),
        ms(s.e2e_p99_s),
        ms(s.queue_p50_s),
        ms(s.queue_p99_s),
    );
}

fn print(got: &Collected) {
    let st = &got.stats;
    println!(
        "{} exports, {} spans: {} startup, {} llm_request, {} dropped (limits), {} invalid",
        st.exports, st.spans, st.startup_spans, st.request_spans, st.dropped, st.invalid
    );
    for s in &got.startups {
        let t = &s.timeline;
        println!();
        println!(
            "== startup: service {} on host {} (times: that host's clock, UTC)",
            s.service,
            t.host.as_deref().unwrap_or("?")
        );
        if t.phases.is_empty() {
            println!("no known startup span");
        } else {
            println!(
                "{:<24} {:>15} {:>15} {:>9}  {:>4}  {:<22} span",
                "phase", "start", "end", "seconds", "conf", "process"
            );
            for p in &t.phases {
                print_phase(p);
            }
            println!(
                "first → last phase {} s; → first token {} s",
                secs(t.total_s()),
                secs(t.until(PhaseKind::FirstToken))
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
            println!("other spans: {}", names.join("; "));
        }
    }
    let sums = otlp::summarize(&got.requests);
    if !sums.is_empty() {
        println!();
        println!("== llm_request spans (ms, from gen_ai.latency.* attributes)");
        println!(
            "{:<20} {:<16} {:>7} {:>6} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}",
            "service",
            "host",
            "count",
            "errors",
            "ttft p50",
            "ttft p99",
            "e2e p50",
            "e2e p99",
            "queue p50",
            "queue p99"
        );
        for s in &sums {
            print_requests(s);
        }
    }
}
