//! The memory-side phases of NVML inference: the weight load (sustained PCIe RX
//! while the process's memory grows) and the KV cache allocation (a big memory
//! step that no PCIe traffic explains).

use super::nvml_signal::{
    around, around_mem, dmem, kv_step, moved_since_read, mstart, mt, phase, rate, uncertain,
    GpuPoint, GB, GIB, KV_STEP, MEM_CHANGE, WEIGHT_RATE,
};
use super::phase::{Phase, PhaseKind};

/// A phase found by a rule, with the index of the sample it ended on.
pub(super) struct Found {
    pub phase: Phase,
    pub end_ns: i64,
    pub end_idx: usize,
}

/// A step of process memory at sample `k` that is weights landing: a change that
/// counts, and not a KV-sized step without the PCIe traffic to carry it. A fast
/// load from the page cache moves more than [`KV_STEP`] between two process-list
/// reads; what tells it from the KV allocation is the traffic, not the size.
fn weight_growth(p: &[GpuPoint], k: usize) -> bool {
    let d = dmem(p, k);
    d > MEM_CHANGE / 4.0 && (d < KV_STEP || moved_since_read(p, k) >= 0.5 * d)
}

/// Weight load: the first sustained PCIe RX run at or after `cursor` (dips of ≤ 2
/// samples bridged) is the evidence; its edges come from the process's memory
/// growth overlapping it, because GPM's PCIe rates trail the memory by one or two
/// samples (seen on an H200: RX still at full rate 200 ms after the last tensor
/// landed).
pub(super) fn weight_load(p: &[GpuPoint], cursor: usize) -> Option<Found> {
    let dt = |i: usize| if i > 0 { p[i].t_ns - p[i - 1].t_ns } else { 0 };
    let a = (cursor.max(1)..p.len()).find(|&i| rate(p, i) >= WEIGHT_RATE)?;
    let mut b = a;
    let mut i = a + 1;
    while i < p.len() && i <= b + 3 {
        if rate(p, i) >= WEIGHT_RATE {
            b = i;
        }
        i += 1;
    }
    if b == a {
        return None;
    }
    let mut rs: Vec<f64> = (a..=b).map(|i| rate(p, i)).collect();
    rs.sort_by(f64::total_cmp);
    let peak = rs[rs.len() / 2].max(1.0);
    let frac = |i: usize| (rate(p, i) / peak).clamp(0.0, 1.0);
    let bytes = p[b].pcie_rx.unwrap_or(0.0) - p[a - 1].pcie_rx.unwrap_or(0.0);
    // Memory growth run touching [a-3, b].
    let lo = a.saturating_sub(3).max(cursor).max(1);
    let g0 = (lo..=b).find(|&k| weight_growth(p, k));
    let (start, end, end_idx, edges, spacing) = match g0 {
        Some(g0) => {
            let mut g1 = g0;
            let mut k = g0 + 1;
            // Follow growth (gaps of ≤ 2 flat samples) up to the KV allocation.
            while k < p.len() && k <= g1 + 3 && !kv_step(p, k) {
                if weight_growth(p, k) {
                    g1 = k;
                }
                k += 1;
            }
            (
                mstart(p, g0),
                mt(p, g1),
                g1,
                "process memory growth",
                (around_mem(p, g0), around_mem(p, g1)),
            )
        }
        None => (
            p[a].t_ns - (dt(a) as f64 * frac(a)) as i64,
            p[b - 1].t_ns + (dt(b) as f64 * frac(b)) as i64,
            b,
            "PCIe RX rate",
            (around(p, a, 0, 1), around(p, b, 0, 1)),
        ),
    };
    let ph = phase(
        PhaseKind::WeightLoad,
        start,
        end,
        0.7,
        &[
            (
                "evidence",
                "sustained PCIe RX while process memory grew".into(),
            ),
            ("edges_from", edges.into()),
            ("pcie_rx_gb", format!("{:.2}", bytes / GB)),
            ("median_rate_gbps", format!("{:.2}", peak / GB)),
        ],
    );
    Some(Found {
        phase: uncertain(ph, Some(spacing.0), Some(spacing.1)),
        end_ns: end,
        end_idx,
    })
}

/// KV cache: the first big memory step at or after `cursor` without matching PCIe
/// traffic.
pub(super) fn kv_cache(p: &[GpuPoint], cursor: usize) -> Option<Found> {
    let i = (cursor.max(1)..p.len()).find(|&i| kv_step(p, i))?;
    let ph = phase(
        PhaseKind::KvCacheAllocation,
        mstart(p, i),
        mt(p, i),
        0.6,
        &[
            (
                "evidence",
                "process memory step without PCIe traffic".into(),
            ),
            ("step_gib", format!("{:.2}", dmem(p, i) / GIB)),
        ],
    );
    Some(Found {
        phase: uncertain(ph, Some(around_mem(p, i)), Some(around_mem(p, i))),
        end_ns: mt(p, i),
        end_idx: i,
    })
}
