//! The RDMA collector through the crate's public API on the p5 fixture, with the
//! per-sample cost printed (`cargo test --release --test rdma_fixture -- --nocapture`).

use std::path::Path;
use std::time::Instant;

use servescope_agent::collect::host::netdev::NetdevReader;
use servescope_agent::collect::rdma::fixture::{bump_counters, write_p5_tree, P5FixtureOptions};
use servescope_agent::collect::rdma::{topology, RdmaCollector};

#[test]
fn p5_fixture_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let root: &Path = dir.path();
    write_p5_tree(root, &P5FixtureOptions::default()).unwrap();
    let mut rdma = RdmaCollector::discover(root).unwrap();
    let inv = rdma.inventory();
    assert_eq!(inv.len(), 32);

    let gpus: Vec<(u32, String)> = (0..8)
        .map(|g| (g, format!("00000000:{:02X}:00.0", 0x17 + 0x20 * g)))
        .collect();
    let topo = topology(root, &gpus, &inv);
    assert!(topo.iter().all(|t| t.same_pcie_switch.len() == 4));

    let idx = inv[0].ports[0]
        .counter_names
        .iter()
        .position(|n| n == "hw_counters/rdma_write_bytes")
        .unwrap();
    let first = rdma.sample();
    bump_counters(root, &inv[0].name, Some(1), "rdma_write_bytes", 4096).unwrap();
    let second = rdma.sample();
    assert_eq!(
        second.devices[0].ports[0].values[idx] - first.devices[0].ports[0].values[idx],
        4096
    );

    const N: u32 = 200;
    let t = Instant::now();
    for _ in 0..N {
        let s = rdma.sample();
        assert!(s.devices.iter().all(|d| d.errors.is_empty()));
    }
    let per = t.elapsed() / N;
    let files: usize = inv
        .iter()
        .map(|d| {
            d.device_counter_names.len()
                + d.ports
                    .iter()
                    .map(|p| p.counter_names.len() + 3)
                    .sum::<usize>()
        })
        .sum();
    eprintln!("rdma sample: {per:?} for {files} files (descriptors kept open)");

    let mut net = NetdevReader::new(root);
    let t = Instant::now();
    for _ in 0..N {
        let (r, e) = net.read();
        assert_eq!(r.len(), 33);
        assert!(e.is_empty());
    }
    eprintln!("netdev read: {:?} for 33 interfaces", t.elapsed() / N);

    // The same with every file reopened on each read, for comparison.
    servescope_agent::collect::sysfs::set_keep_open_limit(0);
    let mut reopening = RdmaCollector::discover(root).unwrap();
    let t = Instant::now();
    for _ in 0..N {
        reopening.sample();
    }
    eprintln!("rdma sample: {:?} reopening every file", t.elapsed() / N);
}
