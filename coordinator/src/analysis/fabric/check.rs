//! `servescope fabric check`: judges one node's fabric facts (its inventory and its
//! FabricCheck answer) and says what is wrong, with evidence and a fix. The rules
//! are the failures seen in the field on EFA nodes:
//! UCX without EFA support falling back to TCP, the NIXL wheel's bundled libfabric,
//! debug logging left on, RMA forced into emulation, a NIC whose link is down.

use std::fmt;

use servescope_proto::v1::{FabricCheckResponse, Inventory};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Info,
    Warn,
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Info => "info",
            Severity::Warn => "WARN",
            Severity::Error => "ERROR",
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub severity: Severity,
    pub title: String,
    pub evidence: String,
    pub fix: String,
}

pub(super) fn f(
    sev: Severity,
    title: impl Into<String>,
    evidence: impl Into<String>,
    fix: impl Into<String>,
) -> Finding {
    Finding {
        severity: sev,
        title: title.into(),
        evidence: evidence.into(),
        fix: fix.into(),
    }
}

/// "1.17" / "libfabric 1.22" / "1.16.0" → (major, minor).
pub fn version_of(s: &str) -> Option<(u32, u32)> {
    let start = s.find(|c: char| c.is_ascii_digit())?;
    let mut it = s[start..]
        .split(|c: char| !c.is_ascii_digit())
        .filter(|p| !p.is_empty())
        .map(|p| p.parse::<u32>().ok());
    Some((it.next()??, it.next()??))
}

/// The version at the end of a library's detail line (`… (1.22.0)`).
fn detail_version(detail: &str) -> Option<(u32, u32)> {
    version_of(detail.rsplit('(').next().unwrap_or(""))
}

/// Whether a library loaded; when it did not, a finding that says so with how to
/// install it.
fn loadable(
    out: &mut Vec<Finding>,
    available: bool,
    name: &str,
    detail: &str,
    install: &str,
) -> bool {
    if !available {
        out.push(f(
            Severity::Warn,
            format!("{name} not loadable"),
            detail,
            install,
        ));
    }
    available
}

fn is_efa(inv: &Inventory) -> Vec<String> {
    inv.rdma_devices
        .iter()
        .filter(|d| d.driver == "efa" || d.name.starts_with("rdmap"))
        .map(|d| d.name.clone())
        .collect()
}

/// Every finding for one node, most severe first.
pub fn judge(inv: &Inventory, c: &FabricCheckResponse) -> Vec<Finding> {
    use Severity::*;
    let mut out = Vec::new();
    let efa = is_efa(inv);
    let lf = c.libfabric.clone().unwrap_or_default();
    let ucx = c.ucx.clone().unwrap_or_default();

    // Libraries.
    if loadable(
        &mut out,
        lf.available,
        "libfabric",
        &lf.detail,
        "install libfabric (on EFA nodes: the AWS EFA installer, /opt/amazon/efa)",
    ) {
        if !efa.is_empty() && !lf.detail.contains("/opt/amazon/efa") {
            out.push(f(Error, "libfabric is not the EFA installer's copy", lf.detail.clone(), "point LD_LIBRARY_PATH at /opt/amazon/efa/lib (the system or wheel copy may lack the efa provider or crash on it)"));
        }
        if let Some(v) = detail_version(&lf.detail) {
            if v < (1, 21) {
                out.push(f(Warn, format!("libfabric {}.{} is older than 1.21", v.0, v.1), lf.detail.clone(), "NIXL's libfabric backend needs ≥ 1.21: upgrade (EFA installer ships a current one)"));
            }
        }
    }
    let has_efa_prov = c
        .providers
        .iter()
        .any(|p| p.provider.split(';').next() == Some("efa"));
    if !efa.is_empty() && lf.available && !has_efa_prov {
        out.push(f(
            Error,
            "EFA devices present but libfabric offers no `efa` provider",
            format!(
                "devices: {}; providers: {}",
                efa.join(", "),
                provider_names(c)
            ),
            "use the EFA installer's libfabric (/opt/amazon/efa/lib); check `fi_info -p efa`",
        ));
    }
    if has_efa_prov {
        out.push(f(
            Info,
            "libfabric offers the efa provider",
            provider_names(c),
            "",
        ));
    } else if !c.providers.is_empty() {
        out.push(f(Info, "libfabric providers", provider_names(c), ""));
    }
    if !c.libfabric_error.is_empty() {
        out.push(f(
            Warn,
            "fi_getinfo failed",
            c.libfabric_error.clone(),
            "see FI_LOG_LEVEL=warn output",
        ));
    }
    let ucx_loads = loadable(
        &mut out,
        ucx.available,
        "UCX",
        &ucx.detail,
        "install UCX (≥ 1.19 for EFA/SRD)",
    );
    if let Some(v) = detail_version(&ucx.detail).filter(|_| ucx_loads) {
        if !efa.is_empty() && v < (1, 19) {
            out.push(f(Error, format!("UCX {}.{} has no EFA transport: UCX traffic will use TCP", v.0, v.1), ucx.detail.clone(), "UCX ≥ 1.19 adds the EFA SRD transport (1.20 adds RMA write); or use NIXL's libfabric backend"));
        }
    }

    // Devices and links.
    if efa.is_empty() {
        out.push(f(
            Info,
            "no EFA devices on this node",
            format!("{} RDMA device(s)", inv.rdma_devices.len()),
            "fabric traffic here is TCP or shared memory",
        ));
    }
    if let Some(r) = &c.rdma {
        for d in &r.devices {
            for p in &d.ports {
                if p.netdev_carrier == Some(false) || p.netdev_operstate == "down" {
                    out.push(f(Error, format!("{} port {}: its network interface is down", d.device, p.port), format!("port state {} (the EFA driver always says ACTIVE), netdev operstate {}, carrier {:?}", p.state, p.netdev_operstate, p.netdev_carrier), "check the ENA interface / cabling; this NIC carries nothing"));
                }
            }
        }
    }
    for t in &inv.topology {
        if !efa.is_empty() && t.same_pcie_switch.is_empty() {
            out.push(f(Warn, format!("GPU {} has no RDMA device on its PCIe switch", t.gpu_index), format!("GPU {}; same NUMA node: [{}]", t.gpu_pci_bus_id, t.same_numa_node.join(", ")), "GPUDirect RDMA crosses the CPU root complex: pin NICs per GPU (FI_EFA_IFACE / UCX_NET_DEVICES)"));
        }
    }

    // Serving processes.
    for p in &c.processes {
        let who = format!(
            "pid {} ({})",
            p.pid,
            p.cmdline.chars().take(80).collect::<String>()
        );
        if !p.env_error.is_empty() {
            out.push(f(
                Info,
                format!("{who}: environment not readable"),
                p.env_error.clone(),
                "run the agent as root to read /proc/<pid>/environ",
            ));
        }
        let get = |k: &str| p.env.get(k).map(String::as_str);
        let lower = |k: &str| get(k).map(str::to_ascii_lowercase);
        for k in [
            "FI_LOG_LEVEL",
            "NIXL_LOG_LEVEL",
            "UCX_LOG_LEVEL",
            "NCCL_DEBUG",
        ] {
            if let Some(v) = lower(k) {
                if matches!(
                    v.as_str(),
                    "debug" | "trace" | "info" | "data" | "req" | "func" | "poll"
                ) {
                    out.push(f(Warn, format!("{who}: {k}={v}"), format!("{k}={}", get(k).unwrap_or_default()), format!("debug logging costs 5–35× on the data path: unset {k} or set it to warn")));
                }
            }
        }
        if let Some(tls) = get("UCX_TLS") {
            let t = tls.to_ascii_lowercase();
            let fast = [
                "srd", "rc", "dc", "ud", "ib", "all", "cuda_ipc", "sm", "shm", "posix", "cma",
            ];
            if t.split(',').any(|x| x.trim() == "tcp")
                && !t
                    .split(',')
                    .any(|x| fast.contains(&x.trim().trim_start_matches('^')))
            {
                out.push(f(Error, format!("{who}: UCX restricted to TCP"), format!("UCX_TLS={tls}"), "KV transfers over TCP make TTFT ~100× worse: allow srd (EFA, UCX ≥ 1.19) or rc/dc (InfiniBand)"));
            }
        }
        if let Some(v) = get("FI_PROVIDER") {
            if matches!(v, "tcp" | "sockets" | "udp" | "tcp;ofi_rxm") && !efa.is_empty() {
                out.push(f(
                    Error,
                    format!("{who}: FI_PROVIDER={v} on an EFA node"),
                    format!("FI_PROVIDER={v}"),
                    "unset FI_PROVIDER or set it to efa",
                ));
            }
        }
        if get("FI_EFA_USE_DEVICE_RDMA") == Some("0") {
            out.push(f(
                Warn,
                format!("{who}: FI_EFA_USE_DEVICE_RDMA=0"),
                "FI_EFA_USE_DEVICE_RDMA=0",
                "RMA is emulated in software: unset it (p5 supports device RDMA)",
            ));
        }
        if get("FI_HMEM_DISABLE_P2P") == Some("1") {
            out.push(f(
                Warn,
                format!("{who}: FI_HMEM_DISABLE_P2P=1"),
                "FI_HMEM_DISABLE_P2P=1",
                "GPU memory is staged through host copies: unset it",
            ));
        }
        for lib in &p.loaded_libs {
            if lib.contains("libfabric")
                && (lib.contains("site-packages") || lib.contains(".libs/"))
            {
                out.push(f(Error, format!("{who}: uses a wheel-bundled libfabric"), lib.clone(), "the libfabric bundled in the NIXL wheel segfaults on EFA: preload /opt/amazon/efa/lib/libfabric.so.1 (LD_PRELOAD or LD_LIBRARY_PATH)"));
            }
        }
        if !p.loaded_libs.is_empty() {
            out.push(f(
                Info,
                format!("{who}: fabric libraries mapped"),
                p.loaded_libs.join(", "),
                "",
            ));
        }
    }
    out.extend(super::kv_check::judge(&efa, c));
    out.sort_by_key(|f| std::cmp::Reverse(f.severity));
    out
}

fn provider_names(c: &FabricCheckResponse) -> String {
    let mut v: Vec<&str> = c.providers.iter().map(|p| p.provider.as_str()).collect();
    v.sort_unstable();
    v.dedup();
    v.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use servescope_proto::v1::{Availability, FabricProvider, RdmaDeviceInfo, ServingProcess};

    fn avail(d: &str) -> Option<Availability> {
        Some(Availability {
            available: true,
            detail: d.into(),
        })
    }

    #[test]
    fn efa_node_with_system_libfabric_tcp_ucx_and_debug_logging() {
        let inv = Inventory {
            rdma_devices: vec![RdmaDeviceInfo {
                name: "rdmap79s0".into(),
                driver: "efa".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let c = FabricCheckResponse {
            libfabric: avail("libfabric.so.1 (libfabric 1.17)"),
            ucx: avail("libucp.so.0 (UCX 1.16.0)"),
            providers: vec![FabricProvider {
                provider: "tcp;ofi_rxm".into(),
                ..Default::default()
            }],
            processes: vec![ServingProcess {
                pid: 7,
                cmdline: "python -m vllm serve".into(),
                env: [
                    ("FI_LOG_LEVEL".to_string(), "debug".to_string()),
                    ("UCX_TLS".to_string(), "tcp".to_string()),
                ]
                .into(),
                loaded_libs: vec!["/v/site-packages/.nixl.mesonpy.libs/libfabric-1a2b.so.1".into()],
                ..Default::default()
            }],
            ..Default::default()
        };
        let fs = judge(&inv, &c);
        let titles: Vec<&str> = fs.iter().map(|f| f.title.as_str()).collect();
        let has = |s: &str| titles.iter().any(|t| t.contains(s));
        assert!(has("not the EFA installer's copy"), "{titles:?}");
        assert!(has("no `efa` provider"));
        assert!(has("older than 1.21"));
        assert!(has("UCX 1.16 has no EFA transport"));
        assert!(has("FI_LOG_LEVEL=debug"));
        assert!(has("UCX restricted to TCP"));
        assert!(has("wheel-bundled libfabric"));
        assert_eq!(fs[0].severity, Severity::Error, "most severe first");
        assert!(
            fs.iter()
                .all(|f| f.severity == Severity::Info || !f.fix.is_empty()),
            "every problem has a fix"
        );
    }

    #[test]
    fn a_clean_tcp_only_node_has_no_errors() {
        let c = FabricCheckResponse {
            libfabric: avail("/opt/amazon/efa/lib/libfabric.so.1 (libfabric 2.1)"),
            ucx: avail("libucp.so.0 (UCX 1.19.0)"),
            ..Default::default()
        };
        let fs = judge(&Inventory::default(), &c);
        assert!(fs.iter().all(|f| f.severity == Severity::Info), "{fs:?}");
        assert_eq!(version_of("UCX 1.19.0"), Some((1, 19)));
        assert_eq!(version_of("garbage"), None);
    }
}
