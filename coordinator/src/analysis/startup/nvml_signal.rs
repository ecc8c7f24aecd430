//! The samples NVML inference reads (one agent reading of one GPU) and the signals
//! taken from them: PCIe receive rate, process-memory steps and the times the
//! process list was read, and how uncertain a boundary placed on them is.

use super::phase::{Phase, PhaseKind, Source};

/// One agent sample of one GPU, as far as inference needs it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct GpuPoint {
    pub t_ns: i64,
    pub util_pct: Option<f64>,
    /// Cumulative PCIe receive bytes.
    pub pcie_rx: Option<f64>,
    /// The process's GPU memory (None: not listed in this sample).
    pub proc_mem: Option<f64>,
    /// When the process list behind `proc_mem` was read (the agent reads it on its
    /// own cadence; None: at `t_ns`). Memory boundaries are placed on these times.
    pub proc_t_ns: Option<i64>,
    /// The device's used memory at `t_ns` (read every sample, where the process
    /// list may be read less often): it narrows when a process's change began.
    pub dev_mem: Option<f64>,
}

pub(super) const GB: f64 = 1e9;
pub(super) const GIB: f64 = 1073741824.0;
/// PCIe RX rate that counts as weight transfer.
pub const WEIGHT_RATE: f64 = 1.0 * GB;
/// Process memory step that counts as the KV cache allocation.
pub const KV_STEP: f64 = 1.0 * GIB;
/// Utilisation that counts as busy.
pub const BUSY_UTIL: f64 = 50.0;
/// A memory change that counts (graph capture, workspace allocations).
pub const MEM_CHANGE: f64 = 16.0 * 1048576.0;

pub(super) fn rate(p: &[GpuPoint], i: usize) -> f64 {
    match (p[i - 1].pcie_rx, p[i].pcie_rx) {
        (Some(a), Some(b)) if p[i].t_ns > p[i - 1].t_ns => {
            (b - a).max(0.0) / ((p[i].t_ns - p[i - 1].t_ns) as f64 / 1e9)
        }
        _ => 0.0,
    }
}

pub(super) fn dmem(p: &[GpuPoint], i: usize) -> f64 {
    match (p[i - 1].proc_mem, p[i].proc_mem) {
        (Some(a), Some(b)) => b - a,
        _ => 0.0,
    }
}

/// When sample `i`'s process memory was read.
pub(super) fn mt(p: &[GpuPoint], i: usize) -> i64 {
    p[i].proc_t_ns.unwrap_or(p[i].t_ns)
}

/// Where the memory change seen at sample `i` may have begun: the process-list
/// read before it, or later where the device's memory (read every sample) stayed
/// unchanged after that read: the change began after the last such sample.
pub(super) fn mstart(p: &[GpuPoint], i: usize) -> i64 {
    let before = mt(p, i.saturating_sub(1));
    // The first sample after `before` whose device memory moved; the change
    // cannot have begun before the sample just ahead of it.
    let seen = mt(p, i);
    // Samples are in time order: start at the first one read at or after `before`.
    let from = p.partition_point(|q| q.t_ns < before).max(1);
    let moved = (from..=i.min(p.len().saturating_sub(1)))
        .filter(|&k| p[k - 1].t_ns >= before && p[k - 1].t_ns < seen)
        .find(|&k| match (p[k - 1].dev_mem, p[k].dev_mem) {
            (Some(a), Some(b)) => (b - a).abs() >= MEM_CHANGE,
            _ => false,
        });
    moved.map_or(before, |k| before.max(p[k - 1].t_ns))
}

pub(super) fn util(p: &[GpuPoint], i: usize) -> f64 {
    p[i].util_pct.unwrap_or(0.0)
}

pub(super) fn phase(kind: PhaseKind, s: i64, e: i64, conf: f32, attrs: &[(&str, String)]) -> Phase {
    let mut ph = Phase::new(kind, Source::Nvml, conf).span(s, e.max(s));
    for (k, v) in attrs {
        ph.attrs.insert((*k).to_string(), v.clone());
    }
    ph
}

/// Attribute holding how far (ms) the true start may lie from the stated one.
pub const START_UNCERTAINTY: &str = "start_uncertainty_ms";
/// Attribute holding how far (ms) the true end may lie from the stated one.
pub const END_UNCERTAINTY: &str = "end_uncertainty_ms";

/// States each boundary's uncertainty (ns, from [`around`]), so a boundary seen at
/// 1 s cadence says about ±2 s and one seen at 100 ms about ±200 ms, whatever mix
/// of cadences the run had.
pub(super) fn uncertain(mut ph: Phase, start_ns: Option<i64>, end_ns: Option<i64>) -> Phase {
    for (key, v) in [(START_UNCERTAINTY, start_ns), (END_UNCERTAINTY, end_ns)] {
        if let Some(v) = v.filter(|v| *v > 0) {
            ph.attrs
                .insert(key.into(), format!("{:.0}", v as f64 / 1e6));
        }
    }
    ph
}

/// The spacing of the samples around interval `i` (the one ending at sample `i`,
/// in which a boundary was placed): that interval, `before` intervals ahead of it
/// and `after` behind it. Memory and PCIe edges take one interval behind (NVML
/// reports a step up to a sample late); utilisation edges one on each side (NVML's
/// utilisation averages a trailing window of about a sample).
pub(super) fn around(p: &[GpuPoint], i: usize, before: usize, after: usize) -> i64 {
    spread(p, i, before, after, |k| p[k].t_ns)
}

/// [`around`] for a boundary placed from process memory: the spacing of the
/// process-list reads.
pub(super) fn around_mem(p: &[GpuPoint], i: usize) -> i64 {
    // The next read that differs: a list read at a slower cadence repeats.
    let next = (i + 1..p.len())
        .find(|&k| mt(p, k) != mt(p, i))
        .unwrap_or(i);
    mt(p, i) - mstart(p, i) + mt(p, next) - mt(p, i)
}

pub(super) fn spread(
    p: &[GpuPoint],
    i: usize,
    before: usize,
    after: usize,
    t: impl Fn(usize) -> i64,
) -> i64 {
    let lo = i.saturating_sub(before).max(1);
    let hi = (i + after).min(p.len().saturating_sub(1));
    (lo..=hi).map(|k| t(k) - t(k - 1)).sum()
}

/// A boundary's uncertainty (ms) as stated on a phase, when it is.
pub fn uncertainty_ms(ph: &Phase, key: &str) -> Option<f64> {
    ph.attrs.get(key).and_then(|v| v.parse().ok())
}

/// PCIe bytes received while the process memory seen at sample `i` changed: from
/// the sample that first carried the previous process-list read up to `i` (the
/// agent may repeat a list read on several ticks; the change lands where a new
/// read appears).
pub(super) fn moved_since_read(p: &[GpuPoint], i: usize) -> f64 {
    if i == 0 {
        return 0.0;
    }
    let prev = mt(p, i - 1);
    let j = (0..i)
        .rev()
        .take_while(|&k| mt(p, k) == prev)
        .last()
        .unwrap_or(i - 1);
    match (p[j].pcie_rx, p[i].pcie_rx) {
        (Some(a), Some(b)) => (b - a).max(0.0),
        _ => 0.0,
    }
}

/// A process-memory step at sample `i` that is the KV cache allocation: at least
/// [`KV_STEP`] with under half of it matched by PCIe traffic in its interval.
pub(super) fn kv_step(p: &[GpuPoint], i: usize) -> bool {
    let step = dmem(p, i);
    let moved = rate(p, i) * (p[i].t_ns - p[i - 1].t_ns) as f64 / 1e9;
    step >= KV_STEP && moved < 0.5 * step
}
