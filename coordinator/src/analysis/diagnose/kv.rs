//! KV rules that read the node counters and the engine logs beside the P/D
//! attribution: KV bytes carried over TCP/IP instead of RDMA, and requests served
//! from KV blocks the prefill instance had already released (its lease expired)
//! while the client got HTTP 200.

use std::collections::HashSet;

use super::{Finding, RunFacts, Severity};
use crate::analysis::pd::kv::Carrier;

/// Request ids quoted as evidence at most.
pub const MAX_IDS: usize = 10;

pub fn kv_over_tcp(f: &RunFacts) -> Option<Finding> {
    let a = f.attribution.as_ref().filter(|a| a.disaggregated)?;
    if a.kv.carrier != Some(Carrier::Tcp) {
        return None;
    }
    let evidence = std::iter::once(format!(
        "{:.1} MB of KV transferred (vllm:nixl_bytes_transferred) during the run",
        a.kv.bytes / 1e6
    ))
    .chain(a.kv.nodes.iter().map(|n| {
        format!(
            "{}: RDMA tx {} B rx {} B, TCP/IP tx {} B rx {} B",
            n.host, n.rdma_tx_bytes, n.rdma_rx_bytes, n.net_tx_bytes, n.net_rx_bytes
        )
    }))
    .collect();
    Some(Finding {
        rule: "kv_over_tcp",
        severity: Severity::Critical,
        title: "KV bytes went over TCP/IP, not RDMA".into(),
        evidence,
        fix: "NIXL's backend fell back to TCP: give the engines a UCX/libfabric with the fabric's provider (UCX_TLS with rc or efa, FI_PROVIDER=efa), check servescope fabric check on both nodes, and rerun.".into(),
    })
}

pub fn kv_expired_leases(f: &RunFacts) -> Option<Finding> {
    let a = f.attribution.as_ref().filter(|a| a.disaggregated)?;
    let ok: Vec<&str> = f
        .points
        .iter()
        .flat_map(|p| &p.requests)
        .filter(|r| r.error_class.is_none() && r.status.is_none_or(|s| s == 200))
        .map(|r| r.request_id.as_str())
        .collect();
    let expired: HashSet<&str> = a.kv.expired_requests.iter().map(String::as_str).collect();
    let mut answered: Vec<&str> = ok
        .iter()
        .copied()
        .filter(|id| expired.contains(id))
        .collect();
    let failed_at_client: u64 = f.points.iter().map(|p| p.row.aggregate.failed).sum();
    let mut evidence = Vec::new();
    if !answered.is_empty() {
        let n = answered.len();
        answered.truncate(MAX_IDS);
        evidence.push(format!(
            "{n} request(s) the engine logs name with \"Releasing expired KV blocks\" were answered HTTP 200 at the client: {}",
            answered.join(", ")
        ));
    } else if a.kv.expired > 0.0 && failed_at_client == 0 {
        evidence.push(format!(
            "{:.0} request(s) had their KV blocks released unread on P (vllm:nixl_num_kv_expired_reqs) while every one of the client's {} requests got HTTP 200",
            a.kv.expired,
            ok.len()
        ));
    }
    (!evidence.is_empty()).then(|| Finding {
        rule: "kv_expired_leases",
        severity: Severity::Critical,
        title: "Requests served from expired KV leases (a silent failure)".into(),
        evidence,
        fix: "D read the KV blocks after P's lease ran out and the request still succeeded: it was recomputed or served from released blocks, and the client cannot tell. Raise the lease (VLLM_NIXL_ABORT_REQUEST_TIMEOUT / kv_lease_duration), find why D reads late (its queue, the transfer path), and check those responses' content.".into(),
    })
}
