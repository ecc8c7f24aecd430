//! The metric catalogue: every metric the agent's `/metrics` page exposes, declared
//! once, with its name, unit, type, help, labels and how its value is read from the
//! wire types. The agent's Prometheus exposition, the coordinator's CSV/JSON export
//! and the CLI's views all read this table, so they name and scale a metric alike.
//!
//! Conventions (node_exporter / dcgm-exporter style, see the Prometheus naming guide):
//! every name starts with `servescope_`; values are in base units (bytes, seconds,
//! hertz, watts, joules, celsius, ratio 0–1); counters end in `_total`; a value that
//! could not be read is `None`, never `NaN`.
//!
//! One module per area: [`agent`] (the agent itself and per-sample metadata),
//! [`gpu`], [`host`], [`net`] (network interfaces) and [`rdma`]. Entries read from a
//! sample are [`Entry`] values (a [`Def`] plus a read function); entries that come
//! from the inventory or the agent's XID counts alone are bare [`Def`]s, exposed on
//! `/metrics` only ([`inventory_families`]).

pub mod agent;
pub mod gpu;
pub mod host;
pub mod net;
pub mod rdma;

#[cfg(test)]
mod tests;

use std::fmt;

/// Prometheus metric type (only the two the agent uses).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricType {
    /// Monotonic; the name ends in `_total`.
    Counter,
    /// A value that can go up and down.
    Gauge,
}

impl MetricType {
    /// The word used on the `# TYPE` line.
    pub const fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
        }
    }
}

/// Base unit of a family; its suffix is part of the name (before `_total`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Bytes,
    BytesPerSecond,
    Seconds,
    Ratio,
    Hertz,
    Watts,
    Joules,
    Celsius,
    /// A count, a bit mask, a 0/1 state or an `_info` pseudo-metric.
    None,
}

impl Unit {
    /// The name suffix this unit requires (`None` for unitless families).
    pub const fn suffix(self) -> Option<&'static str> {
        match self {
            Unit::Bytes => Some("_bytes"),
            Unit::BytesPerSecond => Some("_bytes_per_second"),
            Unit::Seconds => Some("_seconds"),
            Unit::Ratio => Some("_ratio"),
            Unit::Hertz => Some("_hertz"),
            Unit::Watts => Some("_watts"),
            Unit::Joules => Some("_joules"),
            Unit::Celsius => Some("_celsius"),
            Unit::None => None,
        }
    }
}

/// One metric family: what the `# HELP` and `# TYPE` lines say, and its labels on
/// `/metrics`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Def {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: MetricType,
    pub unit: Unit,
    pub labels: &'static [&'static str],
}

/// A catalogue entry read from a value of type `T` (a GPU reading, a host sample,
/// an interface reading…).
#[derive(Clone, Copy, Debug)]
pub struct Entry<T: 'static> {
    pub def: Def,
    /// The value in the family's unit; `None` when the agent could not read it.
    pub read: fn(&T) -> Option<Value>,
    /// True when the value repeats an earlier reading (consumers that store points
    /// skip it; `/metrics` shows the latest value regardless).
    pub stale: fn(&T) -> bool,
}

impl<T> Entry<T> {
    /// The value unless it repeats an earlier reading.
    pub fn fresh(&self, t: &T) -> Option<Value> {
        if (self.stale)(t) {
            None
        } else {
            (self.read)(t)
        }
    }
}

/// `stale` for values that are always read afresh.
pub const fn never<T>(_: &T) -> bool {
    false
}

/// The labels a group of entries shares; builds its entries that are always read
/// afresh.
#[derive(Clone, Copy)]
pub(crate) struct Labels(pub &'static [&'static str]);

impl Labels {
    /// An entry of these labels whose value never repeats an earlier reading.
    pub(crate) const fn entry<T>(
        self,
        name: &'static str,
        kind: MetricType,
        unit: Unit,
        help: &'static str,
        read: fn(&T) -> Option<Value>,
    ) -> Entry<T> {
        Entry {
            def: Def {
                name,
                help,
                kind,
                unit,
                labels: self.0,
            },
            read,
            stale: never,
        }
    }

    /// A gauge entry of these labels (see [`Labels::entry`]).
    pub(crate) const fn gauge<T>(
        self,
        name: &'static str,
        unit: Unit,
        help: &'static str,
        read: fn(&T) -> Option<Value>,
    ) -> Entry<T> {
        self.entry(name, MetricType::Gauge, unit, help, read)
    }
}

/// A metric value: integers stay exact; an `f32` reading keeps its own shortest
/// decimal form.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value {
    Int(u64),
    Float(f64),
    Float32(f32),
}

impl Value {
    /// Integers always; floats unless `NaN` or infinite.
    pub fn is_finite(self) -> bool {
        match self {
            Value::Int(_) => true,
            Value::Float(v) => v.is_finite(),
            Value::Float32(v) => v.is_finite(),
        }
    }

    /// The value as `f64` (an `f32` through its decimal form, so 0.375 stays 0.375
    /// and 0.1 becomes 0.1, not 0.10000000149…).
    pub fn as_f64(self) -> f64 {
        match self {
            Value::Int(v) => v as f64,
            Value::Float(v) => v,
            Value::Float32(v) => v.to_string().parse().unwrap_or(f64::from(v)),
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Int(v) => write!(f, "{v}"),
            Value::Float(v) => write!(f, "{v}"),
            Value::Float32(v) => write!(f, "{v}"),
        }
    }
}

/// 0/1 for a state.
pub fn b01(b: bool) -> Value {
    Value::Int(u64::from(b))
}

/// A whole percentage as a 0–1 ratio.
pub fn pct_ratio(p: u32) -> Value {
    Value::Float(f64::from(p) / 100.0)
}

/// Milli-units (mW, mJ) as units.
pub fn milli(v: u64) -> Value {
    // u64 → f64 is exact up to 2^53 mJ (≈ 285 years at 1 kW).
    Value::Float(v as f64 / 1000.0)
}

/// Nanoseconds → seconds, whole and fractional parts converted apart so an epoch
/// timestamp keeps sub-microsecond precision instead of the ~256 ns of `ns as f64`.
pub fn ns_secs(ns: u64) -> Value {
    Value::Float((ns / 1_000_000_000) as f64 + (ns % 1_000_000_000) as f64 / 1e9)
}

/// operstate "up" and carrier not known to be down.
pub fn link_up(operstate: &str, carrier: Option<bool>) -> bool {
    operstate.eq_ignore_ascii_case("up") && carrier != Some(false)
}

/// Every fixed family read from a sample, in `/metrics` order within each area.
pub fn sampled_families() -> impl Iterator<Item = &'static Def> {
    agent::sampled()
        .chain(gpu::sampled())
        .chain(host::sampled())
        .chain(net::sampled())
        .chain(rdma::sampled())
}

/// The families known from the inventory (or the agent's XID counts) alone: shown on
/// `/metrics`, not stored as points.
pub fn inventory_families() -> impl Iterator<Item = &'static Def> {
    agent::INVENTORY
        .iter()
        .chain(gpu::INVENTORY)
        .chain(host::INVENTORY)
        .chain(rdma::INVENTORY)
        .copied()
}

/// Every fixed family (RDMA counter families are named by the counters the
/// hardware offers: see [`rdma::PORT_COUNTER`] and [`rdma::DEVICE_COUNTER`]).
pub fn families() -> impl Iterator<Item = &'static Def> {
    inventory_families().chain(sampled_families())
}
