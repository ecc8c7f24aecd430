//! The agent's self-telemetry as the bench streams it: per-call NVML costs per GPU
//! (`gpu<N>.<call>`) summed over the window, and the cadence changes it stated.

use std::collections::BTreeMap;

use servescope_proto::v1::{sample, CallCost, Sample};

/// What the stream carried that the report needs.
#[derive(Default)]
pub struct Seen {
    pub samples: u64,
    /// (t_ns, calls) of each self sample.
    pub calls: Vec<(u64, Vec<CallCost>)>,
    /// (t_ns, message) of each `collector_cadence` event.
    pub cadence: Vec<(u64, String)>,
    /// (t_ns, message) of each `collector_call` event (the memory call chosen).
    pub call_choices: Vec<(u64, String)>,
    /// Per GPU, whether its last cadence event began a burst.
    pub bursting: BTreeMap<u32, bool>,
    /// The last self sample: its time and whether any GPU had burst ticks in it.
    pub last_self: Option<(u64, bool)>,
}

impl Seen {
    pub fn add(&mut self, s: &Sample) {
        self.samples += 1;
        match &s.data {
            Some(sample::Data::SelfStats(x)) => {
                let burst = x.calls.iter().any(is_burst_tick);
                self.last_self = Some((s.t_ns, burst));
                self.calls.push((s.t_ns, x.calls.clone()));
            }
            Some(sample::Data::Event(e)) if e.kind == "collector_cadence" => {
                if let Some(gpu) = e.gpu_index {
                    let began = e.message.contains("burst cadence");
                    self.bursting.insert(gpu, began);
                }
                self.cadence.push((s.t_ns, e.message.clone()))
            }
            Some(sample::Data::Event(e)) if e.kind == "collector_call" => {
                self.call_choices.push((s.t_ns, e.message.clone()))
            }
            _ => {}
        }
    }
}

/// A GPU's `gpu<N>.burst_tick` with ticks in it: that GPU was in a burst.
pub fn is_burst_tick(c: &CallCost) -> bool {
    c.count > 0
        && c.name.starts_with("gpu")
        && c.name.ends_with(".burst_tick")
        && c.name != "gpu.burst_tick"
}

/// One GPU's calls over the window: name → (count, total ns).
pub type GpuCalls = BTreeMap<String, (u64, u64)>;

/// Per GPU index, the calls of the self samples stamped within (from, to].
/// `burst_tick` is kept apart by name (it spans the other calls of its tick).
pub fn per_gpu(seen: &Seen, from_ns: u64, to_ns: u64) -> BTreeMap<u32, GpuCalls> {
    let mut out: BTreeMap<u32, GpuCalls> = BTreeMap::new();
    for (t, calls) in seen
        .calls
        .iter()
        .filter(|(t, _)| *t > from_ns && *t <= to_ns)
    {
        let _ = t;
        for c in calls {
            let Some((gpu, call)) = c.name.strip_prefix("gpu").and_then(|r| r.split_once('.'))
            else {
                continue;
            };
            let Ok(gpu) = gpu.parse::<u32>() else {
                continue;
            };
            let e = out
                .entry(gpu)
                .or_default()
                .entry(call.to_string())
                .or_default();
            e.0 += c.count;
            e.1 += c.count.saturating_mul(c.mean_ns);
        }
    }
    out
}

/// Timings that span other calls of their GPU: a fast tick's and a slow pass's
/// whole share of one GPU (`tick`, `slow_tick`), and a tick in a burst.
const SPANS: [&str; 3] = ["burst_tick", "tick", "slow_tick"];

/// Wall time in NVML calls as % of one core over `seconds` (the spans left out:
/// they cover calls already counted).
pub fn calls_pct(calls: &GpuCalls, seconds: f64) -> f64 {
    let ns: u64 = calls
        .iter()
        .filter(|(n, _)| !SPANS.contains(&n.as_str()))
        .map(|(_, v)| v.1)
        .sum();
    pct(ns, seconds)
}

/// One GPU's whole share of the collector threads' work, wall, as % of one core:
/// its fast ticks (reads, burst observation) and slow passes (process list,
/// health). `None` for an agent that does not time them.
pub fn share_pct(calls: &GpuCalls, seconds: f64) -> Option<f64> {
    let tick = calls.get("tick")?;
    let slow = calls.get("slow_tick").map_or(0, |v| v.1);
    Some(pct(tick.1 + slow, seconds))
}

/// The GPU collector threads' CPU split into a per-GPU share and a part shared by
/// all GPUs (thread wake-ups, sample hand-off).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Split {
    /// Mean per-GPU share, % of one core.
    pub per_gpu: f64,
    /// The threads' CPU less every GPU's share, % of one core.
    pub shared: f64,
    /// `Some(wall)` when the GPUs' shares (wall time) added up to more than the
    /// threads' CPU: calls waited in the driver (a cold start holding its locks).
    /// The shares are then scaled down to the threads' CPU, which is all per GPU.
    pub waited_wall: Option<f64>,
}

/// Splits the collector threads' CPU (`threads_pct`) by each GPU's share (wall,
/// [`share_pct`]). Wall time counts CPU and waiting alike, so a share is an upper
/// bound of that GPU's CPU; the split never gives the GPUs more CPU than the
/// threads used. `None` without shares.
pub fn split(threads_pct: f64, shares: &[f64]) -> Option<Split> {
    if shares.is_empty() {
        return None;
    }
    let n = shares.len() as f64;
    let wall: f64 = shares.iter().sum();
    Some(if wall <= threads_pct {
        Split {
            per_gpu: wall / n,
            shared: threads_pct - wall,
            waited_wall: None,
        }
    } else {
        Split {
            per_gpu: threads_pct / n,
            shared: 0.0,
            waited_wall: Some(wall),
        }
    })
}

fn pct(ns: u64, seconds: f64) -> f64 {
    ns as f64 / 1e9 / seconds.max(1e-9) * 100.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use servescope_proto::v1::SelfSample;

    #[test]
    fn split_gives_the_rest_to_the_shared_part() {
        let s = split(0.06, &[0.02, 0.03]).unwrap();
        assert!((s.per_gpu - 0.025).abs() < 1e-12);
        assert!((s.shared - 0.01).abs() < 1e-12);
        assert_eq!(s.waited_wall, None);
        assert_eq!(split(0.06, &[]), None);
    }

    #[test]
    fn split_never_gives_the_gpus_more_than_the_threads_cpu() {
        // A cold start: NVML calls waited in the driver, 0.45 % wall against
        // 0.15 % of thread CPU.
        let s = split(0.15, &[0.45]).unwrap();
        assert!((s.per_gpu - 0.15).abs() < 1e-12);
        assert_eq!(s.shared, 0.0);
        assert_eq!(s.waited_wall, Some(0.45));
        let s = split(0.1, &[0.3, 0.1]).unwrap();
        assert!((s.per_gpu - 0.05).abs() < 1e-12);
    }

    #[test]
    fn per_gpu_sums_counts_and_time_within_the_window() {
        let mut seen = Seen::default();
        let cost = |name: &str, count, mean_ns| CallCost {
            name: name.into(),
            count,
            mean_ns,
            max_ns: mean_ns,
        };
        for t in [1, 2, 3] {
            seen.add(&Sample {
                t_ns: t,
                data: Some(sample::Data::SelfStats(SelfSample {
                    calls: vec![
                        cost("gpu", 10, 1000),
                        cost("gpu.memory", 10, 5),
                        cost("gpu0.memory", 10, 2000),
                        cost("gpu1.utilization", 5, 1000),
                        cost("gpu0.burst_tick", 10, 9000),
                        cost("gpu0.tick", 10, 3000),
                        cost("gpu0.slow_tick", 1, 50_000),
                        cost("rdma", 1, 1),
                    ],
                    ..Default::default()
                })),
                ..Default::default()
            });
        }
        let g = per_gpu(&seen, 1, 3);
        assert_eq!(g[&0]["memory"], (20, 40_000));
        assert_eq!(g[&1]["utilization"], (10, 10_000));
        assert_eq!(g.len(), 2);
        assert!((calls_pct(&g[&0], 1.0) - 0.004).abs() < 1e-12);
        // The share: 20 ticks × 3 µs + 2 slow passes × 50 µs = 160 µs in 1 s.
        assert!((share_pct(&g[&0], 1.0).unwrap() - 0.016).abs() < 1e-12);
        assert_eq!(share_pct(&g[&1], 1.0), None);
    }
}
