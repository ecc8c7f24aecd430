//! The agents' telemetry of a run, read once from the store for the telemetry
//! rules: per host, its samples in time order and its inventory, with the clock
//! offset that puts the agent's timestamps on the run's clock.

use std::collections::BTreeMap;

use servescope_proto::v1::{
    sample, Event, GpuReading, HostSample, Inventory, RdmaSample, SelfSample,
};

use crate::store::{Result, Store};
use crate::text::utc;

/// One agent's telemetry in a run.
#[derive(Debug, Clone, Default)]
pub struct HostTelemetry {
    pub host: String,
    /// Agent clock − coordinator clock (0 when never measured).
    pub offset_ns: i64,
    pub inventory: Option<Inventory>,
    /// (agent t_ns, reading), one per GPU per sample.
    pub gpu: Vec<(u64, GpuReading)>,
    pub rdma: Vec<(u64, RdmaSample)>,
    pub host_samples: Vec<(u64, HostSample)>,
    pub events: Vec<(u64, Event)>,
    pub self_stats: Vec<(u64, SelfSample)>,
}

/// The telemetry a run holds (its own samples, or those of its linked `record` run).
#[derive(Debug, Clone, Default)]
pub struct Telemetry {
    /// The run holding the samples.
    pub source_run: i64,
    /// The diagnosed run's start (coordinator clock, ns since the epoch).
    pub started_ns: i64,
    pub hosts: Vec<HostTelemetry>,
}

impl Telemetry {
    /// Reads run `source_run`'s samples; times are shown from `started_ns`.
    pub fn load(store: &Store, source_run: i64, started_ns: i64) -> Result<Telemetry> {
        let agents = store.run_agents(source_run)?;
        let mut by_agent: BTreeMap<i64, HostTelemetry> = BTreeMap::new();
        for a in &agents {
            by_agent.insert(
                a.agent_id,
                HostTelemetry {
                    host: if a.hostname.is_empty() {
                        a.address.clone()
                    } else {
                        a.hostname.clone()
                    },
                    offset_ns: a.offset_ns.unwrap_or(0),
                    inventory: store.inventory(source_run, a.agent_id)?,
                    ..Default::default()
                },
            );
        }
        store.for_each_sample(source_run, |s| {
            let Some(h) = by_agent.get_mut(&s.agent_id) else {
                return Ok(());
            };
            let t = s.sample.t_ns;
            match s.sample.data {
                Some(sample::Data::Gpu(g)) => h.gpu.extend(g.gpus.into_iter().map(|r| (t, r))),
                Some(sample::Data::Rdma(r)) => h.rdma.push((t, r)),
                Some(sample::Data::Host(x)) => h.host_samples.push((t, x)),
                Some(sample::Data::Event(e)) => h.events.push((t, e)),
                Some(sample::Data::SelfStats(x)) => h.self_stats.push((t, x)),
                None => {}
            }
            Ok(())
        })?;
        let mut hosts: Vec<HostTelemetry> = by_agent.into_values().collect();
        for h in &mut hosts {
            // Stored in (agent, seq) order; a restarted agent restarts seq.
            h.gpu.sort_by_key(|x| x.0);
            h.rdma.sort_by_key(|x| x.0);
            h.host_samples.sort_by_key(|x| x.0);
            h.events.sort_by_key(|x| x.0);
            h.self_stats.sort_by_key(|x| x.0);
        }
        Ok(Telemetry {
            source_run,
            started_ns,
            hosts,
        })
    }

    /// Whether any sample is held.
    pub fn is_empty(&self) -> bool {
        self.hosts.iter().all(|h| {
            h.gpu.is_empty()
                && h.rdma.is_empty()
                && h.host_samples.is_empty()
                && h.events.is_empty()
                && h.self_stats.is_empty()
        })
    }
}

impl HostTelemetry {
    /// An agent timestamp on the run's clock: `+12.3 s (2026-01-02 03:04:05 UTC)`.
    pub fn when(&self, started_ns: i64, t_ns: u64) -> String {
        let coord = t_ns as i64 - self.offset_ns;
        format!(
            "+{:.1} s ({} UTC)",
            (coord - started_ns) as f64 / 1e9,
            utc(coord)
        )
    }

    /// Seconds between two agent timestamps.
    pub fn secs(a: u64, b: u64) -> f64 {
        b.saturating_sub(a) as f64 / 1e9
    }

    /// The GPU's name and bus id from the inventory, for evidence lines.
    pub fn gpu_label(&self, index: u32) -> String {
        let info = self
            .inventory
            .as_ref()
            .and_then(|i| i.gpus.iter().find(|g| g.index == index));
        match info {
            Some(g) => format!("{} GPU {index} ({}, {})", self.host, g.name, g.pci_bus_id),
            None => format!("{} GPU {index}", self.host),
        }
    }
}
