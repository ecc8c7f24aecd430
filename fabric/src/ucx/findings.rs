//! From UCX's protocol selection to the probe's evidence: the selected protocol per
//! operation the probe ran, and the emulation finding (RMA carried as active
//! messages over tcp, or GPU memory on a tcp lane). Pure.

use super::proto_info::{Operation, ProtoInfo};
use crate::plan::{Finding, Op};

/// Evidence lines kept per probe.
const MAX_LINES: usize = 32;

/// Name of the emulation finding.
pub const EMULATED_OVER_TCP: &str = "emulated_over_tcp";

const FIX: &str = "point the probe (--ucx-lib, --engine-venv, --like-pid) and the engine at a \
UCX with the right transports: cuda_ipc/cuda_copy for GPU memory on one node, efa or rc across \
nodes; check UCX_TLS in the engine's environment (it must not leave only tcp, and must name \
cuda_ipc,cuda_copy for GPU memory); for NIXL READ between two processes on one GPU, UCX emulates \
pull reads on one device over tcp: measure WRITE or use distinct GPUs";

fn ucx_op(op: Op) -> Operation {
    match op {
        Op::Tag => Operation::Tag,
        Op::RmaWrite => Operation::Put,
        Op::RmaRead => Operation::Get,
    }
}

/// Memory types of a probe's memory label (`cuda:0`, `cuda:0→host`, `host`).
pub fn mem_types(label: &str) -> Vec<&str> {
    let mut v: Vec<&str> = label
        .split('→')
        .map(|m| m.split(':').next().unwrap_or(m).trim())
        .filter(|m| !m.is_empty())
        .collect();
    v.dedup();
    v
}

/// Protocol evidence lines for `ops` between the memory types `mems` (empty: any),
/// and the findings they prove.
pub fn assess(info: &ProtoInfo, ops: &[Op], mems: &[&str]) -> (Vec<String>, Vec<Finding>) {
    let wanted: Vec<Operation> = ops.iter().map(|&o| ucx_op(o)).collect();
    let mut lines: Vec<String> = Vec::new();
    for s in info.selections.iter().filter(|s| s.within(mems)) {
        let e = s.evidence();
        if wanted.contains(&s.operation) && !lines.contains(&e) && lines.len() < MAX_LINES {
            lines.push(e);
        }
    }
    let mut evidence: Vec<String> = Vec::new();
    for s in info
        .emulated_over_tcp()
        .into_iter()
        .filter(|s| s.within(mems))
    {
        let e = s.evidence();
        if wanted.contains(&s.operation) && !evidence.contains(&e) && evidence.len() < MAX_LINES {
            evidence.push(e);
        }
    }
    let findings = if evidence.is_empty() {
        Vec::new()
    } else {
        vec![emulated(evidence)]
    };
    (lines, findings)
}

/// The emulation finding with its evidence lines (UCX's own protocol selections).
pub fn emulated(evidence: Vec<String>) -> Finding {
    Finding {
        name: EMULATED_OVER_TCP.into(),
        evidence,
        fix: FIX.into(),
    }
}

/// Without protocol tables (UCX < 1.15 with its v2 protocols off): the lane view
/// still proves emulation when RMA was asked for, no RMA lane exists and the lanes
/// are tcp.
pub fn assess_lanes(rma: &str, lanes: &[String], ops: &[Op]) -> Option<Finding> {
    let wants_rma = ops.iter().any(|o| *o != Op::Tag);
    let tcp = lanes.iter().any(|l| l.starts_with("tcp/"));
    (wants_rma && tcp && rma.starts_with("emulated")).then(|| Finding {
        name: EMULATED_OVER_TCP.into(),
        evidence: vec![format!("lanes: {}", lanes.join(" ")), format!("rma: {rma}")],
        fix: FIX.into(),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn memory_labels_give_their_types() {
        assert_eq!(super::mem_types("cuda:0"), vec!["cuda"]);
        assert_eq!(super::mem_types("cuda:0→host"), vec!["cuda", "host"]);
        assert_eq!(super::mem_types("host"), vec!["host"]);
    }

    use super::super::proto_info::parse;
    use super::*;

    const HOST: &str = include_str!("../../tests/data/ucx_proto_info_host.txt");
    const HOST_TCP: &str = include_str!("../../tests/data/ucx_proto_info_host_tcp.txt");

    #[test]
    fn healthy_host_run_raises_nothing() {
        let (lines, f) = assess(&parse(HOST), &[Op::RmaWrite, Op::RmaRead], &[]);
        assert!(f.is_empty(), "{f:?}");
        assert!(lines
            .iter()
            .any(|l| l.contains("ucp_get*(multi)") && l.contains("cma/memory")));
    }

    #[test]
    fn forced_tcp_read_is_a_finding_but_write_alone_is_not() {
        let info = parse(HOST_TCP);
        let (_, f) = assess(&info, &[Op::RmaRead], &["host"]);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].name, EMULATED_OVER_TCP);
        assert!(f[0].evidence[0].contains("software emulation | tcp/lo"));
        assert!(f[0].fix.contains("UCX_TLS"));
        let (_, f) = assess(&info, &[Op::RmaWrite, Op::Tag], &[]);
        assert!(f.is_empty());
    }

    #[test]
    fn lane_view_fallback() {
        let lanes = vec!["tcp/lo".to_string()];
        assert!(assess_lanes("emulated: no RMA lane", &lanes, &[Op::RmaWrite]).is_some());
        assert!(assess_lanes("emulated: no RMA lane", &lanes, &[Op::Tag]).is_none());
        assert!(assess_lanes("native", &lanes, &[Op::RmaWrite]).is_none());
    }
}
