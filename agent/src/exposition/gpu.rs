//! GPU families.

use servescope_proto::catalog::{b01, gpu as cat, Value};
use servescope_proto::v1::{GpuInfo, GpuReading, Inventory};

use super::writer::{first_of, Family, Lv};
use super::RenderOptions;

/// The identity labels every per-GPU series carries ([`cat::GPU_LABELS`]).
#[derive(Clone, Copy)]
struct GpuIds<'a> {
    index: u32,
    uuid: &'a str,
    pci_bus_id: &'a str,
    name: &'a str,
}

impl<'a> GpuIds<'a> {
    fn lookup(inv: &'a Inventory, index: u32) -> Self {
        match inv.gpus.iter().find(|g| g.index == index) {
            Some(g) => GpuIds::of(g),
            None => GpuIds {
                index,
                uuid: "",
                pci_bus_id: "",
                name: "",
            },
        }
    }

    fn of(g: &'a GpuInfo) -> Self {
        GpuIds {
            index: g.index,
            uuid: &g.uuid,
            pci_bus_id: &g.pci_bus_id,
            name: &g.name,
        }
    }

    fn labels(&self) -> [(&'static str, Lv<'a>); 4] {
        [
            ("gpu", Lv::U(u64::from(self.index))),
            ("uuid", Lv::S(self.uuid)),
            ("pci_bus_id", Lv::S(self.pci_bus_id)),
            ("name", Lv::S(self.name)),
        ]
    }
}

pub(super) fn render_gpus(
    out: &mut String,
    inv: &Inventory,
    readings: &[GpuReading],
    xid_counts: &[(u32, u64, u64)],
    opts: &RenderOptions,
) {
    let nvml = inv.gpu.as_ref().is_some_and(|a| a.available);
    Family::new(out, &cat::NVML_UP).sample(&[], b01(nvml));
    if nvml {
        Family::new(out, &cat::DRIVER_INFO).sample(
            &[
                ("driver_version", Lv::S(&inv.driver_version)),
                ("cuda_driver_version", Lv::S(&inv.cuda_driver_version)),
                ("nvml_version", Lv::S(&inv.nvml_version)),
            ],
            Value::Int(1),
        );
    }

    let gpus = &inv.gpus;
    let unique_gpu = |i: usize| first_of(gpus, i, |a, b| a.index == b.index);
    let mut f = Family::new(out, &cat::INFO);
    for (_, g) in gpus.iter().enumerate().filter(|(i, _)| unique_gpu(*i)) {
        f.sample(
            &[
                ("gpu", Lv::U(u64::from(g.index))),
                ("uuid", Lv::S(&g.uuid)),
                ("name", Lv::S(&g.name)),
                ("pci_bus_id", Lv::S(&g.pci_bus_id)),
                ("numa_node", Lv::OptI(g.numa_node)),
            ],
            Value::Int(1),
        );
    }
    for e in cat::INVENTORY_VALUES {
        let mut f = Family::new(out, &e.def);
        for (_, g) in gpus.iter().enumerate().filter(|(i, _)| unique_gpu(*i)) {
            f.sample(&GpuIds::of(g).labels(), (e.read)(g));
        }
    }

    let unique_reading = |i: usize| first_of(readings, i, |a, b| a.index == b.index);
    for e in cat::READINGS {
        let mut f = Family::new(out, &e.def);
        for (i, r) in readings.iter().enumerate() {
            if let Some(v) = (e.read)(r) {
                if unique_reading(i) {
                    f.sample(&GpuIds::lookup(inv, r.index).labels(), v);
                }
            }
        }
    }

    if opts.per_process {
        let e = &cat::PROCESS_MEMORY;
        let mut f = Family::new(out, &e.def);
        for (i, r) in readings.iter().enumerate() {
            if r.processes.is_empty() || !unique_reading(i) {
                continue;
            }
            let ids = GpuIds::lookup(inv, r.index);
            for (j, p) in r.processes.iter().enumerate() {
                if first_of(&r.processes, j, |a, b| a.pid == b.pid) {
                    f.sample(
                        &[
                            ("gpu", Lv::U(u64::from(r.index))),
                            ("uuid", Lv::S(ids.uuid)),
                            ("pid", Lv::U(u64::from(p.pid))),
                            ("process", Lv::S(&p.name)),
                        ],
                        (e.read)(p),
                    );
                }
            }
        }
    }

    let mut f = Family::new(out, &cat::XID_ERRORS);
    for (i, &(gpu, xid, count)) in xid_counts.iter().enumerate() {
        if first_of(xid_counts, i, |a, b| (a.0, a.1) == (b.0, b.1)) {
            f.sample(
                &[
                    ("gpu", Lv::U(u64::from(gpu))),
                    ("uuid", Lv::S(GpuIds::lookup(inv, gpu).uuid)),
                    ("xid", Lv::U(xid)),
                ],
                Value::Int(count),
            );
        }
    }
}
