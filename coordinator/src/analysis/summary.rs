//! A run's summary: per agent, what was recorded and what it says in brief.

use std::collections::BTreeMap;

use servescope_proto::v1::sample;

use crate::store::{Result, RunAgent, Store};

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct GpuSummary {
    pub index: u32,
    pub samples: u64,
    pub util_mean_pct: f64,
    pub util_max_pct: u32,
    pub memory_used_max_bytes: u64,
    pub power_mean_w: f64,
    pub pcie_tx_bytes: u64,
    pub pcie_rx_bytes: u64,
    pub field_errors: u64,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct AgentSummary {
    pub agent: Option<RunAgent>,
    pub samples_by_kind: BTreeMap<String, u64>,
    pub first_seq: u64,
    pub last_seq: u64,
    /// Sequence numbers missing between first and last (not sent, e.g. filtered or lost).
    pub missing_seqs: u64,
    pub span_s: f64,
    pub cpu_mean_pct: f64,
    pub memory_used_max_bytes: u64,
    pub net_rx_bytes: u64,
    pub net_tx_bytes: u64,
    pub rdma_devices: usize,
    pub events: u64,
    pub agent_cpu_pct_of_core: Option<f64>,
    pub agent_rss_max_bytes: u64,
    pub gpus: Vec<GpuSummary>,
}

#[derive(Default)]
struct Acc {
    s: AgentSummary,
    first_t: u64,
    last_t: u64,
    count: u64,
    cpu_sum: f64,
    cpu_n: u64,
    net_first: Option<(u64, u64)>,
    net_last: (u64, u64),
    self_first: Option<(u64, f64)>,
    self_last: (u64, f64),
    gpu: BTreeMap<u32, GpuAcc>,
}

#[derive(Default)]
struct GpuAcc {
    s: GpuSummary,
    util_sum: f64,
    power_sum: f64,
    pcie_first: Option<(u64, u64)>,
}

/// Summarises a stored run, agent by agent.
pub fn summarize(store: &Store, run: i64) -> Result<Vec<AgentSummary>> {
    store.run(run)?;
    let agents = store.run_agents(run)?;
    let mut acc: BTreeMap<i64, Acc> = BTreeMap::new();
    store.for_each_sample(run, |ss| {
        let a = acc.entry(ss.agent_id).or_default();
        let s = &ss.sample;
        if a.count == 0 {
            a.s.first_seq = s.seq;
            a.first_t = s.t_ns;
        }
        a.count += 1;
        a.s.last_seq = s.seq;
        a.last_t = s.t_ns;
        let Some(d) = &s.data else { return Ok(()) };
        *a.s.samples_by_kind
            .entry(d.kind().name().to_string())
            .or_insert(0) += 1;
        match d {
            sample::Data::Host(h) => {
                a.cpu_sum += f64::from(h.cpu_total_pct);
                a.cpu_n += 1;
                a.s.memory_used_max_bytes = a.s.memory_used_max_bytes.max(h.memory_used_bytes);
                let rx: u64 = h.net.iter().map(|n| n.rx_bytes).sum();
                let tx: u64 = h.net.iter().map(|n| n.tx_bytes).sum();
                a.net_first.get_or_insert((rx, tx));
                a.net_last = (rx, tx);
            }
            sample::Data::Rdma(r) => a.s.rdma_devices = r.devices.len(),
            sample::Data::Event(_) => a.s.events += 1,
            sample::Data::SelfStats(x) => {
                a.self_first.get_or_insert((s.t_ns, x.cpu_seconds_total));
                a.self_last = (s.t_ns, x.cpu_seconds_total);
                a.s.agent_rss_max_bytes = a.s.agent_rss_max_bytes.max(x.rss_bytes);
            }
            sample::Data::Gpu(g) => {
                for r in &g.gpus {
                    let e = a.gpu.entry(r.index).or_default();
                    e.s.index = r.index;
                    e.s.samples += 1;
                    e.s.field_errors += r.errors.len() as u64;
                    if let Some(u) = r.util_gpu_pct {
                        e.util_sum += f64::from(u);
                        e.s.util_max_pct = e.s.util_max_pct.max(u);
                    }
                    if let Some(p) = r.power_mw {
                        e.power_sum += f64::from(p) / 1000.0;
                    }
                    if let Some(m) = r.memory_used_bytes {
                        e.s.memory_used_max_bytes = e.s.memory_used_max_bytes.max(m);
                    }
                    if let (Some(tx), Some(rx)) = (r.pcie_tx_bytes, r.pcie_rx_bytes) {
                        let first = *e.pcie_first.get_or_insert((tx, rx));
                        e.s.pcie_tx_bytes = tx.saturating_sub(first.0);
                        e.s.pcie_rx_bytes = rx.saturating_sub(first.1);
                    }
                }
            }
        }
        Ok(())
    })?;
    let mut out = Vec::new();
    for ag in agents {
        let mut a = acc.remove(&ag.agent_id).unwrap_or_default();
        a.s.span_s = a.last_t.saturating_sub(a.first_t) as f64 / 1e9;
        a.s.missing_seqs = if a.count == 0 {
            0
        } else {
            (a.s.last_seq - a.s.first_seq + 1).saturating_sub(a.count)
        };
        a.s.cpu_mean_pct = if a.cpu_n > 0 {
            a.cpu_sum / a.cpu_n as f64
        } else {
            0.0
        };
        if let Some((rx, tx)) = a.net_first {
            a.s.net_rx_bytes = a.net_last.0.saturating_sub(rx);
            a.s.net_tx_bytes = a.net_last.1.saturating_sub(tx);
        }
        if let Some((t0, c0)) = a.self_first {
            let dt = a.self_last.0.saturating_sub(t0) as f64 / 1e9;
            if dt > 0.0 {
                a.s.agent_cpu_pct_of_core = Some((a.self_last.1 - c0) / dt * 100.0);
            }
        }
        for (_, g) in std::mem::take(&mut a.gpu) {
            let mut s = g.s;
            if s.samples > 0 {
                s.util_mean_pct = g.util_sum / s.samples as f64;
                s.power_mean_w = g.power_sum / s.samples as f64;
            }
            a.s.gpus.push(s);
        }
        a.s.agent = Some(ag);
        out.push(a.s);
    }
    Ok(out)
}
