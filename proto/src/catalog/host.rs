//! Host families: identity, CPU, memory, load.

use super::{never, Def, Entry, Labels, MetricType, Unit, Value};
use crate::v1::HostSample;

const UNLABELLED: Labels = Labels(&[]);

pub const INFO: Def = Def {
    name: "servescope_host_info",
    help: "Host name, OS and kernel; always 1.",
    kind: MetricType::Gauge,
    unit: Unit::None,
    labels: &["hostname", "os", "kernel"],
};

/// Families from the inventory alone.
pub const INVENTORY: &[&Def] = &[&INFO];

/// A CPU percentage as a 0–1 ratio, kept in `f32` as read.
fn cpu_ratio(p: f32) -> Value {
    Value::Float32(p / 100.0)
}

/// `servescope_host_cpu_utilization_ratio`, unlabelled.
pub const CPU_UTILIZATION: Entry<HostSample> = Entry {
    def: Def {
        name: "servescope_host_cpu_utilization_ratio",
        help: "CPU utilization over all cores since the previous host sample (0-1).",
        kind: MetricType::Gauge,
        unit: Unit::Ratio,
        labels: &[],
    },
    read: |h| Some(cpu_ratio(h.cpu_total_pct)),
    stale: never,
};

/// `servescope_host_cpu_core_utilization_ratio{cpu}`, read from one element of
/// `cpu_per_core_pct` (`cpu` is its index).
pub const CORE_UTILIZATION: Entry<f32> = Entry {
    def: Def {
        name: "servescope_host_cpu_core_utilization_ratio",
        help: "CPU utilization of each core since the previous host sample (0-1).",
        kind: MetricType::Gauge,
        unit: Unit::Ratio,
        labels: &["cpu"],
    },
    read: |p| Some(cpu_ratio(*p)),
    stale: never,
};

/// Unlabelled host gauges after the CPU ones, in output order.
pub const SAMPLE: &[Entry<HostSample>] = &[
    UNLABELLED.gauge(
        "servescope_host_memory_total_bytes",
        Unit::Bytes,
        "Total host memory.",
        |h| Some(Value::Int(h.memory_total_bytes)),
    ),
    UNLABELLED.gauge(
        "servescope_host_memory_used_bytes",
        Unit::Bytes,
        "Host memory in use.",
        |h| Some(Value::Int(h.memory_used_bytes)),
    ),
    UNLABELLED.gauge(
        "servescope_host_memory_available_bytes",
        Unit::Bytes,
        "Host memory available for new allocations without swapping.",
        |h| Some(Value::Int(h.memory_available_bytes)),
    ),
    UNLABELLED.gauge(
        "servescope_host_swap_used_bytes",
        Unit::Bytes,
        "Swap space in use.",
        |h| Some(Value::Int(h.swap_used_bytes)),
    ),
    UNLABELLED.gauge(
        "servescope_host_load1",
        Unit::None,
        "1-minute load average.",
        |h| Some(Value::Float(h.load1)),
    ),
    UNLABELLED.gauge(
        "servescope_host_load5",
        Unit::None,
        "5-minute load average.",
        |h| Some(Value::Float(h.load5)),
    ),
    UNLABELLED.gauge(
        "servescope_host_load15",
        Unit::None,
        "15-minute load average.",
        |h| Some(Value::Float(h.load15)),
    ),
];

pub(super) fn sampled() -> impl Iterator<Item = &'static Def> {
    [&CPU_UTILIZATION.def, &CORE_UTILIZATION.def]
        .into_iter()
        .chain(SAMPLE.iter().map(|e| &e.def))
}
