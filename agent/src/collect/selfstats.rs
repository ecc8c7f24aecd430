//! Self-telemetry: the agent's own CPU time, resident memory, ring size and the
//! cost of each collector call, so its overhead is visible in its own stream.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use servescope_proto::v1::{sample, SampleKind, SelfSample};

use crate::collect::{CallCosts, Collector};
use crate::ring::Ring;

pub struct SelfCollector {
    pub ring: Arc<Ring>,
    pub streams: Arc<AtomicU64>,
    /// The process is another program's (see `AgentConfig::embedded`).
    pub shares_process: bool,
}

/// CPU seconds (user + system, every thread) of this process.
pub fn cpu_seconds() -> f64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    t.tv_sec as f64 + t.tv_nsec as f64 / 1e9
}

/// Resident set size of this process in bytes, from /proc/self/statm.
pub fn rss_bytes() -> u64 {
    let text = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = text
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    pages * u64::try_from(rustix::param::page_size()).unwrap_or(4096)
}

impl Collector for SelfCollector {
    /// Named after the one kind it samples.
    fn name(&self) -> &'static str {
        SampleKind::Self_.name()
    }

    fn sample(&mut self, costs: &CallCosts) -> Option<sample::Data> {
        let st = self.ring.state();
        Some(sample::Data::SelfStats(SelfSample {
            cpu_seconds_total: cpu_seconds(),
            rss_bytes: rss_bytes(),
            ring_samples: st.samples as u64,
            ring_bytes_estimate: st.bytes as u64,
            streams_active: self.streams.load(Ordering::Relaxed),
            calls: costs.take(),
            shares_process: self.shares_process,
        }))
    }
}
