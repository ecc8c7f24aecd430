//! RDMA families: device and port identity and state, and the counter families.
//!
//! The agent passes on whatever counters sysfs offers, so counters are two family
//! templates ([`PORT_COUNTER`], [`DEVICE_COUNTER`]) with one family per counter
//! name: [`CounterFamily`] writes the name, [`CounterHelp`] the help.

use std::cmp::Ordering;
use std::fmt::{self, Write as _};

use super::{b01, link_up, never, Def, Entry, MetricType, Unit};
use crate::v1::RdmaPortReading;

pub const DEVICE_INFO: Def = Def {
    name: "servescope_rdma_device_info",
    help: "RDMA device driver and placement; always 1.",
    kind: MetricType::Gauge,
    unit: Unit::None,
    labels: &["device", "driver", "pci_address", "numa_node"],
};

pub const PORT_RATE: Def = Def {
    name: "servescope_rdma_port_rate_bytes_per_second",
    help: "Link rate of the RDMA port as reported by sysfs.",
    kind: MetricType::Gauge,
    unit: Unit::BytesPerSecond,
    labels: &["device", "port"],
};

/// Families from the inventory alone.
pub const INVENTORY: &[&Def] = &[&DEVICE_INFO, &PORT_RATE];

/// `servescope_rdma_port_active{device,port}` from the port state (on `/metrics`
/// the inventory's state stands in when a reading has none).
pub const PORT_ACTIVE: Entry<RdmaPortReading> = Entry {
    def: Def {
        name: "servescope_rdma_port_active",
        help: "1 if the RDMA port state is ACTIVE (EFA always says ACTIVE: see servescope_rdma_netdev_up).",
        kind: MetricType::Gauge,
        unit: Unit::None,
        labels: &["device", "port"],
    },
    read: |p| (!p.state.is_empty()).then(|| b01(port_active(&p.state))),
    stale: never,
};

/// `servescope_rdma_netdev_up{device,port,netdev}` (the netdev name comes from the
/// inventory).
pub const NETDEV_UP: Entry<RdmaPortReading> = Entry {
    def: Def {
        name: "servescope_rdma_netdev_up",
        help: "1 if the RDMA port's network interface has operstate up and carrier not down.",
        kind: MetricType::Gauge,
        unit: Unit::None,
        labels: &["device", "port", "netdev"],
    },
    read: |p| {
        (!p.netdev_operstate.is_empty())
            .then(|| b01(link_up(&p.netdev_operstate, p.netdev_carrier)))
    },
    stale: never,
};

/// Template for per-port RDMA counter families: `hw_counters/<c>` becomes
/// `servescope_rdma_port_<c>_total`, `counters/<c>` becomes
/// `servescope_rdma_port_counters_<c>_total`, labels `device`, `port`.
pub const PORT_COUNTER: Def = Def {
    name: "servescope_rdma_port_<counter>_total",
    help: "RDMA port counter <counter> read from sysfs (cumulative, driver units).",
    kind: MetricType::Counter,
    unit: Unit::None,
    labels: &["device", "port"],
};

/// Template for device-level RDMA counter families: `servescope_rdma_device_<c>_total`,
/// label `device`.
pub const DEVICE_COUNTER: Def = Def {
    name: "servescope_rdma_device_<counter>_total",
    help: "RDMA device counter <counter> read from sysfs (cumulative, driver units).",
    kind: MetricType::Counter,
    unit: Unit::None,
    labels: &["device"],
};

/// sysfs `hw_counters/lifespan` is the driver's counter cache lifetime in ms, a
/// setting rather than a counter: it is not exported.
const NOT_COUNTERS: &[&str] = &["lifespan"];

/// Which template a counter family follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Port,
    Device,
}

impl Scope {
    pub const fn template(self) -> &'static Def {
        match self {
            Scope::Port => &PORT_COUNTER,
            Scope::Device => &DEVICE_COUNTER,
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            Scope::Port => "servescope_rdma_port_",
            Scope::Device => "servescope_rdma_device_",
        }
    }
}

/// Splits a sysfs counter name into the family-name part that marks its directory
/// (`hw_counters/` adds nothing, `counters/` adds `counters_`) and the rest.
pub fn split(raw: &str) -> (&'static str, &str) {
    if let Some(rest) = raw.strip_prefix("hw_counters/") {
        ("", rest)
    } else if let Some(rest) = raw.strip_prefix("counters/") {
        ("counters_", rest)
    } else {
        ("", raw)
    }
}

/// The family-name characters for a counter: lower case `[a-z0-9_]`, anything else
/// becomes `_`.
pub fn key(raw: &str) -> impl Iterator<Item = char> + Clone + '_ {
    let (pre, rest) = split(raw);
    pre.chars().chain(rest.chars().map(|c| {
        if c.is_ascii_alphanumeric() {
            c.to_ascii_lowercase()
        } else {
            '_'
        }
    }))
}

/// Orders counter names by the family they feed.
pub fn key_cmp(a: &str, b: &str) -> Ordering {
    key(a).cmp(key(b))
}

/// Whether a counter (as sysfs names it) is exported at all.
pub fn exported(raw: &str) -> bool {
    let (_, rest) = split(raw);
    !rest.is_empty() && !NOT_COUNTERS.contains(&rest)
}

/// The family name of counter `raw`, sanitized while written.
#[derive(Clone, Copy, Debug)]
pub struct CounterFamily<'a>(pub Scope, pub &'a str);

impl fmt::Display for CounterFamily<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.prefix())?;
        for c in key(self.1) {
            f.write_char(c)?;
        }
        f.write_str("_total")
    }
}

/// The help text of counter `raw`'s family (escaped for a HELP line).
#[derive(Clone, Copy, Debug)]
pub struct CounterHelp<'a>(pub Scope, pub &'a str);

impl fmt::Display for CounterHelp<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.0 {
            Scope::Port => "RDMA port counter ",
            Scope::Device => "RDMA device counter ",
        })?;
        for c in self.1.chars() {
            match c {
                '\\' => f.write_str("\\\\")?,
                '\n' => f.write_str("\\n")?,
                c => f.write_char(c)?,
            }
        }
        f.write_str(" read from sysfs (cumulative, driver units")?;
        let (_, rest) = split(self.1);
        if rest == "port_xmit_data" || rest == "port_rcv_data" {
            f.write_str("; counts 4-octet words")?;
        }
        f.write_str(").")
    }
}

/// "100 Gb/sec (4X EDR)" → bytes per second.
pub fn parse_rate_bytes_per_second(rate: &str) -> Option<f64> {
    let mut it = rate.split_whitespace();
    let num: f64 = it.next()?.parse().ok()?;
    let unit = it.next()?;
    let bits = match unit {
        u if u.starts_with("Tb/s") => 1e12,
        u if u.starts_with("Gb/s") => 1e9,
        u if u.starts_with("Mb/s") => 1e6,
        u if u.starts_with("Kb/s") => 1e3,
        _ => return None,
    };
    Some(num * bits / 8.0)
}

/// "4: ACTIVE" (or "ACTIVE", "5: ACTIVE_DEFER") → true.
pub fn port_active(state: &str) -> bool {
    let s = state.rsplit(':').next().unwrap_or("").trim();
    s.eq_ignore_ascii_case("ACTIVE") || s.eq_ignore_ascii_case("ACTIVE_DEFER")
}

pub(super) fn sampled() -> impl Iterator<Item = &'static Def> {
    [&PORT_ACTIVE.def, &NETDEV_UP.def].into_iter()
}
