//! GPU ↔ RDMA device affinity from sysfs PCI paths.
//!
//! Rule for "below the same PCIe switch": number the components of a PCI path
//! from the root bus (`pci0000:44` is depth 1, the root port depth 2, the next
//! bridge — a switch's upstream port — depth 3, …). A GPU and an RDMA device
//! share a switch when their paths agree on at least the first
//! [`MIN_SHARED_SWITCH_DEPTH`] (= 3) components, i.e. their deepest common
//! ancestor is a bridge below the root port, and that ancestor is neither of the
//! two devices themselves. Devices that only share the root complex or the root
//! port (depth 1–2) are not matched: traffic between them crosses the root complex.
//! On p5.48xlarge each GPU sits with 4 EFA devices under one switch.
//!
//! "Same NUMA node": both `numa_node` values known and equal; a device reporting
//! -1 (no NUMA information) matches nothing.

use std::fs;
use std::path::Path;

use servescope_proto::v1::{GpuTopology, RdmaDeviceInfo};

use crate::collect::sysfs::parse::{normalize_pci_bus_id, parse_numa_node, pci_path_from_path};
use crate::collect::sysfs::{new_buf, read_attr};

/// Depth of the shallowest common ancestor that counts as a shared PCIe switch.
pub const MIN_SHARED_SWITCH_DEPTH: usize = 3;

/// Number of leading components two PCI paths share.
pub fn common_prefix_len(a: &[String], b: &[String]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// Whether two devices sit below the same PCIe switch (see the module docs).
pub fn shares_pcie_switch(a: &[String], b: &[String]) -> bool {
    let n = common_prefix_len(a, b);
    n >= MIN_SHARED_SWITCH_DEPTH && n < a.len() && n < b.len()
}

/// The pure matching step for one GPU whose PCI path and NUMA node are known.
pub fn match_gpu(
    gpu_index: u32,
    gpu_pci_bus_id: String,
    gpu_pci_path: &[String],
    gpu_numa_node: Option<i32>,
    rdma: &[RdmaDeviceInfo],
) -> GpuTopology {
    let same_pcie_switch = rdma
        .iter()
        .filter(|d| shares_pcie_switch(gpu_pci_path, &d.pci_path))
        .map(|d| d.name.clone())
        .collect();
    let same_numa_node = match gpu_numa_node {
        Some(node) => rdma
            .iter()
            .filter(|d| d.numa_node == Some(node))
            .map(|d| d.name.clone())
            .collect(),
        None => Vec::new(),
    };
    GpuTopology {
        gpu_index,
        gpu_pci_bus_id,
        same_pcie_switch,
        same_numa_node,
    }
}

/// Topology of each GPU (`(index, bus id as NVML prints it)`) against the RDMA
/// devices: resolves `<root>/bus/pci/devices/<addr>` to its PCI path and reads its
/// `numa_node`. A GPU whose bus id does not parse or whose device is not in sysfs
/// gets empty lists (and keeps the bus id as given).
pub fn topology(
    sysfs_root: &Path,
    gpus: &[(u32, String)],
    rdma: &[RdmaDeviceInfo],
) -> Vec<GpuTopology> {
    let mut buf = new_buf();
    gpus.iter()
        .map(|(index, bus_id)| {
            let Ok(addr) = normalize_pci_bus_id(bus_id) else {
                tracing::debug!(gpu = index, bus_id, "topology: unparsable PCI bus id");
                return match_gpu(*index, bus_id.clone(), &[], None, &[]);
            };
            let dev = sysfs_root.join("bus/pci/devices").join(&addr);
            let path = match fs::canonicalize(&dev) {
                Ok(p) => pci_path_from_path(&p),
                Err(e) => {
                    tracing::debug!(
                        gpu = index,
                        path = %dev.display(),
                        error = %e,
                        "topology: GPU not in sysfs"
                    );
                    Vec::new()
                }
            };
            let numa = read_attr(&dev.join("numa_node"), &mut buf)
                .ok()
                .and_then(|raw| parse_numa_node(raw).ok())
                .flatten();
            match_gpu(*index, addr, &path, numa, rdma)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(s: &str) -> Vec<String> {
        s.split('/').map(str::to_owned).collect()
    }

    #[test]
    fn switch_rule() {
        let nic = path("pci0000:44/0000:44:01.0/0000:45:00.0/0000:46:01.0/0000:4f:00.0");
        let gpu = path("pci0000:44/0000:44:01.0/0000:45:00.0/0000:46:05.0/0000:53:00.0");
        let other_root_port = path("pci0000:44/0000:44:03.0/0000:60:00.0");
        let same_root_port_only = path("pci0000:44/0000:44:01.0/0000:47:00.0");
        let flat_vm = path("pci0000:00/0000:00:05.0");
        assert_eq!(common_prefix_len(&nic, &gpu), 3);
        assert!(shares_pcie_switch(&nic, &gpu));
        assert!(!shares_pcie_switch(&nic, &other_root_port));
        assert!(!shares_pcie_switch(&nic, &same_root_port_only));
        assert!(!shares_pcie_switch(
            &flat_vm,
            &path("pci0000:00/0000:00:06.0")
        ));
        // A device is not "below the same switch" as itself or its ancestor.
        assert!(!shares_pcie_switch(&nic, &nic));
        assert!(!shares_pcie_switch(&nic, &nic[..3]));
        assert!(!shares_pcie_switch(&[], &nic));
    }

    #[test]
    fn numa_rule() {
        let dev = |name: &str, numa: Option<i32>| RdmaDeviceInfo {
            name: name.into(),
            numa_node: numa,
            ..Default::default()
        };
        let rdma = [dev("a", Some(0)), dev("b", Some(1)), dev("c", None)];
        let t = match_gpu(0, "x".into(), &[], Some(1), &rdma);
        assert_eq!(t.same_numa_node, ["b"]);
        assert!(t.same_pcie_switch.is_empty());
        assert!(match_gpu(0, "x".into(), &[], None, &rdma)
            .same_numa_node
            .is_empty());
    }
}
