//! Network interface families (`/proc/net/dev`, operstate), labelled `interface`.

use super::{b01, link_up, never, Def, Entry, MetricType, Unit, Value};
use crate::v1::NetInterfaceReading;

const fn entry(
    name: &'static str,
    kind: MetricType,
    unit: Unit,
    help: &'static str,
    read: fn(&NetInterfaceReading) -> Option<Value>,
) -> Entry<NetInterfaceReading> {
    Entry {
        def: Def {
            name,
            help,
            kind,
            unit,
            labels: &["interface"],
        },
        read,
        stale: never,
    }
}

/// Per-interface families, in output order.
pub const INTERFACE: &[Entry<NetInterfaceReading>] = &[
    entry(
        "servescope_host_network_receive_bytes_total",
        MetricType::Counter,
        Unit::Bytes,
        "Bytes received by the network interface (RDMA offload traffic is not included).",
        |n| Some(Value::Int(n.rx_bytes)),
    ),
    entry(
        "servescope_host_network_transmit_bytes_total",
        MetricType::Counter,
        Unit::Bytes,
        "Bytes transmitted by the network interface (RDMA offload traffic is not included).",
        |n| Some(Value::Int(n.tx_bytes)),
    ),
    entry(
        "servescope_host_network_receive_packets_total",
        MetricType::Counter,
        Unit::None,
        "Packets received by the network interface.",
        |n| Some(Value::Int(n.rx_packets)),
    ),
    entry(
        "servescope_host_network_transmit_packets_total",
        MetricType::Counter,
        Unit::None,
        "Packets transmitted by the network interface.",
        |n| Some(Value::Int(n.tx_packets)),
    ),
    entry(
        "servescope_host_network_receive_errors_total",
        MetricType::Counter,
        Unit::None,
        "Receive errors of the network interface.",
        |n| Some(Value::Int(n.rx_errors)),
    ),
    entry(
        "servescope_host_network_transmit_errors_total",
        MetricType::Counter,
        Unit::None,
        "Transmit errors of the network interface.",
        |n| Some(Value::Int(n.tx_errors)),
    ),
    entry(
        "servescope_host_network_receive_drops_total",
        MetricType::Counter,
        Unit::None,
        "Received packets dropped by the network interface.",
        |n| Some(Value::Int(n.rx_dropped)),
    ),
    entry(
        "servescope_host_network_transmit_drops_total",
        MetricType::Counter,
        Unit::None,
        "Transmitted packets dropped by the network interface.",
        |n| Some(Value::Int(n.tx_dropped)),
    ),
    entry(
        "servescope_host_network_up",
        MetricType::Gauge,
        Unit::None,
        "1 if the interface operstate is up and its carrier is not down.",
        |n| Some(b01(link_up(&n.operstate, n.carrier))),
    ),
];

pub(super) fn sampled() -> impl Iterator<Item = &'static Def> {
    INTERFACE.iter().map(|e| &e.def)
}
