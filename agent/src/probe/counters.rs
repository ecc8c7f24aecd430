//! Node counters snapshotted around a probe (RDMA hw/port counters, netdev bytes and
//! packets), so that a probe's result carries the evidence of which NIC moved the
//! bytes: EFA `rdma_write_bytes` vs `tx_bytes` on an ENA interface vs nothing at all
//! (shared memory).

use std::collections::BTreeMap;
use std::path::Path;

use servescope_proto::v1::CounterDelta;

use crate::collect::host::netdev::read_interfaces;
use crate::collect::rdma::{counter_failed, RdmaCollector};

/// (source, device, counter) → value.
pub type Snapshot = BTreeMap<(String, String, String), u64>;

/// Reads every RDMA counter and every interface's byte/packet counters.
pub fn snapshot(sysfs_root: &Path) -> Snapshot {
    let mut out = Snapshot::new();
    if let Ok(mut c) = RdmaCollector::discover(sysfs_root) {
        let inv = c.inventory();
        let s = c.sample();
        for (info, dev) in inv.iter().zip(&s.devices) {
            // An unreadable counter (a placeholder 0) stays out of the snapshot, so
            // that it cannot turn into a delta of its whole value.
            for (name, v) in info.device_counter_names.iter().zip(&dev.values) {
                if counter_failed(&dev.errors, name) {
                    continue;
                }
                out.insert(("rdma".into(), dev.device.clone(), name.clone()), *v);
            }
            for (pinfo, port) in info.ports.iter().zip(&dev.ports) {
                for (name, v) in pinfo.counter_names.iter().zip(&port.values) {
                    if counter_failed(&port.errors, name) {
                        continue;
                    }
                    let d = format!("{}/{}", dev.device, port.port);
                    out.insert(("rdma".into(), d, name.clone()), *v);
                }
            }
        }
    }
    let (ifaces, _) = read_interfaces(sysfs_root);
    for i in ifaces {
        for (k, v) in [
            ("tx_bytes", i.tx_bytes),
            ("rx_bytes", i.rx_bytes),
            ("tx_packets", i.tx_packets),
            ("rx_packets", i.rx_packets),
        ] {
            out.insert(("netdev".into(), i.name.clone(), k.into()), v);
        }
    }
    out
}

/// Counters that moved between two snapshots (a counter that went backwards, a
/// reset, is left out rather than reported as a huge delta).
pub fn deltas(before: &Snapshot, after: &Snapshot) -> Vec<CounterDelta> {
    after
        .iter()
        .filter_map(|(k, &v1)| {
            let v0 = *before.get(k)?;
            (v1 > v0).then(|| CounterDelta {
                source: k.0.clone(),
                device: k.1.clone(),
                counter: k.2.clone(),
                delta: v1 - v0,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::rdma::fixture::{bump_counters, write_p5_tree, P5FixtureOptions};

    #[test]
    fn deltas_show_rdma_counters_that_moved_in_a_fixture_tree() {
        let dir = tempfile::tempdir().expect("tempdir");
        write_p5_tree(dir.path(), &P5FixtureOptions::default()).expect("fixture");
        let a = snapshot(dir.path());
        let dev = a
            .keys()
            .find(|k| k.0 == "rdma" && k.2 == "hw_counters/rdma_write_bytes")
            .map(|k| k.1.split('/').next().unwrap_or_default().to_string())
            .expect("fixture has EFA port counters");
        bump_counters(dir.path(), &dev, Some(1), "rdma_write_bytes", 4096).expect("bump");
        let b = snapshot(dir.path());
        let d = deltas(&a, &b);
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].counter, "hw_counters/rdma_write_bytes");
        assert_eq!(d[0].delta, 4096);
        assert_eq!(d[0].device, format!("{dev}/1"));
    }

    /// A counter file caught mid-rewrite (empty, garbage) before the probe and whole
    /// after it must not show up as a delta of its entire value.
    #[test]
    fn an_unreadable_counter_is_no_delta() {
        let dir = tempfile::tempdir().expect("tempdir");
        write_p5_tree(dir.path(), &P5FixtureOptions::default()).expect("fixture");
        let key = snapshot(dir.path())
            .into_keys()
            .find(|k| k.0 == "rdma" && k.2 == "hw_counters/tx_bytes")
            .expect("fixture has EFA port counters");
        let dev = key.1.split('/').next().unwrap_or_default().to_string();
        let path =
            crate::collect::rdma::fixture::counter_path(dir.path(), &dev, Some(1), "tx_bytes");
        let good = std::fs::read_to_string(&path).expect("counter");
        std::fs::write(&path, "").expect("truncate");
        let a = snapshot(dir.path());
        assert!(!a.contains_key(&key), "an empty counter file is not a 0");
        std::fs::write(&path, good).expect("restore");
        let b = snapshot(dir.path());
        assert!(b.contains_key(&key));
        assert!(deltas(&a, &b).is_empty(), "{:?}", deltas(&a, &b));
    }

    #[test]
    fn a_counter_going_backwards_is_not_a_delta() {
        let k = (
            "netdev".to_string(),
            "eth0".to_string(),
            "tx_bytes".to_string(),
        );
        let a = Snapshot::from([(k.clone(), 10)]);
        let b = Snapshot::from([(k, 5)]);
        assert!(deltas(&a, &b).is_empty());
    }
}
