//! Startup phases inferred from what NVML sees of a serving process, for when no log
//! is available (and to cross-check logs): the process's GPU memory, the GPU's PCIe
//! receive rate and its utilisation, sampled by the agent.
//!
//! Rules (each phase carries its evidence in `attrs` and a confidence < 1):
//! - CUDA context: the process first holds GPU memory.
//! - Weight load: the first sustained PCIe RX run (≥ 1 GB/s) after that; its edges
//!   come from the process memory growth overlapping it (a step counts as growth by
//!   the PCIe traffic behind it, whatever its size), else
//!   placed inside the sample interval by the fraction of peak rate it reached.
//! - KV cache allocation: a ≥ 1 GiB step of process memory in one interval with
//!   little PCIe traffic (memory that came from nowhere).
//! - GPU busy (first kernels / serving): the first sustained run of utilisation
//!   ≥ 50 % after the weights; its end is the last sample at ≥ 90 % of the plateau
//!   (NVML utilisation averages a trailing window, so edges lag by up to a sample).
//! - CUDA graph capture: the last cluster of small memory changes with the GPU
//!   mostly idle, just before GPU busy.
//! - torch.compile (CPU-bound, GPU idle): from the first GPU activity after the weight
//!   load / KV allocation to the graph capture, when that stretch is ≥ 2 s.

use super::nvml_memory::{kv_cache, weight_load};
use super::nvml_signal::{around, around_mem, dmem, mstart, mt, phase, rate, uncertain, util, GB};
pub use super::nvml_signal::{
    uncertainty_ms, GpuPoint, BUSY_UTIL, END_UNCERTAINTY, KV_STEP, MEM_CHANGE, START_UNCERTAINTY,
    WEIGHT_RATE,
};
use super::phase::{PhaseKind, Timeline};

/// Infers the phases of one process from its GPU's samples (sorted by time).
pub fn infer(points: &[GpuPoint], host: Option<String>) -> Timeline {
    let mut tl = Timeline::new(host);
    let p = points;
    let Some(first) = p.iter().position(|x| x.proc_mem.is_some_and(|m| m > 0.0)) else {
        return tl;
    };
    let dt = |i: usize| if i > 0 { p[i].t_ns - p[i - 1].t_ns } else { 0 };
    // Only the end is visible: NVML knows nothing of a process before its context.
    let ctx = phase(
        PhaseKind::CudaContext,
        mt(p, first),
        mt(p, first),
        0.5,
        &[(
            "evidence",
            "process first holds GPU memory (its start is invisible to NVML)".into(),
        )],
    );
    let mut ctx = uncertain(ctx, None, (first > 0).then(|| around_mem(p, first)));
    ctx.start_ns = None;
    ctx.duration_s = None;
    tl.phases.push(ctx);
    let mut cursor = first + 1;

    let mut weights_end = None;
    if let Some(w) = weight_load(p, cursor) {
        tl.phases.push(w.phase);
        weights_end = Some(w.end_ns);
        cursor = w.end_idx + 1;
    }
    let mut kv_end_idx = None;
    if let Some(kv) = kv_cache(p, cursor) {
        tl.phases.push(kv.phase);
        kv_end_idx = Some(kv.end_idx);
        cursor = kv.end_idx + 1;
    }

    // GPU busy: first sustained (≥ 3 samples) utilisation ≥ 50 % after the weights.
    let busy_from = weights_end
        .and_then(|e| p.iter().position(|x| x.t_ns > e))
        .unwrap_or(first)
        .max(kv_end_idx.map_or(0, |k| k + 1));
    let mut busy = None;
    let mut i = busy_from.max(1);
    while i + 2 < p.len() {
        if (i..i + 3).all(|j| util(p, j) >= BUSY_UTIL) {
            let mut j = i;
            while j + 1 < p.len() && util(p, j + 1) >= BUSY_UTIL {
                j += 1;
            }
            let plateau = (i..=j).map(|k| util(p, k)).fold(0.0, f64::max);
            let last = (i..=j)
                .rev()
                .find(|&k| util(p, k) >= 0.9 * plateau)
                .unwrap_or(j);
            busy = Some((i, last));
            break;
        }
        i += 1;
    }

    // Graph capture: the last cluster of memory changes before GPU busy.
    let mut capture_start = None;
    if let Some((bi, _)) = busy {
        let changes: Vec<usize> = (cursor.max(1)..bi)
            .filter(|&k| dmem(p, k).abs() >= MEM_CHANGE && util(p, k) < BUSY_UTIL)
            .collect();
        if let Some(&last) = changes.last() {
            if p[bi].t_ns - p[last].t_ns <= 1_000_000_000 {
                let mut firstc = last;
                for &k in changes.iter().rev() {
                    if firstc - k <= 2 {
                        firstc = k;
                    } else {
                        break;
                    }
                }
                let s = mstart(p, firstc);
                let ph = phase(
                    PhaseKind::CudaGraphCapture,
                    s,
                    mt(p, last),
                    0.5,
                    &[(
                        "evidence",
                        "memory changes with the GPU mostly idle, before sustained work".into(),
                    )],
                );
                tl.phases.push(uncertain(
                    ph,
                    Some(around_mem(p, firstc)),
                    Some(around_mem(p, last)),
                ));
                capture_start = Some((firstc, s));
            }
        }
    }

    // torch.compile: GPU-idle stretch from the first activity after the previous
    // phase up to the capture.
    if let Some((ci, cs)) = capture_start {
        let busy_at = |k: usize| {
            rate(p, k) >= 0.05 * GB || dmem(p, k).abs() >= MEM_CHANGE || util(p, k) > 0.0
        };
        // Skip the tail of the previous phase (GPM rates and NVML utilisation trail by
        // a sample or two), then take the first activity after a quiet sample.
        let mut from = cursor.max(1);
        while from < ci && busy_at(from) {
            from += 1;
        }
        let active = (from..ci).find(|&k| busy_at(k));
        if let Some(a) = active {
            let s = p[a].t_ns - dt(a);
            if cs - s >= 2_000_000_000 {
                let ph = phase(
                    PhaseKind::TorchCompile,
                    s,
                    cs,
                    0.4,
                    &[("evidence", "GPU mostly idle between allocation and graph capture (CPU-bound: torch.compile / profiling)".into())],
                );
                tl.phases.push(uncertain(
                    ph,
                    Some(around(p, a, 1, 1)),
                    Some(around(p, ci, 0, 1)),
                ));
            }
        }
    }

    if let Some((bi, last)) = busy {
        let ph = phase(
            PhaseKind::GpuBusy,
            p[bi].t_ns - dt(bi),
            p[last].t_ns,
            0.6,
            &[("evidence", format!("utilisation ≥ {BUSY_UTIL} % sustained"))],
        );
        // The drop lies in the interval after the last busy sample.
        tl.phases.push(uncertain(
            ph,
            Some(around(p, bi, 1, 1)),
            Some(around(p, last + 1, 1, 1)),
        ));
    }
    tl.sort();
    tl
}

#[cfg(test)]
mod tests {
    use super::super::nvml_signal::GIB;
    use super::super::phase::Source;
    use super::*;

    /// A synthetic cold start at 100 ms sampling: context at 1 s, 3 s of weights at
    /// 5 GB/s, KV step at 4.5 s, compile 5–15 s, capture 15–15.3 s, serving 15.4–19 s.
    fn synthetic() -> Vec<GpuPoint> {
        let mut v = Vec::new();
        let (mut rx, mut mem) = (0.0, None::<f64>);
        for k in 0..220 {
            let t = k as f64 * 0.1;
            let mut util = 0.0;
            if t >= 1.0 && mem.is_none() {
                mem = Some(0.5 * GIB);
            }
            if t > 1.2 && t <= 4.2 {
                rx += 5.0 * GB * 0.1;
                mem = mem.map(|m| m + 5.0 * GB * 0.1);
            }
            if (t - 4.5).abs() < 0.05 {
                mem = mem.map(|m| m + 20.0 * GIB);
            }
            if (t - 5.1).abs() < 0.05 {
                mem = mem.map(|m| m + 0.1 * GIB);
                util = 5.0;
            }
            if t > 15.05 && t < 15.35 {
                mem = mem.map(|m| m + 0.2 * GIB);
            }
            if t > 15.45 && t <= 19.0 {
                util = 99.0;
            }
            v.push(GpuPoint {
                t_ns: (t * 1e9) as i64,
                util_pct: Some(util),
                pcie_rx: Some(rx),
                proc_mem: mem,
                proc_t_ns: None,
                dev_mem: None,
            });
        }
        v
    }

    #[test]
    fn synthetic_cold_start_phases_land_near_the_truth() {
        let tl = infer(&synthetic(), None);
        let near = |k: PhaseKind, s: f64, e: f64| {
            let ph = tl
                .get(k)
                .unwrap_or_else(|| panic!("{k:?} missing: {tl:#?}"));
            let (ps, pe) = (
                ph.start_ns.unwrap_or(0) as f64 / 1e9,
                ph.end_ns.unwrap_or(0) as f64 / 1e9,
            );
            assert!(
                (ps - s).abs() <= 0.25 && (pe - e).abs() <= 0.25,
                "{k:?}: {ps}..{pe} vs {s}..{e}"
            );
        };
        let ctx = tl.get(PhaseKind::CudaContext).expect("context");
        assert_eq!(ctx.start_ns, None);
        assert_eq!(ctx.end_ns, Some(1_000_000_000));
        near(PhaseKind::WeightLoad, 1.2, 4.2);
        near(PhaseKind::KvCacheAllocation, 4.4, 4.5);
        near(PhaseKind::TorchCompile, 5.0, 15.0);
        near(PhaseKind::CudaGraphCapture, 15.0, 15.3);
        near(PhaseKind::GpuBusy, 15.4, 19.0);
        assert!(tl
            .phases
            .iter()
            .all(|p| p.source == Source::Nvml && p.confidence < 1.0));
    }

    /// The agent reads the process list on its own thread: each sample carries
    /// when it was read, and memory boundaries sit on those times.
    #[test]
    fn memory_boundaries_use_the_process_list_times() {
        let pts: Vec<GpuPoint> = synthetic()
            .into_iter()
            .map(|p| GpuPoint {
                proc_t_ns: Some(p.t_ns - 60_000_000),
                ..p
            })
            .collect();
        let tl = infer(&pts, None);
        let ctx = tl.get(PhaseKind::CudaContext).expect("context");
        assert_eq!(ctx.end_ns, Some(940_000_000));
        let kv = tl.get(PhaseKind::KvCacheAllocation).expect("kv");
        assert_eq!(
            (kv.start_ns, kv.end_ns),
            (Some(4_340_000_000), Some(4_440_000_000))
        );
        let base = infer(&synthetic(), None);
        let w = |t: &Timeline| {
            t.get(PhaseKind::WeightLoad)
                .and_then(|p| p.start_ns)
                .unwrap()
        };
        assert_eq!(w(&tl), w(&base) - 60_000_000);
    }

    /// A process list read every 500 ms places a change on the read before it;
    /// the device's memory, read every sample, narrows that to the sample before
    /// the device moved.
    #[test]
    fn device_memory_narrows_where_a_slow_listed_change_began() {
        let pts: Vec<GpuPoint> = synthetic()
            .into_iter()
            .map(|p| {
                // The list read every 500 ms (at …4.7, 15.2 s …), the last one at or
                // before the sample; the capture's memory (15.05 s on) stays.
                let listed = p.t_ns - (p.t_ns - 200_000_000).rem_euclid(500_000_000);
                let kept = if p.t_ns > 15_350_000_000 {
                    0.2 * GIB
                } else {
                    0.0
                };
                GpuPoint {
                    proc_t_ns: Some(listed),
                    dev_mem: p.proc_mem.map(|m| m + kept),
                    ..p
                }
            })
            .collect();
        // The process memory as the slow list saw it.
        let listed: Vec<GpuPoint> = pts
            .iter()
            .map(|p| GpuPoint {
                proc_mem: pts
                    .iter()
                    .rev()
                    .find(|q| q.t_ns <= p.proc_t_ns.unwrap_or(p.t_ns))
                    .and_then(|q| q.dev_mem),
                ..*p
            })
            .collect();
        let cap = |t: &Timeline| {
            t.get(PhaseKind::CudaGraphCapture)
                .and_then(|p| p.start_ns)
                .expect("capture")
        };
        let narrowed = cap(&infer(&listed, None));
        let coarse = cap(&infer(
            &listed
                .iter()
                .map(|p| GpuPoint {
                    dev_mem: None,
                    ..*p
                })
                .collect::<Vec<_>>(),
            None,
        ));
        // The capture's memory moves between the 15.0 and 15.1 s samples: the list
        // first shows it at 15.2 s and puts the start on its read before (14.7 s);
        // the device memory on the 15.0 s sample.
        assert!(narrowed > coarse, "{narrowed} <= {coarse}");
        assert!(
            (narrowed - 15_000_000_000).abs() <= 100_000_000,
            "{narrowed}"
        );
    }

    #[test]
    fn no_process_memory_means_no_phases_and_garbage_never_panics() {
        assert!(infer(&[], None).phases.is_empty());
        let idle: Vec<GpuPoint> = (0..50)
            .map(|k| GpuPoint {
                t_ns: k * 100_000_000,
                ..Default::default()
            })
            .collect();
        assert!(infer(&idle, None).phases.is_empty());
        let mut x: u64 = 7;
        for _ in 0..200 {
            let pts: Vec<GpuPoint> = (0..60)
                .map(|k| {
                    x = x
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    GpuPoint {
                        t_ns: k * 100_000_000 + (x % 7) as i64,
                        util_pct: (!x.is_multiple_of(3)).then_some((x >> 8) as f64 % 101.0),
                        pcie_rx: (!x.is_multiple_of(5)).then_some((x >> 16) as f64),
                        proc_mem: (!x.is_multiple_of(4)).then_some((x >> 24) as f64),
                        proc_t_ns: (!x.is_multiple_of(6)).then_some(k * 100_000_000 - 40_000_000),
                        dev_mem: (!x.is_multiple_of(7)).then_some((x >> 20) as f64),
                    }
                })
                .collect();
            let tl = infer(&pts, None);
            assert!(tl.phases.iter().all(|p| p.start_ns <= p.end_ns));
        }
    }
}
