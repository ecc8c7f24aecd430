//! Flattens samples into named points (metric, labels, value) for export. Names,
//! units and values come from the metric catalogue
//! ([`servescope_proto::catalog`]), so a point is named and scaled as the agent's
//! `/metrics` page names and scales it. Labels are the sample's own keys (`gpu`,
//! `interface`, `device`, `port`, …); the inventory's identity labels (`uuid`,
//! `pci_bus_id`, …) are left to the inventory. Values that repeat an earlier
//! reading (stale GPU counters) are skipped.
//!
//! Families known from the inventory alone
//! ([`servescope_proto::catalog::inventory_families`]) are not points.

use servescope_proto::catalog::rdma::{self as rdma_cat, CounterFamily, Scope};
pub use servescope_proto::catalog::Value;
use servescope_proto::catalog::{agent, gpu, host, net, Entry};
use servescope_proto::v1::{sample, Inventory, Sample};

#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub metric: String,
    pub labels: Vec<(&'static str, String)>,
    pub value: Value,
}

/// Collects points; a `None` value is no point.
struct Points(Vec<Point>);

impl Points {
    /// As on `/metrics`, a non-finite float is no value.
    fn push(&mut self, metric: &str, labels: &[(&'static str, String)], v: Option<Value>) {
        if let Some(value) = v.filter(|v| v.is_finite()) {
            self.0.push(Point {
                metric: metric.to_string(),
                labels: labels.to_vec(),
                value,
            });
        }
    }

    fn entry<T>(&mut self, e: &Entry<T>, t: &T, labels: &[(&'static str, String)]) {
        self.push(e.def.name, labels, e.fresh(t));
    }
}

/// The points of one sample. `inv` supplies RDMA counter names.
pub fn flatten(s: &Sample, inv: Option<&Inventory>) -> Vec<Point> {
    let mut out = Points(Vec::new());
    let Some(data) = &s.data else { return out.0 };
    match data {
        sample::Data::Gpu(g) => {
            for r in &g.gpus {
                let l = [("gpu", r.index.to_string())];
                for e in gpu::READINGS {
                    out.entry(e, r, &l);
                }
                for pr in &r.processes {
                    let pl = [
                        ("gpu", r.index.to_string()),
                        ("pid", pr.pid.to_string()),
                        ("process", pr.name.clone()),
                    ];
                    out.entry(&gpu::PROCESS_MEMORY, pr, &pl);
                }
            }
        }
        sample::Data::Host(h) => {
            out.entry(&host::CPU_UTILIZATION, h, &[]);
            for (i, c) in h.cpu_per_core_pct.iter().enumerate() {
                out.entry(&host::CORE_UTILIZATION, c, &[("cpu", i.to_string())]);
            }
            for e in host::SAMPLE {
                out.entry(e, h, &[]);
            }
            for n in &h.net {
                let l = [("interface", n.name.clone())];
                for e in net::INTERFACE {
                    out.entry(e, n, &l);
                }
            }
        }
        sample::Data::Rdma(r) => flatten_rdma(&mut out, r, inv),
        sample::Data::Event(e) => {
            let l = [
                ("kind", e.kind.clone()),
                ("source", e.source.clone()),
                (
                    "gpu",
                    e.gpu_index.map(|g| g.to_string()).unwrap_or_default(),
                ),
                ("message", e.message.clone()),
            ];
            out.push("event", &l, Some(Value::Int(e.xid.unwrap_or(0))));
        }
        sample::Data::SelfStats(x) => {
            for e in agent::SELF {
                out.entry(e, x, &[]);
            }
            for c in &x.calls {
                for &(stat, read) in agent::CALL_STATS {
                    let l = [("call", c.name.clone()), ("stat", stat.to_string())];
                    out.push(agent::COLLECTOR_CALL_SECONDS.name, &l, read(c));
                }
                out.entry(&agent::COLLECTOR_CALLS, c, &[("call", c.name.clone())]);
            }
        }
    }
    if let Some(kind) = agent::kind_label(s) {
        for e in agent::SAMPLE {
            out.entry(e, s, &[("kind", kind.to_string())]);
        }
    }
    out.0
}

/// RDMA counters (one family per counter name, as on `/metrics`; counters the
/// agent could not read are left out, their 0 is a placeholder) and port state.
fn flatten_rdma(out: &mut Points, r: &servescope_proto::v1::RdmaSample, inv: Option<&Inventory>) {
    for d in &r.devices {
        let info = inv.and_then(|i| i.rdma_devices.iter().find(|x| x.name == d.device));
        // Stale repeats of the device-level counters are no new points.
        let fresh: &[u64] = if d.values_stale { &[] } else { &d.values };
        for (i, v) in fresh.iter().enumerate() {
            let name = info
                .and_then(|x| x.device_counter_names.get(i))
                .cloned()
                .unwrap_or_else(|| format!("counter{i}"));
            if !rdma_cat::exported(&name) || crate::analysis::rates::device_counter_failed(d, &name)
            {
                continue;
            }
            let family = CounterFamily(Scope::Device, &name).to_string();
            out.push(
                &family,
                &[("device", d.device.clone())],
                Some(Value::Int(*v)),
            );
        }
        for port in &d.ports {
            let pinfo = info.and_then(|x| x.ports.iter().find(|q| q.port == port.port));
            let l = [
                ("device", d.device.clone()),
                ("port", port.port.to_string()),
            ];
            out.entry(&rdma_cat::PORT_ACTIVE, port, &l);
            if let Some(netdev) = pinfo.map(|p| &p.netdev).filter(|n| !n.is_empty()) {
                let nl = [l[0].clone(), l[1].clone(), ("netdev", netdev.clone())];
                out.entry(&rdma_cat::NETDEV_UP, port, &nl);
            }
            for (i, v) in port.values.iter().enumerate() {
                let name = pinfo
                    .and_then(|x| x.counter_names.get(i))
                    .cloned()
                    .unwrap_or_else(|| format!("hw_counters/counter{i}"));
                if !rdma_cat::exported(&name)
                    || crate::analysis::rates::port_counter_failed(&d.device, port, &name)
                {
                    continue;
                }
                let family = CounterFamily(Scope::Port, &name).to_string();
                out.push(&family, &l, Some(Value::Int(*v)));
            }
        }
    }
}
