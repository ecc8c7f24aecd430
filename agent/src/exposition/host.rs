//! Host and network interface families.

use servescope_proto::catalog::{host as cat, net, Value};
use servescope_proto::v1::{HostSample, Inventory};

use super::writer::{first_of, Family, Lv};

pub(super) fn render_host_info(out: &mut String, inv: &Inventory) {
    let (os, kernel) = inv
        .host
        .as_ref()
        .map_or(("", ""), |h| (h.os.as_str(), h.kernel.as_str()));
    Family::new(out, &cat::INFO).sample(
        &[
            ("hostname", Lv::S(&inv.hostname)),
            ("os", Lv::S(os)),
            ("kernel", Lv::S(kernel)),
        ],
        Value::Int(1),
    );
}

pub(super) fn render_host(out: &mut String, inv: &Inventory, h: &HostSample) {
    render_host_info(out, inv);
    let e = &cat::CPU_UTILIZATION;
    Family::new(out, &e.def).sample(&[], (e.read)(h));
    let e = &cat::CORE_UTILIZATION;
    let mut f = Family::new(out, &e.def);
    for (cpu, p) in h.cpu_per_core_pct.iter().enumerate() {
        f.sample(&[("cpu", Lv::U(cpu as u64))], (e.read)(p));
    }
    for e in cat::SAMPLE {
        Family::new(out, &e.def).sample(&[], (e.read)(h));
    }

    let nets = &h.net;
    let unique = |i: usize| first_of(nets, i, |a, b| a.name == b.name);
    for e in net::INTERFACE {
        let mut f = Family::new(out, &e.def);
        for (i, n) in nets.iter().enumerate() {
            if unique(i) {
                f.sample(&[("interface", Lv::S(&n.name))], (e.read)(n));
            }
        }
    }
}
