//! Collector tests on the p5 fixture tree and on the real `/sys`.

use std::fs;
use std::path::Path;

use super::fixture::{
    bump_counters, counter_path, p5_layout, read_counter, set_netdev_down, write_p5_tree,
    P5FixtureOptions, EFA_DEVICE_COUNTERS, EFA_PORT_COUNTERS,
};
use super::*;

fn p5() -> (tempfile::TempDir, RdmaCollector) {
    let dir = tempfile::tempdir().unwrap();
    write_p5_tree(dir.path(), &P5FixtureOptions::default()).unwrap();
    let c = RdmaCollector::discover(dir.path()).unwrap();
    (dir, c)
}

fn field_names(errors: &[FieldError]) -> Vec<&str> {
    errors.iter().map(|e| e.field.as_str()).collect()
}

#[test]
fn discovers_the_p5_fixture() {
    let (_dir, c) = p5();
    let layout = p5_layout(&P5FixtureOptions::default()).unwrap();
    let inv = c.inventory();
    assert_eq!(inv.len(), 32);
    assert!(c.notes().is_empty(), "{:?}", c.notes());
    let mut expected: Vec<_> = layout
        .iter()
        .flat_map(|g| g.efa.iter().map(move |e| (e, g.numa_node)))
        .collect();
    expected.sort_by(|a, b| a.0.name.cmp(&b.0.name));
    for (d, (efa, numa)) in inv.iter().zip(&expected) {
        assert_eq!(d.name, efa.name);
        assert_eq!(d.driver, "efa");
        assert_eq!(d.pci_address, efa.pci_address);
        assert_eq!(d.pci_path, efa.pci_path);
        assert_eq!(d.numa_node, Some(*numa));
        assert_eq!(d.device_counter_names.len(), EFA_DEVICE_COUNTERS.len());
        assert!(d.device_counter_names.is_sorted());
        assert!(d
            .device_counter_names
            .iter()
            .any(|n| n == "no_completion_cmds"));
        assert_eq!(d.ports.len(), 1);
        let p = &d.ports[0];
        assert_eq!(p.port, 1);
        assert_eq!(p.state, "ACTIVE");
        assert_eq!(p.phys_state, "LinkUp");
        assert_eq!(p.rate, "100 Gb/sec (4X EDR)");
        assert_eq!(p.link_layer, "Unspecified");
        assert_eq!(p.netdev, efa.netdev);
        assert_eq!(p.counter_names.len(), EFA_PORT_COUNTERS.len());
        assert!(p.counter_names.is_sorted());
        assert!(p
            .counter_names
            .iter()
            .any(|n| n == "hw_counters/rdma_read_bytes"));
        assert!(p.counter_names.iter().all(|n| !n.ends_with("lifespan")));
    }
    // The brief's example layout: group 0's first EFA device.
    let first = inv.iter().find(|d| d.name == "rdmap19s0").unwrap();
    assert_eq!(first.pci_address, "0000:13:00.0");
    assert_eq!(
        first.pci_path,
        [
            "pci0000:10",
            "0000:10:01.0",
            "0000:11:00.0",
            "0000:12:01.0",
            "0000:13:00.0"
        ]
    );
}

#[test]
fn samples_equal_fixture_values_and_follow_bumps() {
    let (dir, mut c) = p5();
    let root = dir.path();
    let inv = c.inventory();
    for round in 0..3 {
        let s = c.sample();
        assert_eq!(s.devices.len(), 32);
        for (d, info) in s.devices.iter().zip(&inv) {
            assert_eq!(d.device, info.name);
            assert!(d.errors.is_empty(), "{:?}", d.errors);
            for (v, n) in d.values.iter().zip(&info.device_counter_names) {
                assert_eq!(*v, read_counter(root, &d.device, None, n).unwrap());
            }
            let p = &d.ports[0];
            assert!(p.errors.is_empty(), "{:?}", p.errors);
            assert_eq!(p.values.len(), info.ports[0].counter_names.len());
            for (v, n) in p.values.iter().zip(&info.ports[0].counter_names) {
                assert_eq!(*v, read_counter(root, &d.device, Some(1), n).unwrap());
            }
            assert_eq!(p.state, "ACTIVE");
            assert_eq!(p.netdev_operstate, "up");
            assert_eq!(p.netdev_carrier, Some(true));
        }
        // Advance a port and a device counter; the next round checks the new values.
        let before = read_counter(root, "rdmap19s0", Some(1), "rdma_read_bytes").unwrap();
        let after = bump_counters(root, "rdmap19s0", Some(1), "rdma_read_bytes", 1 << 20).unwrap();
        assert_eq!(after, before + (1 << 20), "round {round}");
        bump_counters(root, "rdmap19s0", None, "completed_cmds", 3).unwrap();
    }
    let dev = inv.iter().position(|d| d.name == "rdmap19s0").unwrap();
    let idx = inv[dev].ports[0]
        .counter_names
        .iter()
        .position(|n| n == "hw_counters/rdma_read_bytes")
        .unwrap();
    let v1 = c.sample().devices[dev].ports[0].values[idx];
    bump_counters(root, "rdmap19s0", Some(1), "hw_counters/rdma_read_bytes", 7).unwrap();
    let v2 = c.sample().devices[dev].ports[0].values[idx];
    assert_eq!(v2 - v1, 7);
}

#[test]
fn device_counters_repeat_marked_stale_between_their_reads() {
    let dir = tempfile::tempdir().unwrap();
    write_p5_tree(dir.path(), &P5FixtureOptions::default()).unwrap();
    let root = dir.path();
    let mut c = RdmaCollector::discover(root)
        .unwrap()
        .with_device_counters_every(DEVICE_COUNTERS_EVERY);
    let inv = c.inventory();
    let dev = inv.iter().position(|d| d.name == "rdmap19s0").unwrap();
    let k = |names: &[String], n: &str| names.iter().position(|x| x == n).unwrap();
    let cmds = k(&inv[dev].device_counter_names, "completed_cmds");
    let bytes = k(
        &inv[dev].ports[0].counter_names,
        "hw_counters/rdma_read_bytes",
    );
    let mut every = RdmaCollector::discover(root).unwrap();
    let t0 = Instant::now();
    let first = c.sample_at(t0).devices.swap_remove(dev);
    assert!(!first.values_stale);
    bump_counters(root, "rdmap19s0", None, "completed_cmds", 3).unwrap();
    bump_counters(root, "rdmap19s0", Some(1), "rdma_read_bytes", 5).unwrap();
    // Within the cadence: the device values repeat, marked stale; ports are fresh.
    let mid = c
        .sample_at(t0 + Duration::from_secs(9))
        .devices
        .swap_remove(dev);
    assert!(mid.values_stale);
    assert_eq!(mid.values, first.values);
    assert_eq!(mid.ports[0].values[bytes], first.ports[0].values[bytes] + 5);
    // Due again: read afresh.
    let due = c
        .sample_at(t0 + DEVICE_COUNTERS_EVERY)
        .devices
        .swap_remove(dev);
    assert!(!due.values_stale);
    assert_eq!(due.values[cmds], first.values[cmds] + 3);
    // A collector without a cadence (the probe's before/after reads) reads every time.
    assert!(!every.sample_at(t0).devices[dev].values_stale);
    assert!(!every.sample_at(t0).devices[dev].values_stale);
}

#[test]
fn bad_counters_are_field_errors_and_others_still_read() {
    let (dir, mut c) = p5();
    let root = dir.path();
    let dev = "rdmap52s0";
    fs::remove_file(counter_path(root, dev, Some(1), "tx_bytes")).unwrap();
    fs::write(counter_path(root, dev, Some(1), "rx_pkts"), "abc\n").unwrap();
    fs::write(
        counter_path(root, dev, Some(1), "retrans_pkts"),
        vec![b'7'; 1 << 20],
    )
    .unwrap();
    fs::write(counter_path(root, dev, None, "cmds_err"), "").unwrap();
    let s = c.sample();
    for d in &s.devices {
        if d.device != dev {
            assert!(d.errors.is_empty() && d.ports[0].errors.is_empty());
        }
    }
    let d = s.devices.iter().find(|d| d.device == dev).unwrap();
    let info = c.inventory().into_iter().find(|i| i.name == dev).unwrap();
    let port = &d.ports[0];
    assert_eq!(
        field_names(&port.errors),
        [
            "rdmap52s0/1/hw_counters/retrans_pkts",
            "rdmap52s0/1/hw_counters/rx_pkts",
            "rdmap52s0/1/hw_counters/tx_bytes",
        ]
    );
    let msgs: Vec<&str> = port.errors.iter().map(|e| e.error.as_str()).collect();
    assert!(msgs[0].contains("exceeds 4096 bytes"), "{msgs:?}");
    assert!(msgs[1].contains("\"abc\""), "{msgs:?}");
    assert!(msgs[2].contains("No such file"), "{msgs:?}");
    assert_eq!(field_names(&d.errors), ["rdmap52s0/hw_counters/cmds_err"]);
    assert!(d.errors[0].error.contains("empty"));
    for (v, n) in port.values.iter().zip(&info.ports[0].counter_names) {
        if [
            "hw_counters/tx_bytes",
            "hw_counters/rx_pkts",
            "hw_counters/retrans_pkts",
        ]
        .contains(&n.as_str())
        {
            assert_eq!(*v, 0, "{n}");
        } else {
            assert_eq!(*v, read_counter(root, dev, Some(1), n).unwrap(), "{n}");
        }
    }
    assert_eq!(port.state, "ACTIVE");
    assert_eq!(port.netdev_operstate, "up");
}

#[test]
fn netdev_down_is_operstate_down_and_no_carrier() {
    let (dir, mut c) = p5();
    set_netdev_down(dir.path(), "enp19s0").unwrap();
    let s = c.sample();
    let p = &s
        .devices
        .iter()
        .find(|d| d.device == "rdmap19s0")
        .unwrap()
        .ports[0];
    assert_eq!(p.state, "ACTIVE", "EFA always says ACTIVE");
    assert_eq!(p.netdev_operstate, "down");
    assert_eq!(p.netdev_carrier, None);
    // The fixture cannot make a file answer EINVAL, so its missing carrier is an
    // error; a real kernel's EINVAL is None without error (tested in `collect::sysfs`).
    assert_eq!(
        field_names(&p.errors),
        ["rdmap19s0/1/netdev/enp19s0/carrier"]
    );
}

#[test]
fn topology_on_the_fixture() {
    let (dir, c) = p5();
    let layout = p5_layout(&P5FixtureOptions::default()).unwrap();
    let inv = c.inventory();
    // As NVML prints them: 8-digit domain, upper case.
    let gpus: Vec<(u32, String)> = layout
        .iter()
        .enumerate()
        .map(|(i, g)| {
            (
                i as u32,
                format!("0000{}", g.gpu_pci_address.to_uppercase()),
            )
        })
        .collect();
    let topo = topology(dir.path(), &gpus, &inv);
    assert_eq!(topo.len(), 8);
    for (t, g) in topo.iter().zip(&layout) {
        assert_eq!(t.gpu_pci_bus_id, g.gpu_pci_address);
        let mine: Vec<&str> = g.efa.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(t.same_pcie_switch, mine);
        assert_eq!(t.same_numa_node.len(), 16);
        for name in &t.same_numa_node {
            let d = inv.iter().find(|d| &d.name == name).unwrap();
            assert_eq!(d.numa_node, Some(g.numa_node));
        }
    }
    assert_eq!(c.gpu_topology(&gpus), topo);
    // Unknown or unparsable GPUs get empty lists.
    let odd = topology(
        dir.path(),
        &[(9, "0000:ee:00.0".into()), (10, "garbage".into())],
        &inv,
    );
    assert!(odd
        .iter()
        .all(|t| t.same_pcie_switch.is_empty() && t.same_numa_node.is_empty()));
    assert_eq!(odd[1].gpu_pci_bus_id, "garbage");
}

#[test]
fn small_fixture_options() {
    let dir = tempfile::tempdir().unwrap();
    let opts = P5FixtureOptions {
        groups: 2,
        efa_per_group: 1,
        seed: 42,
    };
    write_p5_tree(dir.path(), &opts).unwrap();
    let mut c = RdmaCollector::discover(dir.path()).unwrap();
    assert_eq!(c.inventory().len(), 2);
    let topo = c.gpu_topology(&[(0, "0000:14:00.0".into()), (1, "0000:34:00.0".into())]);
    assert_eq!(topo[0].same_pcie_switch, ["rdmap19s0"]);
    assert_eq!(topo[1].same_pcie_switch, ["rdmap51s0"]);
    assert_eq!(topo[1].same_numa_node, ["rdmap51s0"]);
    assert!(c
        .sample()
        .devices
        .iter()
        .all(|d| d.ports[0].errors.is_empty()));
    assert!(p5_layout(&P5FixtureOptions { groups: 9, ..opts }).is_err());
}

#[test]
fn missing_class_infiniband_is_zero_devices_and_a_note() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = RdmaCollector::discover(dir.path()).unwrap();
    assert!(c.inventory().is_empty());
    assert_eq!(c.notes().len(), 1);
    assert!(c.notes()[0].contains("class/infiniband"), "{:?}", c.notes());
    assert!(c.sample().devices.is_empty());
    assert!(matches!(
        RdmaCollector::discover(&dir.path().join("nope")),
        Err(RdmaError::SysfsRoot { .. })
    ));
}

#[test]
fn broken_device_link_is_a_note() {
    let (dir, c0) = p5();
    drop(c0);
    std::os::unix::fs::symlink(
        "../../devices/nowhere",
        dir.path().join("class/infiniband/zz0"),
    )
    .unwrap();
    let c = RdmaCollector::discover(dir.path()).unwrap();
    assert_eq!(c.inventory().len(), 32);
    assert!(
        c.notes().iter().any(|n| n.contains("zz0")),
        "{:?}",
        c.notes()
    );
}

#[test]
fn real_sysfs_does_not_panic() {
    let root = Path::new("/sys");
    match RdmaCollector::discover(root) {
        Ok(mut c) => {
            let inv = c.inventory();
            let s = c.sample();
            assert_eq!(s.devices.len(), inv.len());
            for (d, i) in s.devices.iter().zip(&inv) {
                assert_eq!(d.values.len(), i.device_counter_names.len());
                for (p, pi) in d.ports.iter().zip(&i.ports) {
                    assert_eq!(p.values.len(), pi.counter_names.len());
                }
            }
            // SERVESCOPE_TEST_GPU_BUS_ID: a real GPU's NVML bus id, to print its topology.
            let bus_id = std::env::var("SERVESCOPE_TEST_GPU_BUS_ID")
                .unwrap_or_else(|_| "00000000:00:00.0".into());
            eprintln!("real /sys topology: {:?}", c.gpu_topology(&[(0, bus_id)]));
            eprintln!(
                "real /sys: {} RDMA devices, notes {:?}",
                inv.len(),
                c.notes()
            );
        }
        Err(e) => eprintln!("real /sys: {e}"),
    }
}
