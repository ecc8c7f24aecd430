//! The agent itself (build, self-telemetry) and per-sample metadata.

use super::{never, ns_secs, Def, Entry, Labels, MetricType, Unit, Value};

const UNLABELLED: Labels = Labels(&[]);
const BY_KIND: Labels = Labels(&["kind"]);
use crate::v1::{sample, CallCost, Sample, SampleKind, SelfSample};

/// `servescope_agent_build_info{version}`, from the inventory.
pub const BUILD_INFO: Def = Def {
    name: "servescope_agent_build_info",
    help: "Agent build information; always 1.",
    kind: MetricType::Gauge,
    unit: Unit::None,
    labels: &["version"],
};

/// Families from the inventory alone.
pub const INVENTORY: &[&Def] = &[&BUILD_INFO];

/// The agent's self sample, unlabelled, in output order.
pub const SELF: &[Entry<SelfSample>] = &[
    UNLABELLED.entry(
        "servescope_agent_cpu_seconds_total",
        MetricType::Counter,
        Unit::Seconds,
        "User plus system CPU time consumed by the agent process.",
        |s| Some(Value::Float(s.cpu_seconds_total)),
    ),
    UNLABELLED.entry(
        "servescope_agent_resident_memory_bytes",
        MetricType::Gauge,
        Unit::Bytes,
        "Resident set size of the agent process.",
        |s| Some(Value::Int(s.rss_bytes)),
    ),
    UNLABELLED.entry(
        "servescope_agent_ring_samples",
        MetricType::Gauge,
        Unit::None,
        "Samples held in the agent's replay ring buffer.",
        |s| Some(Value::Int(s.ring_samples)),
    ),
    UNLABELLED.entry(
        "servescope_agent_ring_bytes",
        MetricType::Gauge,
        Unit::Bytes,
        "Estimated memory held by the agent's replay ring buffer.",
        |s| Some(Value::Int(s.ring_bytes_estimate)),
    ),
    UNLABELLED.entry(
        "servescope_agent_streams_active",
        MetricType::Gauge,
        Unit::None,
        "gRPC telemetry streams currently open.",
        |s| Some(Value::Int(s.streams_active)),
    ),
];

/// `servescope_agent_collector_call_seconds{call,stat}`: one series per
/// [`CALL_STATS`] entry.
pub const COLLECTOR_CALL_SECONDS: Def = Def {
    name: "servescope_agent_collector_call_seconds",
    help: "Mean and max duration of each collector call since the previous self sample.",
    kind: MetricType::Gauge,
    unit: Unit::Seconds,
    labels: &["call", "stat"],
};

/// Reads one statistic of a call's cost.
pub type CallStat = fn(&CallCost) -> Option<Value>;

/// The `stat` label values of [`COLLECTOR_CALL_SECONDS`] and how each is read.
pub const CALL_STATS: &[(&str, CallStat)] = &[
    ("mean", |c| Some(ns_secs(c.mean_ns))),
    ("max", |c| Some(ns_secs(c.max_ns))),
];

/// `servescope_agent_collector_calls{call}`.
pub const COLLECTOR_CALLS: Entry<CallCost> = Entry {
    def: Def {
        name: "servescope_agent_collector_calls",
        help: "Number of calls of each collector call since the previous self sample.",
        kind: MetricType::Gauge,
        unit: Unit::None,
        labels: &["call"],
    },
    read: |c| Some(Value::Int(c.count)),
    stale: never,
};

/// Per-sample metadata, labelled by [`kind_label`] (events have none).
pub const SAMPLE: &[Entry<Sample>] = &[
    BY_KIND.gauge(
        "servescope_sample_timestamp_seconds",
        Unit::Seconds,
        "Agent host time (Unix epoch) of the latest sample of each kind.",
        |s| Some(ns_secs(s.t_ns)),
    ),
    BY_KIND.gauge(
        "servescope_sample_collect_seconds",
        Unit::Seconds,
        "Time the collector took to produce the latest sample of each kind.",
        |s| Some(ns_secs(s.collect_ns)),
    ),
    BY_KIND.gauge(
        "servescope_sample_field_errors",
        Unit::None,
        "Values that could not be read in the latest sample of each kind.",
        |s| field_errors(s).map(|n| Value::Int(n as u64)),
    ),
];

/// The `kind` label of a sample's metadata; `None` for events.
pub fn kind_label(s: &Sample) -> Option<&'static str> {
    let k = s.kind();
    SampleKind::PERIODIC.contains(&k).then(|| k.name())
}

/// Values the collector could not read in this sample; `None` for events.
pub fn field_errors(s: &Sample) -> Option<usize> {
    Some(match s.data.as_ref()? {
        sample::Data::Gpu(g) => g.gpus.iter().map(|r| r.errors.len()).sum(),
        sample::Data::Host(h) => h.errors.len(),
        sample::Data::Rdma(r) => r
            .devices
            .iter()
            .map(|d| d.errors.len() + d.ports.iter().map(|p| p.errors.len()).sum::<usize>())
            .sum(),
        sample::Data::SelfStats(_) => 0,
        sample::Data::Event(_) => return None,
    })
}

pub(super) fn sampled() -> impl Iterator<Item = &'static Def> {
    SELF.iter()
        .map(|e| &e.def)
        .chain([&COLLECTOR_CALL_SECONDS, &COLLECTOR_CALLS.def])
        .chain(SAMPLE.iter().map(|e| &e.def))
}
