//! The KV path as a stored fabric probe measured it: which probe of the linked
//! fabric run stands for the path (a NIXL-level probe when there is one, measured
//! with the connector's operation at the size nearest the observed transfer size),
//! what its transport truth says, and the line rate of the link it ran over.

use serde::Serialize;
use servescope_proto::v1::{Inventory, TransportTruthMsg};

use crate::store::ProbeOutcome;

/// Name of the probe's emulation finding (the agent's transport truth).
pub const EMULATED_OVER_TCP: &str = "emulated_over_tcp";
/// One EFA port's line rate, GB/s (100 Gbps).
pub const EFA_PORT_GBPS: f64 = 12.5;

/// The RDMA operation the KV connector uses. vLLM's NixlConnector pulls: the decode
/// instance READs the prefill instance's blocks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub enum KvOp {
    #[default]
    Read,
    Write,
}

impl KvOp {
    /// Whether a probe result's op (`READ`, `rma_read`, ...) is this one.
    pub fn matches(self, op: &str) -> bool {
        let op = op.to_ascii_lowercase();
        match self {
            KvOp::Read => op == "read" || op == "rma_read",
            KvOp::Write => op == "write" || op == "rma_write",
        }
    }
    /// The NIXL name, as the probe prints it.
    pub fn name(self) -> &'static str {
        match self {
            KvOp::Read => "READ",
            KvOp::Write => "WRITE",
        }
    }
    /// UCX's name in its protocol tables.
    fn ucp(self) -> &'static str {
        match self {
            KvOp::Read => "ucp_get",
            KvOp::Write => "ucp_put",
        }
    }
}

/// One measured size of the path's probe.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PathSize {
    pub size: u64,
    pub op: String,
    pub gbps: f64,
    /// NIXL-level probes: the post call and post-to-done, µs per transfer.
    pub post_avg_us: Option<f64>,
    pub transfer_avg_us: Option<f64>,
}

/// A finding of the probe's transport truth.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PathFinding {
    pub name: String,
    pub evidence: Vec<String>,
    pub fix: String,
}

/// The probe that stands for the KV path.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct KvPath {
    pub fabric_run: i64,
    pub from: String,
    pub to: String,
    pub transport: String,
    /// A NIXL-level probe (`--transport nixl`).
    pub nixl: bool,
    /// The capacity: the rate at `size` for `op`.
    pub op: String,
    pub size: u64,
    pub gbps: f64,
    /// The probe's memory label (`cuda:0`, `cuda:0→host`, `host`).
    pub memory: String,
    pub lanes: Vec<String>,
    pub rma: String,
    pub findings: Vec<PathFinding>,
    pub sizes: Vec<PathSize>,
    /// The link's line rate (GB/s) and how it was found; None when unknown.
    pub line_rate_gbps: Option<f64>,
    pub line_rate_source: Option<String>,
}

impl KvPath {
    /// GPU memory on the driver's side.
    pub fn gpu_memory(&self) -> bool {
        self.memory.starts_with("cuda")
    }

    /// The probe's evidence that `op` is emulated over tcp: the finding's lines that
    /// name the operation (all of them when none names any), else the lane view.
    /// None when the path is not emulated for `op`.
    pub fn emulation(&self, op: KvOp) -> Option<(Vec<String>, Option<&str>)> {
        for f in self.findings.iter().filter(|f| f.name == EMULATED_OVER_TCP) {
            let named = |e: &&String| e.contains("ucp_get") || e.contains("ucp_put");
            let mine: Vec<String> = if f.evidence.iter().any(|e| named(&e)) {
                f.evidence
                    .iter()
                    .filter(|e| e.contains(op.ucp()))
                    .cloned()
                    .collect()
            } else {
                f.evidence.clone()
            };
            if !mine.is_empty() {
                return Some((mine, Some(f.fix.as_str())));
            }
        }
        let verdict = self
            .rma
            .split(';')
            .map(|s| s.trim_start_matches("EMULATED over tcp:").trim())
            .find(|s| s.starts_with(&format!("{}:", op.name())));
        let by_rma = verdict.is_some_and(|v| v.contains("emulation") && v.contains("tcp/"));
        let by_lanes =
            self.rma.starts_with("emulated") && self.lanes.iter().any(|l| l.starts_with("tcp/"));
        (by_rma || by_lanes).then(|| {
            (
                vec![
                    format!("lanes: {}", self.lanes.join(" ")),
                    format!("rma: {}", self.rma),
                ],
                None,
            )
        })
    }
}

fn nearest(sizes: impl Iterator<Item = u64>, bytes: Option<f64>) -> Option<u64> {
    let dist = |s: u64| match bytes {
        Some(b) if b > 0.0 && s > 0 => (s as f64 / b).ln().abs(),
        _ => -(s as f64),
    };
    sizes.min_by(|x, y| dist(*x).total_cmp(&dist(*y)))
}

/// The rate of `o` for `op` at the size nearest `bytes` (the largest without it).
fn rate_for(o: &ProbeOutcome, op: KvOp, bytes: Option<f64>) -> Option<(u64, String, f64)> {
    let mine = || o.results.iter().filter(|r| op.matches(&r.op));
    let size = nearest(mine().map(|r| r.size), bytes)?;
    let r = mine().find(|r| r.size == size)?;
    Some((size, r.op.clone(), r.bandwidth_bps))
}

/// The probe standing for the KV path among a fabric run's probes: the best NIXL-level
/// probe for `op` at the size nearest `bytes` (the observed bytes per transfer);
/// without one, the probe with the best headline rate (the largest size, tag first).
pub fn select(
    fabric_run: i64,
    probes: &[ProbeOutcome],
    op: KvOp,
    bytes: Option<f64>,
) -> Option<KvPath> {
    let nixl = probes
        .iter()
        .filter(|o| o.transport.starts_with("nixl"))
        .filter_map(|o| Some((o, rate_for(o, op, bytes)?)))
        .max_by(|x, y| x.1 .2.total_cmp(&y.1 .2));
    let (o, (size, rop, bps), is_nixl) = match nixl {
        Some((o, r)) => (o, r, true),
        None => {
            let (o, bps) = probes
                .iter()
                .filter_map(|o| Some((o, crate::analysis::fabric::matrix::headline_bps(o)?)))
                .max_by(|x, y| x.1.total_cmp(&y.1))?;
            let size = o.results.iter().map(|r| r.size).max().unwrap_or(0);
            let rop = o
                .results
                .iter()
                .filter(|r| r.size == size)
                .find(|r| r.op == "tag")
                .or_else(|| o.results.iter().find(|r| r.size == size))
                .map(|r| r.op.clone())
                .unwrap_or_default();
            (o, (size, rop, bps), false)
        }
    };
    let truth: TransportTruthMsg = o
        .driver
        .as_ref()
        .and_then(|s| s.truth.clone())
        .or_else(|| o.responder.as_ref().and_then(|s| s.truth.clone()))
        .unwrap_or_default();
    Some(KvPath {
        fabric_run,
        from: o.from.clone(),
        to: o.to.clone(),
        transport: o.transport.clone(),
        nixl: is_nixl,
        op: rop,
        size,
        gbps: bps / 1e9,
        memory: truth.memory.clone(),
        lanes: truth.lanes.clone(),
        rma: truth.rma.clone(),
        findings: truth
            .findings
            .iter()
            .map(|f| PathFinding {
                name: f.name.clone(),
                evidence: f.evidence.clone(),
                fix: f.fix.clone(),
            })
            .collect(),
        sizes: o
            .results
            .iter()
            .map(|r| PathSize {
                size: r.size,
                op: r.op.clone(),
                gbps: r.bandwidth_bps / 1e9,
                post_avg_us: r.nixl.as_ref().map(|n| n.post_avg_us),
                transfer_avg_us: r.nixl.as_ref().map(|n| n.transfer_avg_us),
            })
            .collect(),
        line_rate_gbps: None,
        line_rate_source: None,
    })
}

/// NVLink per link and direction (GB/s) by GPU architecture; None when unknown.
fn nvlink_link_gbps(arch: &str) -> Option<f64> {
    let a = arch.to_ascii_lowercase();
    if a.contains("blackwell") {
        Some(50.0)
    } else if a.contains("hopper") || a.contains("ampere") || a.contains("volta") {
        Some(25.0)
    } else {
        None
    }
}

/// The line rate of the path's link, from its lanes and the nodes' inventories
/// (`(agent address, inventory)`, the probe's driver first where known): cuda_ipc
/// between two GPUs: the driver GPU's NVLink total; EFA: 100 Gbps × ports; tcp: the
/// interface's speed where an RDMA port reports it. None when unknown (a loopback, one
/// GPU talking to itself: that copy stays in its own memory, not on NVLink).
pub fn line_rate(p: &KvPath, inventories: &[(String, Inventory)]) -> Option<(f64, String)> {
    let mut invs: Vec<&Inventory> = inventories
        .iter()
        .filter(|(a, _)| *a == p.from)
        .map(|(_, i)| i)
        .collect();
    invs.extend(
        inventories
            .iter()
            .filter(|(a, _)| *a != p.from)
            .map(|(_, i)| i),
    );
    let devs = |t: &str| -> Vec<&str> {
        let mut v: Vec<&str> = p
            .lanes
            .iter()
            .filter_map(|l| l.strip_prefix(t)?.strip_prefix('/'))
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    };
    if !devs("cuda_ipc").is_empty() {
        let sides: Vec<&str> = p.memory.split('→').collect();
        if sides.len() < 2 || sides[0] == sides[1] {
            return None;
        }
        let gpu: u32 = sides[0].strip_prefix("cuda:")?.parse().ok()?;
        let g = invs
            .iter()
            .find_map(|i| i.gpus.iter().find(|g| g.index == gpu))?;
        let per = nvlink_link_gbps(&g.architecture)?;
        return (g.nvlink_links > 0).then(|| {
            let total = per * g.nvlink_links as f64;
            (
                total,
                format!(
                    "NVLink of GPU {gpu} ({}): {} links × {per} GB/s",
                    g.architecture, g.nvlink_links
                ),
            )
        });
    }
    let efa = devs("efa");
    if !efa.is_empty() || (p.transport == "libfabric:efa" && p.lanes.is_empty()) {
        let ports = efa.len().max(1);
        return Some((
            EFA_PORT_GBPS * ports as f64,
            format!("EFA: 100 Gbps × {ports} port(s)"),
        ));
    }
    let tcp = devs("tcp");
    if tcp.len() == 1 {
        let dev = tcp[0];
        let gbit = invs.iter().find_map(|i| {
            i.rdma_devices
                .iter()
                .flat_map(|d| &d.ports)
                .find(|port| port.netdev == dev)
                .and_then(|port| port.rate.split_whitespace().next()?.parse::<f64>().ok())
        })?;
        return Some((gbit / 8.0, format!("{dev}: {gbit} Gbps")));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use servescope_proto::v1::GpuInfo;

    fn path(lanes: &[&str], memory: &str) -> KvPath {
        KvPath {
            from: "a:1".into(),
            lanes: lanes.iter().map(|l| l.to_string()).collect(),
            memory: memory.into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_finding_on_write_only_is_not_the_pull_connectors() {
        let mut p = path(&["cuda_ipc/cuda", "tcp/lo"], "cuda:0");
        p.findings = vec![PathFinding {
            name: EMULATED_OVER_TCP.into(),
            evidence: vec!["cfg#2 | ucp_put* | 0..inf | software emulation | tcp/lo".into()],
            fix: "f".into(),
        }];
        assert!(p.emulation(KvOp::Read).is_none());
        assert!(p.emulation(KvOp::Write).is_some());
        p.findings.clear();
        p.rma =
            "EMULATED over tcp: WRITE: zero-copy cuda_ipc/cuda; READ: software emulation tcp/lo"
                .into();
        assert!(p.emulation(KvOp::Read).is_some());
        assert!(p.emulation(KvOp::Write).is_none());
    }

    #[test]
    fn line_rates_from_the_path() {
        let inv = Inventory {
            gpus: vec![GpuInfo {
                index: 0,
                nvlink_links: 18,
                architecture: "Hopper".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let invs = vec![("a:1".to_string(), inv)];
        // One GPU talking to itself: no NVLink crossed, no line rate.
        assert!(line_rate(&path(&["cuda_ipc/cuda"], "cuda:0"), &invs).is_none());
        let (g, _) = line_rate(&path(&["cuda_ipc/cuda"], "cuda:0→cuda:1"), &invs).unwrap();
        assert_eq!(g, 450.0);
        let (g, _) = line_rate(&path(&["efa/a:1", "efa/b:1"], "cuda:0"), &[]).unwrap();
        assert_eq!(g, 25.0);
        assert!(line_rate(&path(&["tcp/eth0"], "host"), &invs).is_none());
    }

    #[test]
    fn the_size_nearest_the_transfer() {
        let s = [1u64 << 20, 16 << 20, 256 << 20];
        assert_eq!(nearest(s.into_iter(), Some(20e6)), Some(16 << 20));
        assert_eq!(nearest(s.into_iter(), None), Some(256 << 20));
    }
}
