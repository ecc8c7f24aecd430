//! RDMA families: device and port state, and one family per counter name.

use std::cmp::Ordering;

use servescope_proto::catalog::rdma::{self as cat, key_cmp, Scope};
use servescope_proto::catalog::{b01, Value};
use servescope_proto::v1::{FieldError, Inventory, RdmaDeviceReading, RdmaSample};

use super::writer::{first_of, Family, Lv};

/// A counter value unless the collector listed it as unreadable (it reads 0 then,
/// which would look like a counter reset). The RDMA collector names such errors
/// `<dev>/<port>/<counter name>` and `<dev>/hw_counters/<name>`: an error field
/// that is the name or ends in `/<name>` matches.
fn rdma_value(names: &[String], values: &[u64], errors: &[FieldError], i: usize) -> Option<u64> {
    let v = *values.get(i)?;
    (!crate::collect::rdma::counter_failed(errors, names.get(i)?)).then_some(v)
}

/// Distinct counter names in family order, one per family (names that sanitize to
/// the same family collapse onto the first).
pub(super) fn rdma_families<'a>(
    names: impl Iterator<Item = &'a String>,
    count: usize,
) -> Vec<&'a str> {
    let mut v: Vec<&str> = Vec::with_capacity(count);
    v.extend(names.map(String::as_str).filter(|n| cat::exported(n)));
    v.sort_unstable_by(|a, b| key_cmp(a, b).then_with(|| a.cmp(b)));
    v.dedup_by(|a, b| key_cmp(a, b) == Ordering::Equal);
    v
}

/// Index in `names` of the counter that feeds family `fam`.
pub(super) fn rdma_position(names: &[String], fam: &str) -> Option<usize> {
    names.iter().position(|n| n == fam).or_else(|| {
        names
            .iter()
            .position(|n| cat::exported(n) && key_cmp(n, fam) == Ordering::Equal)
    })
}

pub(super) fn render_rdma(out: &mut String, inv: &Inventory, rdma: Option<&RdmaSample>) {
    let devs = &inv.rdma_devices;
    let unique_dev = |i: usize| first_of(devs, i, |a, b| a.name == b.name);
    let readings: &[RdmaDeviceReading] = rdma.map_or(&[], |r| &r.devices);
    let reading_of = |dev: &str| readings.iter().find(|r| r.device == dev);

    let mut f = Family::new(out, &cat::DEVICE_INFO);
    for (_, d) in devs.iter().enumerate().filter(|(i, _)| unique_dev(*i)) {
        f.sample(
            &[
                ("device", Lv::S(&d.name)),
                ("driver", Lv::S(&d.driver)),
                ("pci_address", Lv::S(&d.pci_address)),
                ("numa_node", Lv::OptI(d.numa_node)),
            ],
            Value::Int(1),
        );
    }

    // Port state: the sample's if there is one, else the inventory's.
    let mut f = Family::new(out, &cat::PORT_ACTIVE.def);
    for (_, d) in devs.iter().enumerate().filter(|(i, _)| unique_dev(*i)) {
        let reading = reading_of(&d.name);
        for (j, p) in d.ports.iter().enumerate() {
            if !first_of(&d.ports, j, |a, b| a.port == b.port) {
                continue;
            }
            let value = reading
                .and_then(|r| r.ports.iter().find(|rp| rp.port == p.port))
                .and_then(|rp| (cat::PORT_ACTIVE.read)(rp))
                .or_else(|| (!p.state.is_empty()).then(|| b01(cat::port_active(&p.state))));
            f.sample(
                &[
                    ("device", Lv::S(&d.name)),
                    ("port", Lv::U(u64::from(p.port))),
                ],
                value,
            );
        }
    }
    let mut f = Family::new(out, &cat::PORT_RATE);
    for (_, d) in devs.iter().enumerate().filter(|(i, _)| unique_dev(*i)) {
        for (j, p) in d.ports.iter().enumerate() {
            if first_of(&d.ports, j, |a, b| a.port == b.port) {
                f.sample(
                    &[
                        ("device", Lv::S(&d.name)),
                        ("port", Lv::U(u64::from(p.port))),
                    ],
                    cat::parse_rate_bytes_per_second(&p.rate).map(Value::Float),
                );
            }
        }
    }
    let mut f = Family::new(out, &cat::NETDEV_UP.def);
    for (_, d) in devs.iter().enumerate().filter(|(i, _)| unique_dev(*i)) {
        let Some(reading) = reading_of(&d.name) else {
            continue;
        };
        for (j, p) in d.ports.iter().enumerate() {
            if p.netdev.is_empty() || !first_of(&d.ports, j, |a, b| a.port == b.port) {
                continue;
            }
            let Some(rp) = reading.ports.iter().find(|rp| rp.port == p.port) else {
                continue;
            };
            f.sample(
                &[
                    ("device", Lv::S(&d.name)),
                    ("port", Lv::U(u64::from(p.port))),
                    ("netdev", Lv::S(&p.netdev)),
                ],
                (cat::NETDEV_UP.read)(rp),
            );
        }
    }

    if readings.is_empty() {
        return;
    }

    // Port counters: one family per counter name, every (device, port) inside it.
    let ports = || devs.iter().flat_map(|d| d.ports.iter());
    let port_fams = rdma_families(
        ports().flat_map(|p| p.counter_names.iter()),
        ports().map(|p| p.counter_names.len()).sum(),
    );
    for fam in &port_fams {
        let mut f = Family::rdma(out, Scope::Port, fam);
        for (_, d) in devs.iter().enumerate().filter(|(i, _)| unique_dev(*i)) {
            let Some(reading) = reading_of(&d.name) else {
                continue;
            };
            for (j, p) in d.ports.iter().enumerate() {
                if !first_of(&d.ports, j, |a, b| a.port == b.port) {
                    continue;
                }
                let Some(rp) = reading.ports.iter().find(|rp| rp.port == p.port) else {
                    continue;
                };
                let Some(k) = rdma_position(&p.counter_names, fam) else {
                    continue;
                };
                f.sample(
                    &[
                        ("device", Lv::S(&d.name)),
                        ("port", Lv::U(u64::from(p.port))),
                    ],
                    rdma_value(&p.counter_names, &rp.values, &rp.errors, k).map(Value::Int),
                );
            }
        }
    }

    let dev_fams = rdma_families(
        devs.iter().flat_map(|d| d.device_counter_names.iter()),
        devs.iter().map(|d| d.device_counter_names.len()).sum(),
    );
    for fam in &dev_fams {
        let mut f = Family::rdma(out, Scope::Device, fam);
        for (_, d) in devs.iter().enumerate().filter(|(i, _)| unique_dev(*i)) {
            let Some(reading) = reading_of(&d.name) else {
                continue;
            };
            let Some(k) = rdma_position(&d.device_counter_names, fam) else {
                continue;
            };
            f.sample(
                &[("device", Lv::S(&d.name))],
                rdma_value(&d.device_counter_names, &reading.values, &reading.errors, k)
                    .map(Value::Int),
            );
        }
    }
}
