//! Cold starts of several processes on one node (tensor-parallel ranks, one per
//! GPU): each GPU's samples are inferred on their own ([`super::nvml::infer`]) and
//! shown side by side; the rank that became ready last sets the waterfall, the
//! others are kept on its phases as attributes (`gpus`, `min_s`, `max_s`), as the
//! log source does for ranks ([`super::ranks`]).

use std::collections::BTreeMap;

use servescope_proto::v1::sample;

use super::nvml::{infer, GpuPoint};
use super::phase::{ns_to_s, PhaseKind, Timeline};
use crate::store::{Store, StoreError};

/// The samples of one GPU of one agent, with one process's memory.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GpuSeries {
    pub agent_id: i64,
    /// The agent's host, when the run knows it.
    pub host: Option<String>,
    pub gpu: u32,
    /// The process followed (the one holding the most memory unless asked).
    pub pid: Option<u32>,
    /// On the agent's clock.
    pub points: Vec<GpuPoint>,
    /// Added to the agent's clock to reach the coordinator's (−the agent's offset).
    pub clock_offset_ns: i64,
}

/// What to read from a recorded run.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SeriesFilter {
    pub agent: Option<i64>,
    pub gpu: Option<u32>,
    pub pid: Option<u32>,
    /// Only samples in [from, to] (coordinator clock, ns), e.g. one trial.
    pub window: Option<(i64, i64)>,
}

/// One GPU reading.
struct RawPoint {
    t: i64,
    util: Option<f64>,
    pcie_rx: Option<f64>,
    /// Every process's memory, and when the process list was read.
    procs: Vec<(u32, f64)>,
    procs_t: Option<i64>,
    /// The device's used memory at `t`.
    dev_mem: Option<f64>,
}

/// Every GPU's samples in a run (one series per agent and GPU index), the followed
/// process chosen per GPU.
pub fn series_from_store(
    store: &Store,
    run: i64,
    f: SeriesFilter,
) -> Result<Vec<GpuSeries>, StoreError> {
    let agents: BTreeMap<i64, (String, i64)> = store
        .run_agents(run)?
        .into_iter()
        .map(|a| (a.agent_id, (a.hostname, a.offset_ns.unwrap_or(0))))
        .collect();
    let mut raw: BTreeMap<(i64, u32), Vec<RawPoint>> = BTreeMap::new();
    store.for_each_sample(run, |s| {
        if f.agent.is_some_and(|a| a != s.agent_id) {
            return Ok(());
        }
        let Some(sample::Data::Gpu(g)) = &s.sample.data else {
            return Ok(());
        };
        let off = agents.get(&s.agent_id).map_or(0, |a| a.1);
        let t = i64::try_from(s.sample.t_ns).unwrap_or(i64::MAX);
        let coord = t.saturating_sub(off);
        if f.window.is_some_and(|(a, b)| coord < a || coord > b) {
            return Ok(());
        }
        for r in g.gpus.iter().filter(|r| f.gpu.is_none_or(|x| x == r.index)) {
            raw.entry((s.agent_id, r.index))
                .or_default()
                .push(RawPoint {
                    t,
                    util: r.util_gpu_pct.map(f64::from),
                    pcie_rx: r.pcie_rx_bytes.map(|v| v as f64),
                    procs: r
                        .processes
                        .iter()
                        .map(|p| (p.pid, p.used_bytes as f64))
                        .collect(),
                    procs_t: (r.processes_t_ns > 0)
                        .then(|| i64::try_from(r.processes_t_ns).unwrap_or(t)),
                    // A stale repeat is no new reading of the device's memory.
                    dev_mem: r
                        .memory_used_bytes
                        .filter(|_| !r.memory_stale)
                        .map(|v| v as f64),
                });
        }
        Ok(())
    })?;
    Ok(raw
        .into_iter()
        .map(|((agent_id, gpu), mut raw)| {
            raw.sort_by_key(|r| r.t);
            let pid = f.pid.or_else(|| busiest(&raw));
            GpuSeries {
                agent_id,
                host: agents.get(&agent_id).map(|a| a.0.clone()),
                clock_offset_ns: agents.get(&agent_id).map_or(0, |a| a.1.saturating_neg()),
                gpu,
                pid,
                points: raw
                    .into_iter()
                    .map(|r| GpuPoint {
                        t_ns: r.t,
                        util_pct: r.util,
                        pcie_rx: r.pcie_rx,
                        proc_mem: pid.and_then(|p| r.procs.iter().find(|x| x.0 == p).map(|x| x.1)),
                        proc_t_ns: r.procs_t,
                        dev_mem: r.dev_mem,
                    })
                    .collect(),
            }
        })
        .collect())
}

/// The process that held the most memory on a GPU.
fn busiest(raw: &[RawPoint]) -> Option<u32> {
    let mut max: BTreeMap<u32, f64> = BTreeMap::new();
    for r in raw {
        for (p, m) in &r.procs {
            let e = max.entry(*p).or_insert(0.0);
            *e = e.max(*m);
        }
    }
    max.into_iter()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(p, _)| p)
}

/// The inferred cold start of one GPU's process.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct GpuStartup {
    pub agent_id: i64,
    pub host: Option<String>,
    pub gpu: u32,
    pub pid: u32,
    pub samples: usize,
    pub timeline: Timeline,
}

impl GpuStartup {
    /// `host GPU n` (or `GPU n` for a single unnamed host).
    pub fn label(&self) -> String {
        match &self.host {
            Some(h) => format!("{h} GPU {}", self.gpu),
            None => format!("GPU {}", self.gpu),
        }
    }

    /// When this rank was ready, on the coordinator's clock: its sustained GPU
    /// work began (else its last inferred boundary).
    pub fn ready_ns(&self) -> Option<i64> {
        let t = &self.timeline;
        let at = t
            .get(PhaseKind::GpuBusy)
            .and_then(|p| p.start_ns)
            .or_else(|| t.last_ns())?;
        Some(at.saturating_add(t.clock_offset_ns))
    }
}

/// Infers every series that followed a process.
pub fn infer_all(series: &[GpuSeries]) -> Vec<GpuStartup> {
    series
        .iter()
        .filter_map(|s| {
            let pid = s.pid?;
            let mut timeline = infer(&s.points, s.host.clone());
            timeline.clock_offset_ns = s.clock_offset_ns;
            for p in &mut timeline.phases {
                p.process = Some(format!("pid={pid}"));
                p.rank = Some(format!("GPU {}", s.gpu));
            }
            Some(GpuStartup {
                agent_id: s.agent_id,
                host: s.host.clone(),
                gpu: s.gpu,
                pid,
                samples: s.points.len(),
                timeline,
            })
        })
        .filter(|g| !g.timeline.phases.is_empty())
        .collect()
}

/// The rank that was ready last (ties: the lower GPU index).
pub fn slowest(gpus: &[GpuStartup]) -> Option<usize> {
    (0..gpus.len()).max_by(|&a, &b| {
        gpus[a]
            .ready_ns()
            .cmp(&gpus[b].ready_ns())
            .then(gpus[b].gpu.cmp(&gpus[a].gpu))
    })
}

/// The slowest rank's timeline, each phase naming the other ranks' figures.
pub fn waterfall_source(gpus: &[GpuStartup]) -> Option<Timeline> {
    let i = slowest(gpus)?;
    let mut t = gpus[i].timeline.clone();
    if gpus.len() < 2 {
        return Some(t);
    }
    for p in &mut t.phases {
        let figs: Vec<(String, f64)> = gpus
            .iter()
            .filter_map(|g| Some((g.label(), g.timeline.get(p.kind)?.seconds()?)))
            .collect();
        let durs = figs.iter().map(|f| f.1);
        if let (Some(lo), Some(hi)) = (durs.clone().reduce(f64::min), durs.reduce(f64::max)) {
            p.attrs.insert("min_s".into(), format!("{lo:.3}"));
            p.attrs.insert("max_s".into(), format!("{hi:.3}"));
        }
        let all: Vec<String> = figs.iter().map(|(l, s)| format!("{l}: {s:.2} s")).collect();
        p.attrs.insert("gpus".into(), all.join("; "));
        p.attrs.insert(
            "slowest".into(),
            format!("{} sets the waterfall", gpus[i].label()),
        );
    }
    Some(t)
}

/// One GPU's figure for a phase: start offset and duration, seconds.
pub type Cell = (f64, f64);

/// Rows of the side-by-side view: per phase kind, per GPU (start offset from the
/// earliest boundary of any rank, seconds).
pub fn side_by_side(gpus: &[GpuStartup]) -> Vec<(PhaseKind, Vec<Option<Cell>>)> {
    let on_coord = |g: &GpuStartup, v: i64| v.saturating_add(g.timeline.clock_offset_ns);
    let origin = gpus
        .iter()
        .filter_map(|g| Some(on_coord(g, g.timeline.first_ns()?)))
        .min();
    // Rows in the order of the earliest rank's boundaries.
    let mut kinds: Vec<(i64, PhaseKind)> = Vec::new();
    for g in gpus {
        for p in &g.timeline.phases {
            let at = p.start_ns.or(p.end_ns).map_or(i64::MAX, |v| on_coord(g, v));
            match kinds.iter_mut().find(|k| k.1 == p.kind) {
                Some(k) => k.0 = k.0.min(at),
                None => kinds.push((at, p.kind)),
            }
        }
    }
    kinds.sort();
    kinds
        .into_iter()
        .map(|(_, k)| {
            let cells = gpus
                .iter()
                .map(|g| {
                    let p = g.timeline.get(k)?;
                    let at = on_coord(g, p.start_ns.or(p.end_ns)?);
                    let o = origin.unwrap_or(at);
                    Some((ns_to_s(at.saturating_sub(o)), p.seconds().unwrap_or(0.0)))
                })
                .collect();
            (k, cells)
        })
        .collect()
}

/// The side-by-side view as a text table.
pub fn side_by_side_text(gpus: &[GpuStartup]) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let slow = slowest(gpus);
    let _ = write!(s, "{:<26}", "phase (start s / seconds)");
    for (i, g) in gpus.iter().enumerate() {
        let mark = if Some(i) == slow { "*" } else { "" };
        let _ = write!(s, " {:>24}", format!("{}{mark} pid {}", g.label(), g.pid));
    }
    s.push('\n');
    for (k, cells) in side_by_side(gpus) {
        let _ = write!(s, "{:<26}", k.label());
        for c in cells {
            let v = c.map_or("–".into(), |(at, d)| format!("{at:+.2} / {d:.2}"));
            let _ = write!(s, " {v:>20}");
        }
        s.push('\n');
    }
    if let Some(i) = slow.filter(|_| gpus.len() > 1) {
        let _ = writeln!(
            s,
            "* slowest rank ({}): it sets the waterfall",
            gpus[i].label()
        );
    }
    s
}
