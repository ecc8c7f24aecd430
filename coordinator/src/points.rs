//! Flattens samples into named points (metric, labels, value) for export. Names
//! follow the agent's Prometheus exposition where one exists.

use servescope_proto::v1::{sample, Inventory, Sample};

/// A point's value: integers stay exact.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    Int(u64),
    Float(f64),
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Int(v) => write!(f, "{v}"),
            Value::Float(v) => write!(f, "{v}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub metric: String,
    pub labels: Vec<(&'static str, String)>,
    pub value: Value,
}

fn p(out: &mut Vec<Point>, metric: &str, labels: &[(&'static str, String)], v: Value) {
    out.push(Point {
        metric: metric.to_string(),
        labels: labels.to_vec(),
        value: v,
    });
}

/// The points of one sample. `inv` supplies RDMA counter names.
pub fn flatten(s: &Sample, inv: Option<&Inventory>) -> Vec<Point> {
    let mut out = Vec::new();
    let Some(data) = &s.data else { return out };
    match data {
        sample::Data::Gpu(g) => {
            for r in &g.gpus {
                let l = [("gpu", r.index.to_string())];
                let ints: [(&str, Option<u64>); 16] = [
                    ("gpu_memory_used_bytes", r.memory_used_bytes),
                    ("gpu_memory_reserved_bytes", r.memory_reserved_bytes),
                    ("gpu_memory_free_bytes", r.memory_free_bytes),
                    ("gpu_utilization_percent", r.util_gpu_pct.map(u64::from)),
                    (
                        "gpu_memory_utilization_percent",
                        r.util_memory_pct.map(u64::from),
                    ),
                    ("gpu_sm_clock_mhz", r.sm_clock_mhz.map(u64::from)),
                    ("gpu_memory_clock_mhz", r.mem_clock_mhz.map(u64::from)),
                    ("gpu_power_milliwatts", r.power_mw.map(u64::from)),
                    (
                        "gpu_energy_millijoules_total",
                        r.energy_mj.filter(|_| !r.energy_stale),
                    ),
                    ("gpu_temperature_celsius", r.temperature_c.map(u64::from)),
                    ("gpu_throttle_reasons", r.throttle_reasons),
                    (
                        "gpu_pcie_transmit_bytes_total",
                        r.pcie_tx_bytes.filter(|_| !r.counters_stale),
                    ),
                    (
                        "gpu_pcie_receive_bytes_total",
                        r.pcie_rx_bytes.filter(|_| !r.counters_stale),
                    ),
                    (
                        "gpu_nvlink_transmit_bytes_total",
                        r.nvlink_tx_bytes.filter(|_| !r.counters_stale),
                    ),
                    (
                        "gpu_nvlink_receive_bytes_total",
                        r.nvlink_rx_bytes.filter(|_| !r.counters_stale),
                    ),
                    ("gpu_ecc_uncorrected_total", r.ecc_uncorrected_total),
                ];
                for (m, v) in ints {
                    if let Some(v) = v {
                        p(&mut out, m, &l, Value::Int(v));
                    }
                }
                for pr in &r.processes {
                    let pl = [
                        ("gpu", r.index.to_string()),
                        ("pid", pr.pid.to_string()),
                        ("process", pr.name.clone()),
                    ];
                    p(
                        &mut out,
                        "gpu_process_memory_used_bytes",
                        &pl,
                        Value::Int(pr.used_bytes),
                    );
                }
            }
        }
        sample::Data::Host(h) => {
            p(
                &mut out,
                "host_cpu_percent",
                &[],
                Value::Float(f64::from(h.cpu_total_pct)),
            );
            for (i, c) in h.cpu_per_core_pct.iter().enumerate() {
                p(
                    &mut out,
                    "host_cpu_percent",
                    &[("cpu", i.to_string())],
                    Value::Float(f64::from(*c)),
                );
            }
            p(
                &mut out,
                "host_memory_used_bytes",
                &[],
                Value::Int(h.memory_used_bytes),
            );
            p(
                &mut out,
                "host_memory_available_bytes",
                &[],
                Value::Int(h.memory_available_bytes),
            );
            p(&mut out, "host_load1", &[], Value::Float(h.load1));
            for n in &h.net {
                let l = [("interface", n.name.clone())];
                for (m, v) in [
                    ("host_network_receive_bytes_total", n.rx_bytes),
                    ("host_network_transmit_bytes_total", n.tx_bytes),
                    ("host_network_receive_packets_total", n.rx_packets),
                    ("host_network_transmit_packets_total", n.tx_packets),
                    ("host_network_receive_errors_total", n.rx_errors),
                    ("host_network_transmit_errors_total", n.tx_errors),
                    ("host_network_receive_drop_total", n.rx_dropped),
                    ("host_network_transmit_drop_total", n.tx_dropped),
                ] {
                    p(&mut out, m, &l, Value::Int(v));
                }
            }
        }
        sample::Data::Rdma(r) => {
            for d in &r.devices {
                let info = inv.and_then(|i| i.rdma_devices.iter().find(|x| x.name == d.device));
                for (i, v) in d.values.iter().enumerate() {
                    let name = info
                        .and_then(|x| x.device_counter_names.get(i))
                        .cloned()
                        .unwrap_or_else(|| format!("counter{i}"));
                    // An unreadable counter's 0 is a placeholder, not a value.
                    if crate::rates::device_counter_failed(d, &name) {
                        continue;
                    }
                    p(
                        &mut out,
                        &format!("rdma_device_{name}"),
                        &[("device", d.device.clone())],
                        Value::Int(*v),
                    );
                }
                for port in &d.ports {
                    let pinfo = info.and_then(|x| x.ports.iter().find(|q| q.port == port.port));
                    let l = [
                        ("device", d.device.clone()),
                        ("port", port.port.to_string()),
                    ];
                    for (i, v) in port.values.iter().enumerate() {
                        let raw = pinfo.and_then(|x| x.counter_names.get(i));
                        if raw
                            .is_some_and(|n| crate::rates::port_counter_failed(&d.device, port, n))
                        {
                            continue;
                        }
                        let name = raw
                            .map(|n| n.replace('/', "_"))
                            .unwrap_or_else(|| format!("counter{i}"));
                        p(&mut out, &format!("rdma_port_{name}"), &l, Value::Int(*v));
                    }
                }
            }
        }
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
            p(&mut out, "event", &l, Value::Int(e.xid.unwrap_or(0)));
        }
        sample::Data::SelfStats(s) => {
            p(
                &mut out,
                "agent_cpu_seconds_total",
                &[],
                Value::Float(s.cpu_seconds_total),
            );
            p(
                &mut out,
                "agent_resident_memory_bytes",
                &[],
                Value::Int(s.rss_bytes),
            );
            p(
                &mut out,
                "agent_ring_samples",
                &[],
                Value::Int(s.ring_samples),
            );
            for c in &s.calls {
                p(
                    &mut out,
                    "agent_call_mean_ns",
                    &[("call", c.name.clone())],
                    Value::Int(c.mean_ns),
                );
                p(
                    &mut out,
                    "agent_call_max_ns",
                    &[("call", c.name.clone())],
                    Value::Int(c.max_ns),
                );
            }
        }
    }
    out
}
