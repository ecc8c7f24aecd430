//! Node telemetry from a run's stored samples, as time series on the coordinator's
//! clock (agent time − the agent's measured offset): GPU utilisation, memory and
//! power, PCIe and NVLink byte rates, RDMA and NIC byte rates and host CPU. Names
//! and units come from the metric catalogue (through [`crate::analysis::points::flatten`]);
//! counters become rates over a sliding window ([`crate::analysis::rates`]).

use std::collections::{BTreeMap, HashMap};

use servescope_proto::v1::{sample, Inventory};

use crate::analysis::points::flatten;
use crate::analysis::rates::{rdma_bytes, Rates};
use crate::store::{Store, StoreError};

/// Window of the counter rates.
const RATE_WINDOW_NS: u64 = 1_000_000_000;
/// Most points a series keeps (buckets averaged beyond that).
const MAX_POINTS: usize = 600;

/// One kind of telemetry, drawn as one chart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    GpuUtilization,
    GpuMemory,
    GpuPower,
    Pcie,
    Nvlink,
    Rdma,
    Nic,
    HostCpu,
}

impl Kind {
    pub const ALL: [Kind; 8] = [
        Kind::GpuUtilization,
        Kind::GpuMemory,
        Kind::GpuPower,
        Kind::Pcie,
        Kind::Nvlink,
        Kind::Rdma,
        Kind::Nic,
        Kind::HostCpu,
    ];

    /// Chart title and y axis label.
    pub fn title(self) -> (&'static str, &'static str) {
        match self {
            Kind::GpuUtilization => ("GPU utilisation", "%"),
            Kind::GpuMemory => ("GPU memory used", "GiB"),
            Kind::GpuPower => ("GPU power", "W"),
            Kind::Pcie => ("PCIe traffic (all GPUs of a node)", "GB/s"),
            Kind::Nvlink => ("NVLink traffic (all GPUs of a node)", "GB/s"),
            Kind::Rdma => ("RDMA traffic (all devices of a node)", "GB/s"),
            Kind::Nic => ("NIC traffic (all interfaces but lo)", "MB/s"),
            Kind::HostCpu => ("Host CPU", "% of all cores"),
        }
    }
}

/// A gauge: the catalogue name (checked against the catalogue in the tests), its kind and the factor to the chart's unit.
const GAUGES: [(&str, Kind, f64); 4] = [
    (
        "servescope_gpu_utilization_ratio",
        Kind::GpuUtilization,
        100.0,
    ),
    (
        "servescope_gpu_memory_used_bytes",
        Kind::GpuMemory,
        1.0 / 1_073_741_824.0,
    ),
    ("servescope_gpu_power_watts", Kind::GpuPower, 1.0),
    (
        "servescope_host_cpu_utilization_ratio",
        Kind::HostCpu,
        100.0,
    ),
];

/// A counter summed over a node's GPUs or interfaces: name, kind, direction, factor.
const COUNTERS: [(&str, Kind, &str, f64); 6] = [
    (
        "servescope_gpu_pcie_transmit_bytes_total",
        Kind::Pcie,
        "tx",
        1e-9,
    ),
    (
        "servescope_gpu_pcie_receive_bytes_total",
        Kind::Pcie,
        "rx",
        1e-9,
    ),
    (
        "servescope_gpu_nvlink_transmit_bytes_total",
        Kind::Nvlink,
        "tx",
        1e-9,
    ),
    (
        "servescope_gpu_nvlink_receive_bytes_total",
        Kind::Nvlink,
        "rx",
        1e-9,
    ),
    (
        "servescope_host_network_transmit_bytes_total",
        Kind::Nic,
        "tx",
        1e-6,
    ),
    (
        "servescope_host_network_receive_bytes_total",
        Kind::Nic,
        "rx",
        1e-6,
    ),
];

/// Time series (coordinator ns, value) by kind, then by series name.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Telemetry {
    pub series: BTreeMap<Kind, BTreeMap<String, Vec<(i64, f64)>>>,
}

impl Telemetry {
    pub fn is_empty(&self) -> bool {
        self.series.values().all(|m| m.values().all(Vec::is_empty))
    }

    /// First and last time of any point.
    pub fn span(&self) -> Option<(i64, i64)> {
        let ts = || self.series.values().flat_map(|m| m.values().flatten());
        Some((ts().map(|p| p.0).min()?, ts().map(|p| p.0).max()?))
    }

    fn push(&mut self, kind: Kind, name: String, t: i64, v: f64) {
        if v.is_finite() {
            let s = self.series.entry(kind).or_default();
            s.entry(name).or_default().push((t, v));
        }
    }

    /// Keeps the points within `[from, to]` and at most [`MAX_POINTS`] per series.
    pub fn clip(&mut self, from: i64, to: i64) {
        for m in self.series.values_mut() {
            for v in m.values_mut() {
                v.retain(|p| p.0 >= from && p.0 <= to);
                *v = thin(std::mem::take(v));
            }
            m.retain(|_, v| !v.is_empty());
        }
        self.series.retain(|_, m| !m.is_empty());
    }
}

/// Averages consecutive points in buckets so that at most [`MAX_POINTS`] remain.
fn thin(v: Vec<(i64, f64)>) -> Vec<(i64, f64)> {
    if v.len() <= MAX_POINTS {
        return v;
    }
    let per = v.len().div_ceil(MAX_POINTS);
    v.chunks(per)
        .map(|c| {
            let n = c.len() as f64;
            let t = c.iter().map(|p| p.0 as f64).sum::<f64>() / n;
            (t as i64, c.iter().map(|p| p.1).sum::<f64>() / n)
        })
        .collect()
}

/// The telemetry of `run` (its agents' samples), added to `out`.
pub fn read(store: &Store, run: i64, out: &mut Telemetry) -> Result<(), StoreError> {
    let mut agents: HashMap<i64, (String, i64, Option<Inventory>)> = HashMap::new();
    for a in store.run_agents(run)? {
        let inv = store.inventory(run, a.agent_id)?;
        agents.insert(
            a.agent_id,
            (a.hostname.clone(), a.offset_ns.unwrap_or(0), inv),
        );
    }
    let mut rates = Rates::new(RATE_WINDOW_NS);
    store.for_each_sample(run, |s| {
        let Some((host, off, inv)) = agents.get(&s.agent_id) else {
            return Ok(());
        };
        let t_agent = s.sample.t_ns;
        let t = (t_agent as i64).saturating_sub(*off);
        let mut sums: BTreeMap<(Kind, &str), f64> = BTreeMap::new();
        for p in flatten(&s.sample, inv.as_ref()) {
            let label = |k: &str| p.labels.iter().find(|l| l.0 == k).map(|l| l.1.as_str());
            if let Some((_, kind, f)) = GAUGES.iter().find(|g| g.0 == p.metric) {
                let name = match label("gpu") {
                    Some(g) => format!("{host} gpu{g}"),
                    None => host.clone(),
                };
                out.push(*kind, name, t, p.value.as_f64() * f);
            } else if let Some((_, kind, dir, _)) = COUNTERS.iter().find(|c| c.0 == p.metric) {
                if label("interface") == Some("lo") {
                    continue;
                }
                *sums.entry((*kind, dir)).or_default() += p.value.as_f64();
            }
        }
        for ((kind, dir), v) in sums {
            let f = COUNTERS.iter().find(|c| c.1 == kind).map_or(1.0, |c| c.3);
            let name = format!("{host} {dir}");
            if let Some(r) = rates.push(&format!("{kind:?} {name}"), t_agent, v as u64) {
                out.push(kind, name, t, r * f);
            }
        }
        if let (Some(sample::Data::Rdma(r)), Some(inv)) = (&s.sample.data, inv) {
            let (mut tx, mut rx, mut any) = (0u64, 0u64, false);
            for d in &r.devices {
                let info = inv.rdma_devices.iter().find(|x| x.name == d.device);
                if let Some((t1, r1)) = info.and_then(|i| rdma_bytes(i, d)) {
                    tx += t1;
                    rx += r1;
                    any = true;
                }
            }
            if any {
                for (dir, v) in [("tx", tx), ("rx", rx)] {
                    let name = format!("{host} {dir}");
                    if let Some(r) = rates.push(&format!("rdma {name}"), t_agent, v) {
                        out.push(Kind::Rdma, name, t, r * 1e-9);
                    }
                }
            }
        }
        Ok(())
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_is_in_the_catalogue() {
        let known: Vec<&str> = servescope_proto::catalog::families()
            .map(|d| d.name)
            .collect();
        for n in GAUGES
            .iter()
            .map(|g| g.0)
            .chain(COUNTERS.iter().map(|c| c.0))
        {
            assert!(known.contains(&n), "{n}");
        }
    }

    #[test]
    fn thinning_keeps_the_mean_and_the_bound() {
        let v: Vec<(i64, f64)> = (0..1500).map(|i| (i, 2.0)).collect();
        let t = thin(v);
        assert!(t.len() <= MAX_POINTS);
        assert!(t.iter().all(|p| p.1 == 2.0));
    }

    #[test]
    fn clip_drops_what_is_outside_and_empty_series() {
        let mut t = Telemetry::default();
        t.push(Kind::HostCpu, "h".into(), 5, 1.0);
        t.push(Kind::Nic, "h tx".into(), 50, 1.0);
        t.push(Kind::HostCpu, "h".into(), 7, f64::NAN);
        t.clip(0, 10);
        assert_eq!(t.span(), Some((5, 5)));
        assert!(!t.series.contains_key(&Kind::Nic));
    }
}
