//! Network interface families (`/proc/net/dev`, operstate), labelled `interface`.

use super::{b01, link_up, Def, Entry, Labels, MetricType, Unit, Value};
use crate::v1::NetInterfaceReading;

const BY_INTERFACE: Labels = Labels(&["interface"]);

/// Per-interface families, in output order.
pub const INTERFACE: &[Entry<NetInterfaceReading>] = &[
    BY_INTERFACE.entry(
        "servescope_host_network_receive_bytes_total",
        MetricType::Counter,
        Unit::Bytes,
        "Bytes received by the network interface (RDMA offload traffic is not included).",
        |n| Some(Value::Int(n.rx_bytes)),
    ),
    BY_INTERFACE.entry(
        "servescope_host_network_transmit_bytes_total",
        MetricType::Counter,
        Unit::Bytes,
        "Bytes transmitted by the network interface (RDMA offload traffic is not included).",
        |n| Some(Value::Int(n.tx_bytes)),
    ),
    BY_INTERFACE.entry(
        "servescope_host_network_receive_packets_total",
        MetricType::Counter,
        Unit::None,
        "Packets received by the network interface.",
        |n| Some(Value::Int(n.rx_packets)),
    ),
    BY_INTERFACE.entry(
        "servescope_host_network_transmit_packets_total",
        MetricType::Counter,
        Unit::None,
        "Packets transmitted by the network interface.",
        |n| Some(Value::Int(n.tx_packets)),
    ),
    BY_INTERFACE.entry(
        "servescope_host_network_receive_errors_total",
        MetricType::Counter,
        Unit::None,
        "Receive errors of the network interface.",
        |n| Some(Value::Int(n.rx_errors)),
    ),
    BY_INTERFACE.entry(
        "servescope_host_network_transmit_errors_total",
        MetricType::Counter,
        Unit::None,
        "Transmit errors of the network interface.",
        |n| Some(Value::Int(n.tx_errors)),
    ),
    BY_INTERFACE.entry(
        "servescope_host_network_receive_drops_total",
        MetricType::Counter,
        Unit::None,
        "Received packets dropped by the network interface.",
        |n| Some(Value::Int(n.rx_dropped)),
    ),
    BY_INTERFACE.entry(
        "servescope_host_network_transmit_drops_total",
        MetricType::Counter,
        Unit::None,
        "Transmitted packets dropped by the network interface.",
        |n| Some(Value::Int(n.tx_dropped)),
    ),
    BY_INTERFACE.entry(
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
