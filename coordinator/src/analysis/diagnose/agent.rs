//! The agent's own cost, from its self-telemetry: CPU and memory above what a
//! monitoring agent should take from the node it watches.

use super::telemetry::{HostTelemetry, Telemetry};
use super::{Finding, Severity};

/// The agent's CPU over the run above this (% of one core) is too high (its goal is
/// 0.5 %).
pub const AGENT_CPU_PCT_MAX: f64 = 2.0;
/// The agent's resident memory above this (bytes) is too high (its goal is 30 MiB).
pub const AGENT_RSS_MAX: u64 = 128 << 20;
/// Self samples spanning less than this (s) say nothing about a rate.
pub const AGENT_MIN_SPAN_S: f64 = 5.0;

pub fn agent_overhead_high(t: &Telemetry) -> Option<Finding> {
    let mut evidence = Vec::new();
    for h in &t.hosts {
        let (Some(first), Some(last)) = (h.self_stats.first(), h.self_stats.last()) else {
            continue;
        };
        // An agent inside another program (the demo, a test) reports that
        // program's CPU and memory: nothing to say about the agent's own.
        if last.1.shares_process {
            continue;
        }
        let span = HostTelemetry::secs(first.0, last.0);
        let cpu = (span >= AGENT_MIN_SPAN_S)
            .then(|| (last.1.cpu_seconds_total - first.1.cpu_seconds_total) / span * 100.0)
            .filter(|c| *c > AGENT_CPU_PCT_MAX);
        let peak = h.self_stats.iter().max_by_key(|s| s.1.rss_bytes);
        let rss = peak.filter(|s| s.1.rss_bytes > AGENT_RSS_MAX);
        if cpu.is_none() && rss.is_none() {
            continue;
        }
        let mut line = format!(
            "agent on {} from {} to {}:",
            h.host,
            h.when(t.started_ns, first.0),
            h.when(t.started_ns, last.0)
        );
        if let Some(c) = cpu {
            line.push_str(&format!(
                " {c:.2} % of one core (above {AGENT_CPU_PCT_MAX} %)"
            ));
        }
        if let Some((ts, s)) = rss {
            line.push_str(&format!(
                " {:.0} MiB resident at {} (above {} MiB)",
                s.rss_bytes as f64 / (1u64 << 20) as f64,
                h.when(t.started_ns, *ts),
                AGENT_RSS_MAX >> 20
            ));
        }
        if let Some(costly) = last.1.calls.iter().max_by_key(|c| c.mean_ns * c.count) {
            line.push_str(&format!(
                "; its costliest collector call: {} ({} calls, {:.2} ms mean)",
                costly.name,
                costly.count,
                costly.mean_ns as f64 / 1e6
            ));
        }
        evidence.push(line);
    }
    (!evidence.is_empty()).then(|| Finding {
        rule: "agent_overhead_high",
        severity: Severity::Warning,
        title: "The agent costs the node too much".into(),
        evidence,
        fix: "Lower what the agent samples: a longer --sample-interval / --gpu-counters-interval-ms, fewer RDMA counters, or drop the process list; compare with servescope's agent_overhead benchmark.".into(),
    })
}
