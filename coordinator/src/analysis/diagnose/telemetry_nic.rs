//! NIC/EFA rules over the agents' RDMA and network samples: a port or its netdev
//! down, a link flapping, retransmits/timeouts/unresponsive remotes rising.

use std::collections::{BTreeMap, HashSet};

use servescope_proto::v1::{RdmaDeviceInfo, RdmaPortReading};

use super::telemetry::{HostTelemetry, Telemetry};
use super::{Finding, Severity};
use crate::analysis::rates::port_counter_failed;

/// Down intervals of one link within a run from which it is flapping rather than down.
pub const FLAP_MIN_DOWNS: usize = 2;
/// Retransmit counters and the rise over the run worth a finding: packets
/// retransmitted (a few are normal on a loaded fabric), and timeout or
/// unresponsive-remote events (none is normal).
pub const RETRANSMIT_COUNTERS: &[(&str, u64)] = &[
    ("hw_counters/retrans_pkts", 100),
    ("hw_counters/retrans_timeout_events", 1),
    ("hw_counters/unresponsive_remote_events", 1),
    ("hw_counters/impaired_remote_conn_events", 1),
    ("hw_counters/local_ack_timeout_err", 1),
    ("hw_counters/rnr_nak_retry_err", 1),
    ("hw_counters/packet_seq_err", 100),
    ("hw_counters/out_of_sequence", 100),
];

/// Whether a port reading says the link is down: the port's state (InfiniBand,
/// RoCE) or its netdev (EFA's port always says ACTIVE; its netdev tells the truth).
fn port_down(p: &RdmaPortReading) -> Option<String> {
    if !p.state.is_empty() && !p.state.contains("ACTIVE") {
        return Some(format!("port state {}", p.state.trim()));
    }
    if p.netdev_operstate == "down" {
        return Some("netdev operstate down".into());
    }
    if p.netdev_carrier == Some(false) {
        return Some("netdev carrier lost".into());
    }
    None
}

/// One link's history: (t, Some(reason) when down).
type History = Vec<(u64, Option<String>)>;

fn links(h: &HostTelemetry) -> BTreeMap<String, History> {
    let mut m: BTreeMap<String, History> = BTreeMap::new();
    for (ts, s) in &h.rdma {
        for d in &s.devices {
            for p in &d.ports {
                m.entry(format!("{} port {}", d.device, p.port))
                    .or_default()
                    .push((*ts, port_down(p)));
            }
        }
    }
    // Plain interfaces (not an RDMA device's netdev) that go from up to down.
    let rdma_netdevs: HashSet<&str> = h
        .inventory
        .iter()
        .flat_map(|i| &i.rdma_devices)
        .flat_map(|d| &d.ports)
        .map(|p| p.netdev.as_str())
        .collect();
    let mut net: BTreeMap<String, History> = BTreeMap::new();
    for (ts, s) in &h.host_samples {
        for n in s
            .net
            .iter()
            .filter(|n| !rdma_netdevs.contains(n.name.as_str()))
        {
            let down = (n.operstate == "down" || n.carrier == Some(false))
                .then(|| format!("operstate {}", n.operstate));
            net.entry(format!("interface {}", n.name))
                .or_default()
                .push((*ts, down));
        }
    }
    for (k, v) in net {
        if v.iter().any(|x| x.1.is_none()) {
            m.insert(k, v);
        }
    }
    m
}

/// Down intervals: (from, back up at or None, reason).
fn downs(hist: &History) -> Vec<(u64, Option<u64>, String)> {
    let mut out = Vec::new();
    let mut open: Option<(u64, String)> = None;
    for (ts, d) in hist {
        match (d, &open) {
            (Some(r), None) => open = Some((*ts, r.clone())),
            (None, Some((from, r))) => {
                out.push((*from, Some(*ts), r.clone()));
                open = None;
            }
            _ => {}
        }
    }
    if let Some((from, r)) = open {
        out.push((from, None, r));
    }
    out
}

fn describe(
    t: &Telemetry,
    h: &HostTelemetry,
    link: &str,
    d: &[(u64, Option<u64>, String)],
) -> String {
    let spans: Vec<String> = d
        .iter()
        .map(|(from, to, why)| match to {
            Some(to) => format!(
                "down at {} ({why}), up again {:.1} s later",
                h.when(t.started_ns, *from),
                HostTelemetry::secs(*from, *to)
            ),
            None => format!(
                "down at {} ({why}) until the end",
                h.when(t.started_ns, *from)
            ),
        })
        .collect();
    format!("{} {link}: {}", h.host, spans.join("; "))
}

/// (link down evidence, flapping evidence).
fn link_evidence(t: &Telemetry) -> (Vec<String>, Vec<String>) {
    let (mut down, mut flap) = (Vec::new(), Vec::new());
    for h in &t.hosts {
        for (link, hist) in links(h) {
            let d = downs(&hist);
            if d.len() >= FLAP_MIN_DOWNS {
                flap.push(describe(t, h, &link, &d));
            } else if !d.is_empty() {
                down.push(describe(t, h, &link, &d));
            }
        }
    }
    (down, flap)
}

pub fn nic_link_down(t: &Telemetry) -> Option<Finding> {
    let (evidence, _) = link_evidence(t);
    (!evidence.is_empty()).then(|| Finding {
        rule: "nic_link_down",
        severity: Severity::Critical,
        title: "NIC/EFA link down during the run".into(),
        evidence,
        fix: "Traffic on this link stopped or moved to the remaining rails (less bandwidth, retries): check the port (ibv_devinfo / fi_info -p efa, ip link), the cable/switch port or the instance's ENA/EFA attachment; rerun once every link stays up.".into(),
    })
}

pub fn nic_link_flapping(t: &Telemetry) -> Option<Finding> {
    let (_, evidence) = link_evidence(t);
    (!evidence.is_empty()).then(|| Finding {
        rule: "nic_link_flapping",
        severity: Severity::Critical,
        title: "NIC/EFA link flapping".into(),
        evidence,
        fix: "A link going down and up repeatedly stalls every transfer on it at each drop: check the cable/transceiver and the switch port's error counters, the kernel log for link resets, and take the port out of service until it is replaced.".into(),
    })
}

/// One port's readings in time order, with its device's inventory.
type PortHistory<'a> = Vec<(u64, &'a RdmaDeviceInfo, &'a str, &'a RdmaPortReading)>;

/// The rise of port counter `name` over a history: increments summed (a counter
/// reset is not counted as negative), the first time it rose and the last value.
fn rise(hist: &PortHistory<'_>, name: &str) -> Option<(u64, u64, u64)> {
    let mut prev: Option<u64> = None;
    let (mut added, mut first) = (0u64, None);
    let mut last = 0;
    for (ts, info, dev, p) in hist {
        if port_counter_failed(dev, p, name) {
            continue;
        }
        let Some(v) = info
            .ports
            .iter()
            .find(|x| x.port == p.port)
            .and_then(|pi| pi.counter_names.iter().position(|n| n == name))
            .and_then(|i| p.values.get(i).copied())
        else {
            continue;
        };
        if let Some(pv) = prev {
            if v > pv {
                added += v - pv;
                first.get_or_insert(*ts);
            }
        }
        prev = Some(v);
        last = *ts;
    }
    Some((added, first?, last))
}

pub fn rdma_retransmits_rising(t: &Telemetry) -> Option<Finding> {
    let mut evidence = Vec::new();
    for h in &t.hosts {
        let Some(inv) = &h.inventory else { continue };
        let mut by_port: BTreeMap<(String, u32), PortHistory<'_>> = BTreeMap::new();
        for (ts, s) in &h.rdma {
            for d in &s.devices {
                let Some(info) = inv.rdma_devices.iter().find(|i| i.name == d.device) else {
                    continue;
                };
                for p in &d.ports {
                    by_port
                        .entry((d.device.clone(), p.port))
                        .or_default()
                        .push((*ts, info, d.device.as_str(), p));
                }
            }
        }
        for ((dev, port), hist) in &by_port {
            for (name, min) in RETRANSMIT_COUNTERS {
                let Some((added, first, last)) = rise(hist, name) else {
                    continue;
                };
                if added < *min {
                    continue;
                }
                evidence.push(format!(
                    "{} {dev} port {port}: {} +{added}, rising from {} to {}",
                    h.host,
                    name.trim_start_matches("hw_counters/"),
                    h.when(t.started_ns, first),
                    h.when(t.started_ns, last)
                ));
            }
        }
    }
    if evidence.is_empty() {
        return None;
    }
    Some(Finding {
        rule: "rdma_retransmits_rising",
        severity: Severity::Critical,
        title: "RDMA retransmits, timeouts or unresponsive remotes rising".into(),
        evidence,
        fix: "The fabric drops or delays packets on these ports (congestion, a bad link, a peer that stopped answering): every retransmit adds a timeout to the KV or collective transfer it belongs to. Check the peer's health, the link's error counters and the switch; spread traffic over more rails; rerun the fabric probe between the pair.".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn down_intervals_open_and_close() {
        let h: History = vec![
            (1, None),
            (2, Some("x".into())),
            (3, Some("x".into())),
            (4, None),
            (5, Some("y".into())),
        ];
        let d = downs(&h);
        assert_eq!(d.len(), 2);
        assert_eq!((d[0].0, d[0].1), (2, Some(4)));
        assert_eq!((d[1].0, d[1].1), (5, None));
    }
}
