//! GPU rules over the agents' NVML samples and inventories: clocks throttled (with
//! NVML's reason), memory near full while serving, a PCIe link trained below its
//! maximum, PCIe replays rising, NVLink links inactive.

use std::collections::BTreeMap;

use servescope_proto::v1::GpuReading;

use super::telemetry::{HostTelemetry, Telemetry};
use super::{Finding, Severity};

/// A throttle reason held for at least this share of a GPU's samples is a finding
/// (a one-off power-cap blip at a load step is not).
pub const THROTTLE_MIN_SHARE: f64 = 0.05;
/// …and for at least this many samples.
pub const THROTTLE_MIN_SAMPLES: usize = 3;
/// Memory used above this share of the GPU's total while it computes is near full
/// (vLLM's default --gpu-memory-utilization is 0.9 plus the CUDA context).
pub const MEMORY_NEAR_FULL: f64 = 0.97;
/// Samples above [`MEMORY_NEAR_FULL`] needed (one is a transient).
pub const MEMORY_MIN_SAMPLES: usize = 3;
/// "Serving": GPU utilisation above this (%). PCIe links also train down when idle
/// to save power, so the link rule only looks at busy samples.
pub const BUSY_UTIL_PCT: u32 = 10;
/// PCIe replays added during the run worth a finding.
pub const PCIE_REPLAYS_MIN: u64 = 10;

/// NVML clock event (throttle) reasons that slow a GPU down: (bit, name, hardware).
pub const THROTTLE_REASONS: &[(u64, &str, bool)] = &[
    (0x4, "SW power cap", false),
    (0x8, "HW slowdown", true),
    (0x20, "SW thermal slowdown", false),
    (0x40, "HW thermal slowdown", true),
    (0x80, "HW power brake slowdown", true),
];

/// Readings per (host index, GPU index), in time order.
fn per_gpu(t: &Telemetry) -> BTreeMap<(usize, u32), Vec<(u64, &GpuReading)>> {
    let mut m: BTreeMap<(usize, u32), Vec<(u64, &GpuReading)>> = BTreeMap::new();
    for (hi, h) in t.hosts.iter().enumerate() {
        for (ts, r) in &h.gpu {
            m.entry((hi, r.index)).or_default().push((*ts, r));
        }
    }
    m
}

fn busy(r: &GpuReading) -> bool {
    r.util_gpu_pct.is_some_and(|u| u > BUSY_UTIL_PCT)
}

pub fn gpu_throttled(t: &Telemetry) -> Option<Finding> {
    let mut evidence = Vec::new();
    let mut hw = false;
    for ((hi, gi), rs) in per_gpu(t) {
        let h = &t.hosts[hi];
        for (bit, name, hardware) in THROTTLE_REASONS {
            let hits: Vec<&(u64, &GpuReading)> = rs
                .iter()
                .filter(|(_, r)| r.throttle_reasons.is_some_and(|m| m & bit != 0))
                .collect();
            let share = hits.len() as f64 / rs.len().max(1) as f64;
            if hits.len() < THROTTLE_MIN_SAMPLES || share < THROTTLE_MIN_SHARE {
                continue;
            }
            hw |= hardware;
            let (first, last) = (hits[0], hits[hits.len() - 1]);
            let clocks: Vec<u32> = hits.iter().filter_map(|(_, r)| r.sm_clock_mhz).collect();
            let temp = hits.iter().filter_map(|(_, r)| r.temperature_c).max();
            let power = hits.iter().filter_map(|(_, r)| r.power_mw).max();
            evidence.push(format!(
                "{}: {name} (NVML reason 0x{bit:x}) in {} of {} samples ({:.0} %), from {} to {}{}{}{}",
                h.gpu_label(gi),
                hits.len(),
                rs.len(),
                share * 100.0,
                h.when(t.started_ns, first.0),
                h.when(t.started_ns, last.0),
                clocks.iter().min().map_or(String::new(), |c| format!("; SM clock down to {c} MHz")),
                temp.map_or(String::new(), |c| format!("; up to {c} °C")),
                power.map_or(String::new(), |p| format!("; up to {:.0} W", f64::from(p) / 1e3)),
            ));
        }
    }
    if evidence.is_empty() {
        return None;
    }
    Some(Finding {
        rule: "gpu_throttled",
        severity: if hw { Severity::Critical } else { Severity::Warning },
        title: "GPU clocks throttled during the run".into(),
        evidence,
        fix: "Thermal or hardware slowdown: check cooling, fans and inlet temperature, and the power supply/brake signal (nvidia-smi -q -d PERFORMANCE,TEMPERATURE,POWER); a SW power cap: check the power limit (nvidia-smi -q -d POWER) against the board's default. Latency measured while throttled is not the hardware's.".into(),
    })
}

fn total_bytes(h: &HostTelemetry, r: &GpuReading) -> Option<u64> {
    h.inventory
        .as_ref()
        .and_then(|i| i.gpus.iter().find(|g| g.index == r.index))
        .map(|g| g.memory_total_bytes)
        .filter(|t| *t > 0)
        .or_else(|| Some(r.memory_used_bytes? + r.memory_free_bytes?))
}

pub fn gpu_memory_near_full(t: &Telemetry) -> Option<Finding> {
    let mut evidence = Vec::new();
    for ((hi, gi), rs) in per_gpu(t) {
        let h = &t.hosts[hi];
        let full: Vec<(u64, u64, u64)> = rs
            .iter()
            .filter(|(_, r)| busy(r))
            .filter_map(|(ts, r)| {
                let (used, total) = (r.memory_used_bytes?, total_bytes(h, r)?);
                (used as f64 >= MEMORY_NEAR_FULL * total as f64).then_some((*ts, used, total))
            })
            .collect();
        if full.len() < MEMORY_MIN_SAMPLES {
            continue;
        }
        let peak = full.iter().max_by_key(|x| x.1).copied().unwrap_or(full[0]);
        evidence.push(format!(
            "{}: {:.2} of {:.2} GiB used ({:.1} %) at {}; {} busy samples above {:.0} %, the first at {}",
            h.gpu_label(gi),
            peak.1 as f64 / (1u64 << 30) as f64,
            peak.2 as f64 / (1u64 << 30) as f64,
            peak.1 as f64 / peak.2 as f64 * 100.0,
            h.when(t.started_ns, peak.0),
            full.len(),
            MEMORY_NEAR_FULL * 100.0,
            h.when(t.started_ns, full[0].0),
        ));
    }
    if evidence.is_empty() {
        return None;
    }
    Some(Finding {
        rule: "gpu_memory_near_full",
        severity: Severity::Warning,
        title: "GPU memory near full while serving".into(),
        evidence,
        fix: "Another process or a larger-than-planned KV cache leaves no headroom (allocation failures, preemptions, swapping): check the GPU's processes (servescope show), lower --gpu-memory-utilization or --max-num-seqs, or move other work off the GPU.".into(),
    })
}

pub fn pcie_link_degraded(t: &Telemetry) -> Option<Finding> {
    let mut evidence = Vec::new();
    for ((hi, gi), rs) in per_gpu(t) {
        let h = &t.hosts[hi];
        let bad: Vec<&(u64, &GpuReading)> = rs
            .iter()
            .filter(|(_, r)| {
                let gen = matches!((r.pcie_link_gen, r.pcie_link_gen_max), (Some(g), Some(m)) if g < m) && busy(r);
                let width = matches!((r.pcie_link_width, r.pcie_link_width_max), (Some(w), Some(m)) if w < m);
                gen || width
            })
            .collect();
        let Some((ts, r)) = bad.first() else { continue };
        evidence.push(format!(
            "{}: PCIe Gen{} x{} of Gen{} x{} at {} ({} of {} samples)",
            h.gpu_label(gi),
            r.pcie_link_gen.unwrap_or(0),
            r.pcie_link_width.unwrap_or(0),
            r.pcie_link_gen_max.unwrap_or(0),
            r.pcie_link_width_max.unwrap_or(0),
            h.when(t.started_ns, *ts),
            bad.len(),
            rs.len()
        ));
    }
    if evidence.is_empty() {
        return None;
    }
    Some(Finding {
        rule: "pcie_link_degraded",
        severity: Severity::Warning,
        title: "PCIe link trained below its maximum".into(),
        evidence,
        fix: "The GPU's link to the host runs at a lower generation or fewer lanes than it supports: host↔GPU copies (weights, KV offload, RDMA to GPU memory) slow down. Reseat the GPU or riser, check the BIOS PCIe settings and the slot, and compare with lspci -vv (LnkSta vs LnkCap).".into(),
    })
}

pub fn pcie_replays_rising(t: &Telemetry) -> Option<Finding> {
    let mut evidence = Vec::new();
    for ((hi, gi), rs) in per_gpu(t) {
        let h = &t.hosts[hi];
        let counts: Vec<(u64, u64)> = rs
            .iter()
            .filter_map(|(ts, r)| Some((*ts, r.pcie_replay_count?)))
            .collect();
        let (Some(first), Some(last)) = (counts.first(), counts.last()) else {
            continue;
        };
        let added = last.1.saturating_sub(first.1);
        if added < PCIE_REPLAYS_MIN {
            continue;
        }
        let rise = counts
            .iter()
            .find(|c| c.1 > first.1)
            .map_or(last.0, |c| c.0);
        evidence.push(format!(
            "{}: {added} PCIe replays in {:.1} s ({} → {}), rising from {}",
            h.gpu_label(gi),
            HostTelemetry::secs(first.0, last.0),
            first.1,
            last.1,
            h.when(t.started_ns, rise)
        ));
    }
    if evidence.is_empty() {
        return None;
    }
    Some(Finding {
        rule: "pcie_replays_rising",
        severity: Severity::Warning,
        title: "PCIe replays rising".into(),
        evidence,
        fix: "The link retransmits corrupted packets: a marginal slot, riser or cable. Check AER errors in the kernel log, reseat the GPU, and ask for the hardware to be inspected if the count keeps rising.".into(),
    })
}

pub fn nvlink_inactive(t: &Telemetry) -> Option<Finding> {
    let mut evidence = Vec::new();
    for h in &t.hosts {
        let Some(inv) = &h.inventory else { continue };
        let mut most: BTreeMap<&str, u32> = BTreeMap::new();
        for g in &inv.gpus {
            let m = most.entry(g.name.as_str()).or_default();
            *m = (*m).max(g.nvlink_links);
        }
        for g in &inv.gpus {
            let peers = most.get(g.name.as_str()).copied().unwrap_or(0);
            if peers > 0 && g.nvlink_links < peers {
                evidence.push(format!(
                    "{}: {} active NVLink links where the other {} GPUs of this host have {peers} (inventory at {})",
                    h.gpu_label(g.index),
                    g.nvlink_links,
                    g.name,
                    h.when(t.started_ns, inv.now_ns)
                ));
            }
        }
    }
    if evidence.is_empty() {
        return None;
    }
    Some(Finding {
        rule: "nvlink_inactive",
        severity: Severity::Critical,
        title: "NVLink links inactive".into(),
        evidence,
        fix: "Tensor-parallel and intra-node KV traffic on this GPU falls back to fewer links or PCIe: check nvidia-smi nvlink -s and the fabric manager (systemctl status nvidia-fabricmanager); reset the GPU or reboot, and have the baseboard inspected if links stay down.".into(),
    })
}
