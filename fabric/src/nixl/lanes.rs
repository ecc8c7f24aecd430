//! What NIXL's UCX backend picked for WRITE (put) and READ (get), from the protocol
//! tables UCX printed to the driver's stderr (`UCX_PROTO_INFO=y`), parsed by
//! [`crate::ucx::proto_info`]. Tables of UCX's loopback to its own worker
//! (`self cfg#N`) are left out: the peer's path is what the probe measures.

use crate::plan::Finding;
use crate::ucx::findings;
use crate::ucx::proto_info::{self, Operation, Selection};

/// Lanes, the RMA verdict per operation, and the evidence lines.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProtoSummary {
    /// "transport/device" of every RMA lane toward the peer.
    pub lanes: Vec<String>,
    /// e.g. `WRITE: zero-copy cuda_ipc/cuda; READ: software emulation tcp/lo`.
    pub rma: String,
    pub evidence: Vec<String>,
    /// The emulation finding, with the selections that prove it, when `emulated`.
    pub findings: Vec<Finding>,
    /// Some RMA toward the peer is emulated over tcp, or device memory crosses tcp.
    pub emulated: bool,
}

fn toward_peer(s: &Selection) -> bool {
    !s.config.contains("self cfg")
}

fn push_unique(v: &mut Vec<String>, s: String) {
    if !v.contains(&s) {
        v.push(s);
    }
}

/// Reads the protocol tables out of a driver's stderr, keeping the selections between
/// the memory types of the probe's buffers (`mems`: `cuda`, `host`; empty: any).
pub fn from_stderr(text: &str, mems: &[&str]) -> ProtoSummary {
    let info = proto_info::parse(text);
    let mut out = ProtoSummary::default();
    let mut verdicts = Vec::new();
    for (op, name) in [(Operation::Put, "WRITE"), (Operation::Get, "READ")] {
        let mut seen = Vec::new();
        for s in info
            .selections
            .iter()
            .filter(|s| s.operation == op && toward_peer(s) && s.within(mems))
        {
            let lanes: Vec<String> = s
                .lanes
                .iter()
                .map(|l| format!("{}/{}", l.transport, l.device))
                .collect();
            for l in &lanes {
                push_unique(&mut out.lanes, l.clone());
            }
            push_unique(&mut seen, format!("{} {}", s.description, lanes.join(" ")));
            push_unique(&mut out.evidence, s.evidence());
        }
        if !seen.is_empty() {
            verdicts.push(format!("{name}: {}", seen.join(", ")));
        }
    }
    let emulated: Vec<&Selection> = info
        .emulated_over_tcp()
        .into_iter()
        .filter(|s| toward_peer(s) && s.within(mems))
        .collect();
    out.emulated = !emulated.is_empty();
    if out.emulated {
        let mut ev = Vec::new();
        for s in &emulated {
            push_unique(&mut ev, s.evidence());
        }
        out.findings = vec![findings::emulated(ev)];
    }
    out.rma = if verdicts.is_empty() {
        "no UCX protocol table for the peer yet (UCX_PROTO_INFO output not seen)".into()
    } else if out.emulated {
        format!("EMULATED over tcp: {}", verdicts.join("; "))
    } else {
        verdicts.join("; ")
    };
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_only_host_capture_is_emulated_and_names_both_directions() {
        let text = include_str!("../../tests/data/ucx_proto_info_host_tcp.txt");
        let s = from_stderr(text, &["host"]);
        assert!(
            s.rma.contains("WRITE:") && s.rma.contains("READ:"),
            "{}",
            s.rma
        );
        assert!(
            s.lanes.iter().all(|l| l.starts_with("tcp/")),
            "{:?}",
            s.lanes
        );
        assert!(!s.evidence.is_empty());
        assert!(!s.evidence.iter().any(|e| e.contains("self cfg")));
        assert_eq!(s.findings.len(), 1);
        assert_eq!(s.findings[0].name, findings::EMULATED_OVER_TCP);
        assert!(!s.findings[0].evidence.is_empty());
    }

    #[test]
    fn healthy_host_capture_raises_no_finding() {
        let text = include_str!("../../tests/data/ucx_proto_info_host.txt");
        let s = from_stderr(text, &["host"]);
        assert!(!s.emulated, "{}", s.rma);
        assert!(s.findings.is_empty());
        assert!(s.rma.contains("WRITE:"), "{}", s.rma);
    }

    /// UCX 1.23 from the NIXL wheel on one H100, two processes on GPU 0, as the
    /// reference printed it with UCX_PROTO_INFO=y: WRITE goes zero-copy over
    /// cuda_ipc, READ is emulated over tcp/lo.
    const CUDA_ONE_GPU: &str = include_str!("../../tests/data/ucx_proto_info_cuda_one_gpu.txt");

    #[test]
    fn one_gpu_capture_names_the_emulated_read_and_only_it() {
        let s = from_stderr(CUDA_ONE_GPU, &["cuda"]);
        assert!(
            s.lanes.contains(&"cuda_ipc/cuda".to_string()),
            "{:?}",
            s.lanes
        );
        assert!(
            s.rma.contains("WRITE: zero-copy cuda_ipc/cuda"),
            "{}",
            s.rma
        );
        assert!(s.emulated, "{}", s.rma);
        assert_eq!(s.findings.len(), 1);
        let ev = &s.findings[0].evidence;
        assert!(ev.iter().all(|e| e.contains("ucp_get")), "{ev:?}");
        assert!(ev.iter().all(|e| !e.contains("host memory")), "{ev:?}");
    }

    #[test]
    fn no_tables_says_so() {
        let s = from_stderr("nothing from UCX here\n", &[]);
        assert!(s.lanes.is_empty() && !s.emulated && s.findings.is_empty());
        assert!(s.rma.starts_with("no UCX protocol table"));
    }
}
