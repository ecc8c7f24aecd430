//! A p5.48xlarge-like sysfs tree on disk, for tests, benchmarks, the demo and the
//! self-test (feature `fixture`).
//!
//! Layout (defaults: 8 groups × 4 EFA devices), group `g` with `B = 0x10 + 0x20·g`:
//!
//! ```text
//! devices/pci0000:B/0000:B:01.0                      root port
//!   0000:B+1:00.0                                    PCIe switch upstream port
//!     0000:B+2:0i+1.0 / 0000:E:00.0 (E = B+3+i)      EFA i: rdmap<E>s0, netdev enp<E>s0
//!     0000:B+2:0n+1.0 / 0000:G:00.0                  the group's GPU (n = EFA per group)
//! ```
//!
//! Groups in the first half are on NUMA node 0, the rest on node 1. Links under
//! `class/infiniband`, `class/net`, `bus/pci/devices` and the `device`/`driver`
//! links are relative, as the kernel makes them. Files are rewritten in place by
//! the helpers (a collector keeping descriptors open sees the change).

use std::fs;
use std::io;
use std::os::unix::fs::symlink;
use std::path::{Component, Path, PathBuf};

use crate::collect::sysfs::NETDEV_STAT_NAMES;

/// EFA port counters (`ports/1/hw_counters/`, kernel `EFA_DEFINE_PORT_STATS`),
/// newest driver, with the SRD network stats; `lifespan` is written besides.
pub const EFA_PORT_COUNTERS: &[&str] = &[
    "tx_bytes",
    "tx_pkts",
    "rx_bytes",
    "rx_pkts",
    "rx_drops",
    "send_bytes",
    "send_wrs",
    "recv_bytes",
    "recv_wrs",
    "rdma_read_wrs",
    "rdma_read_bytes",
    "rdma_read_wr_err",
    "rdma_read_resp_bytes",
    "rdma_write_wrs",
    "rdma_write_bytes",
    "rdma_write_wr_err",
    "rdma_write_recv_bytes",
    "retrans_bytes",
    "retrans_pkts",
    "retrans_timeout_events",
    "unresponsive_remote_events",
    "impaired_remote_conn_events",
];

/// EFA device counters (`<dev>/hw_counters/`, kernel `EFA_DEFINE_DEVICE_STATS`).
pub const EFA_DEVICE_COUNTERS: &[&str] = &[
    "submitted_cmds",
    "completed_cmds",
    "cmds_err",
    "no_completion_cmds",
    "keep_alive_rcvd",
    "alloc_pd_err",
    "create_qp_err",
    "create_cq_err",
    "reg_mr_err",
    "alloc_ucontext_err",
    "create_ah_err",
    "mmap_err",
];

/// Writes the smallest tree (one group with one EFA device; counters seeded from
/// `seed`) under `root`; the EFA device's name.
pub fn write_one_efa_tree(root: &Path, seed: u64) -> io::Result<String> {
    let opts = P5FixtureOptions {
        groups: 1,
        efa_per_group: 1,
        seed,
    };
    write_p5_tree(root, &opts)?;
    let layout = p5_layout(&opts)?;
    let efa = layout.first().and_then(|g| g.efa.first());
    efa.map(|e| e.name.clone())
        .ok_or_else(|| io::Error::other("p5 fixture: no EFA device laid out"))
}

/// Shape of the fixture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct P5FixtureOptions {
    /// PCIe switch groups, each with one GPU (1–8; p5: 8).
    pub groups: usize,
    /// EFA devices per group (0–28; p5: 4).
    pub efa_per_group: usize,
    /// Seed for the counters' starting values.
    pub seed: u64,
}

impl Default for P5FixtureOptions {
    fn default() -> Self {
        P5FixtureOptions {
            groups: 8,
            efa_per_group: 4,
            seed: 1,
        }
    }
}

/// One EFA device of the fixture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixtureEfa {
    pub name: String,
    pub pci_address: String,
    pub netdev: String,
    pub pci_path: Vec<String>,
}

/// One PCIe switch group of the fixture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixtureGroup {
    pub numa_node: i32,
    pub gpu_pci_address: String,
    pub gpu_pci_path: Vec<String>,
    pub efa: Vec<FixtureEfa>,
}

fn pci(bus: usize, dev: usize) -> String {
    format!("0000:{bus:02x}:{dev:02x}.0")
}

/// What [`write_p5_tree`] writes, without touching the disk.
pub fn p5_layout(opts: &P5FixtureOptions) -> io::Result<Vec<FixtureGroup>> {
    if !(1..=8).contains(&opts.groups) || opts.efa_per_group > 28 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "p5 fixture: groups must be 1..=8 and efa_per_group 0..=28",
        ));
    }
    let groups = (0..opts.groups).map(|g| {
        let b = 0x10 + 0x20 * g;
        let switch = vec![format!("pci0000:{b:02x}"), pci(b, 1), pci(b + 1, 0)];
        let below = |i: usize| {
            let mut p = switch.clone();
            p.push(pci(b + 2, i + 1));
            p.push(pci(b + 3 + i, 0));
            p
        };
        let efa = (0..opts.efa_per_group)
            .map(|i| {
                let bus = b + 3 + i;
                FixtureEfa {
                    name: format!("rdmap{bus}s0"),
                    pci_address: pci(bus, 0),
                    netdev: format!("enp{bus}s0"),
                    pci_path: below(i),
                }
            })
            .collect();
        let gpu_pci_path = below(opts.efa_per_group);
        FixtureGroup {
            numa_node: if g < opts.groups.div_ceil(2) { 0 } else { 1 },
            gpu_pci_address: gpu_pci_path.last().cloned().unwrap_or_default(),
            gpu_pci_path,
            efa,
        }
    });
    Ok(groups.collect())
}

/// Deterministic starting value of a counter (xorshift over seed and names).
fn start_value(seed: u64, owner: &str, name: &str) -> u64 {
    let mut x = seed ^ 0xcbf2_9ce4_8422_2325;
    for b in owner.bytes().chain([b'/']).chain(name.bytes()) {
        x = (x ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    let range = if name.contains("err") || name.contains("drop") || name.contains("events") {
        4
    } else if name.contains("bytes") {
        1 << 40
    } else {
        1 << 30
    };
    x % range
}

/// `"../.."`-style path from directory `from` to `to` (both relative to the root).
fn relative(from: &Path, to: &Path) -> PathBuf {
    let f: Vec<Component> = from.components().collect();
    let t: Vec<Component> = to.components().collect();
    let common = f.iter().zip(&t).take_while(|(a, b)| a == b).count();
    let mut out = PathBuf::new();
    for _ in common..f.len() {
        out.push("..");
    }
    for c in &t[common..] {
        out.push(c);
    }
    out
}

fn link(root: &Path, at: &Path, target: &Path) -> io::Result<()> {
    let parent = at.parent().unwrap_or(Path::new(""));
    fs::create_dir_all(root.join(parent))?;
    symlink(relative(parent, target), root.join(at))
}

fn attr(dir: &Path, name: &str, value: impl std::fmt::Display) -> io::Result<()> {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    fs::write(path, format!("{value}\n"))
}

fn pci_function(root: &Path, rel: &Path, numa: i32, ids: (&str, &str, &str)) -> io::Result<()> {
    let dir = root.join(rel);
    attr(&dir, "numa_node", numa)?;
    attr(&dir, "vendor", ids.0)?;
    attr(&dir, "device", ids.1)?;
    attr(&dir, "class", ids.2)?;
    let name = rel.file_name().unwrap_or_default();
    link(root, &Path::new("bus/pci/devices").join(name), rel)
}

fn netdev(root: &Path, dev_rel: &Path, name: &str, seed: u64, operstate: &str) -> io::Result<()> {
    let rel = dev_rel.join(name);
    let dir = root.join(&rel);
    attr(&dir, "operstate", operstate)?;
    attr(&dir, "carrier", 1)?;
    attr(&dir, "mtu", 9001)?;
    for stat in NETDEV_STAT_NAMES {
        attr(&dir.join("statistics"), stat, start_value(seed, name, stat))?;
    }
    link(root, &Path::new("class/net").join(name), &rel)
}

/// Writes the tree under `root` (which should be empty).
pub fn write_p5_tree(root: &Path, opts: &P5FixtureOptions) -> io::Result<()> {
    const BRIDGE: (&str, &str, &str) = ("0x1d0f", "0x0200", "0x060400");
    for group in p5_layout(opts)? {
        let numa = group.numa_node;
        let mut rel = PathBuf::from("devices");
        for (depth, comp) in group.gpu_pci_path.iter().enumerate() {
            rel.push(comp);
            if depth == 0 {
                fs::create_dir_all(root.join(&rel))?;
            } else if depth < group.gpu_pci_path.len() - 1 {
                pci_function(root, &rel, numa, BRIDGE)?;
            }
        }
        pci_function(root, &rel, numa, ("0x10de", "0x2330", "0x030200"))?;
        link(
            root,
            &rel.join("driver"),
            Path::new("bus/pci/drivers/nvidia"),
        )?;
        for efa in &group.efa {
            let dev_rel: PathBuf = std::iter::once("devices")
                .chain(efa.pci_path.iter().map(String::as_str))
                .collect();
            // The switch's downstream port above this EFA device.
            if let Some(port) = dev_rel.parent() {
                pci_function(root, port, numa, BRIDGE)?;
            }
            pci_function(root, &dev_rel, numa, ("0x1d0f", "0xefa1", "0x020000"))?;
            link(
                root,
                &dev_rel.join("driver"),
                Path::new("bus/pci/drivers/efa"),
            )?;
            netdev(root, &dev_rel.join("net"), &efa.netdev, opts.seed, "up")?;
            link(
                root,
                &dev_rel.join("net").join(&efa.netdev).join("device"),
                &dev_rel,
            )?;
            let ib_rel = dev_rel.join("infiniband").join(&efa.name);
            let ib = root.join(&ib_rel);
            link(root, &ib_rel.join("device"), &dev_rel)?;
            attr(&ib, "node_type", "1: CA")?;
            attr(&ib, "hw_counters/lifespan", 10)?;
            for c in EFA_DEVICE_COUNTERS {
                attr(
                    &ib.join("hw_counters"),
                    c,
                    start_value(opts.seed, &efa.name, c),
                )?;
            }
            let port = ib.join("ports/1");
            attr(&port, "state", "4: ACTIVE")?;
            attr(&port, "phys_state", "5: LinkUp")?;
            attr(&port, "rate", "100 Gb/sec (4X EDR)")?;
            attr(&port, "link_layer", "Unspecified")?;
            attr(&port, "hw_counters/lifespan", 10)?;
            let owner = format!("{}/1", efa.name);
            for c in EFA_PORT_COUNTERS {
                attr(
                    &port.join("hw_counters"),
                    c,
                    start_value(opts.seed, &owner, c),
                )?;
            }
            link(
                root,
                &Path::new("class/infiniband").join(&efa.name),
                &ib_rel,
            )?;
        }
    }
    fs::create_dir_all(root.join("bus/pci/drivers/efa"))?;
    fs::create_dir_all(root.join("bus/pci/drivers/nvidia"))?;
    netdev(
        root,
        Path::new("devices/virtual/net"),
        "lo",
        opts.seed,
        "unknown",
    )
}

/// Path of a counter: `port` `None` is device-level; a bare `name` means
/// `hw_counters/<name>`, or pass `"counters/<name>"`.
pub fn counter_path(root: &Path, device: &str, port: Option<u32>, name: &str) -> PathBuf {
    let mut p = root.join("class/infiniband").join(device);
    if let Some(port) = port {
        p.push("ports");
        p.push(port.to_string());
    }
    if !name.contains('/') {
        p.push("hw_counters");
    }
    p.join(name)
}

/// The current value of a fixture counter.
pub fn read_counter(root: &Path, device: &str, port: Option<u32>, name: &str) -> io::Result<u64> {
    let text = fs::read_to_string(counter_path(root, device, port, name))?;
    text.trim()
        .parse()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Advances a counter by `delta` (in place) and returns its new value.
pub fn bump_counters(
    root: &Path,
    device: &str,
    port: Option<u32>,
    name: &str,
    delta: u64,
) -> io::Result<u64> {
    let new = read_counter(root, device, port, name)?
        .checked_add(delta)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "counter overflow"))?;
    fs::write(counter_path(root, device, port, name), format!("{new}\n"))?;
    Ok(new)
}

/// Takes an interface down: `operstate` "down" and no `carrier` file (a real
/// kernel answers EINVAL on reading it; a regular file cannot).
pub fn set_netdev_down(root: &Path, iface: &str) -> io::Result<()> {
    let dir = root.join("class/net").join(iface);
    fs::write(dir.join("operstate"), "down\n")?;
    fs::remove_file(dir.join("carrier"))
}

/// Takes an RDMA port's link down (`up` false: `state` "1: DOWN", `phys_state`
/// "3: Disabled") or brings it back ("4: ACTIVE", "5: LinkUp"), in place. The
/// seeded fault `servescope diagnose` names `nic_link_down` (twice down and up:
/// `nic_link_flapping`); tests and `servescope selftest` drive it.
pub fn set_port_link(root: &Path, device: &str, port: u32, up: bool) -> io::Result<()> {
    let dir = root
        .join("class/infiniband")
        .join(device)
        .join("ports")
        .join(port.to_string());
    let (state, phys) = if up {
        ("4: ACTIVE", "5: LinkUp")
    } else {
        ("1: DOWN", "3: Disabled")
    };
    fs::write(dir.join("state"), format!("{state}\n"))?;
    fs::write(dir.join("phys_state"), format!("{phys}\n"))
}

/// Raises an EFA port's retransmit counters as a lossy link does: `packets` more
/// `retrans_pkts` (4 KiB each in `retrans_bytes`) and one more
/// `retrans_timeout_events`. The seeded fault `servescope diagnose` names
/// `rdma_retransmits_rising`.
pub fn raise_retransmits(root: &Path, device: &str, port: u32, packets: u64) -> io::Result<()> {
    bump_counters(root, device, Some(port), "retrans_pkts", packets)?;
    bump_counters(
        root,
        device,
        Some(port),
        "retrans_bytes",
        packets.saturating_mul(4096),
    )?;
    bump_counters(root, device, Some(port), "retrans_timeout_events", 1)?;
    Ok(())
}
