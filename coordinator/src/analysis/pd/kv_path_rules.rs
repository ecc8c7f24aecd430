//! Diagnosis rules on the KV path's stored fabric probe ([`super::kv_path`]): the
//! path emulated over tcp for the connector's operation, a NIXL post call that takes
//! most of the transfer, and a measured rate above the link's line rate.

use super::attribution::{Attribution, Finding, Severity};
use super::kv_path::KvPath;

/// A NIXL post call longer than this share of the transfer (post to done) on GPU
/// memory: the transfer is not handed to the hardware, it is done inside the call.
pub const POST_SHARE: f64 = 0.5;
/// A measured rate above the line rate by more than this factor is a broken
/// measurement (rounding and unit slack stay below it).
pub const LINE_RATE_SLACK: f64 = 1.05;

const EMULATION_FIX: &str = "Give NIXL's backend a transport that does RMA natively: point the engines (and the probe) at a UCX with cuda_ipc/cuda_copy for GPU memory on one node, efa or rc across nodes; check UCX_TLS in the engines' environment, or use NIXL's LIBFABRIC backend over EFA.";

fn probe_line(p: &KvPath) -> String {
    format!(
        "fabric probe run {} ({} → {}, {}, memory {})",
        p.fabric_run,
        p.from,
        p.to,
        p.transport,
        if p.memory.is_empty() { "?" } else { &p.memory }
    )
}

pub fn kv_path_emulated(a: &Attribution) -> Option<Finding> {
    let p = a.kv.path.as_ref()?;
    let (lines, fix) = p.emulation(a.kv.op)?;
    let mut evidence = vec![format!(
        "{}: {} is software emulation over tcp",
        probe_line(p),
        a.kv.op.name()
    )];
    evidence.extend(lines);
    Some(Finding {
        rule: "kv_path_emulated_over_tcp",
        severity: Severity::Critical,
        title: "KV path emulated over TCP".into(),
        evidence,
        fix: fix.map_or_else(|| EMULATION_FIX.to_string(), str::to_string),
    })
}

pub fn kv_post_dominates(a: &Attribution) -> Option<Finding> {
    let p = a.kv.path.as_ref()?;
    // Only GPU memory: on host memory UCX copies inside the post call, so a post as
    // long as the transfer is normal there.
    if !p.nixl || !p.gpu_memory() {
        return None;
    }
    let bad: Vec<String> = p
        .sizes
        .iter()
        .filter(|s| a.kv.op.matches(&s.op))
        .filter_map(|s| {
            let (post, xfer) = (s.post_avg_us?, s.transfer_avg_us?);
            (xfer > 0.0 && post > POST_SHARE * xfer).then(|| {
                format!(
                    "{} at {} B: post {post:.1} µs of {xfer:.1} µs per transfer ({:.0} %)",
                    s.op,
                    s.size,
                    post / xfer * 100.0
                )
            })
        })
        .collect();
    if bad.is_empty() {
        return None;
    }
    let mut evidence = vec![probe_line(p)];
    evidence.extend(bad);
    Some(Finding {
        rule: "kv_post_dominates",
        severity: Severity::Warning,
        title: "NIXL's post call takes most of the KV transfer".into(),
        evidence,
        fix: "On GPU memory the post call should only hand the transfer to the hardware: a post this long means the backend copies or emulates inside it (a host-staged path, a software protocol); check the probe's protocol lines (servescope fabric probe --transport nixl) and the UCX/libfabric the engines load.".into(),
    })
}

pub fn kv_rate_above_line_rate(a: &Attribution) -> Option<Finding> {
    let p = a.kv.path.as_ref()?;
    let line = p.line_rate_gbps?;
    let bad: Vec<String> = p
        .sizes
        .iter()
        .filter(|s| s.gbps > LINE_RATE_SLACK * line)
        .map(|s| format!("{} at {} B: {:.2} GB/s", s.op, s.size, s.gbps))
        .collect();
    if bad.is_empty() {
        return None;
    }
    let mut evidence = vec![format!(
        "{}: the link carries at most {line:.2} GB/s ({})",
        probe_line(p),
        p.line_rate_source.as_deref().unwrap_or("line rate")
    )];
    evidence.extend(bad);
    Some(Finding {
        rule: "kv_rate_above_line_rate",
        severity: Severity::Warning,
        title: "The fabric probe measured more than the link's line rate".into(),
        evidence,
        fix: "A broken measurement, not a fast link: the transfer did not cross the link it names (loopback, the same GPU, a cached or skipped copy) or completions were counted early; rerun the probe with verification on and between the engines' own nodes/GPUs before using it as the KV path's capacity.".into(),
    })
}
