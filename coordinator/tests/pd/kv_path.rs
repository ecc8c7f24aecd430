//! The KV path's stored NIXL probe: each of its rules raised by exactly its injected
//! fault in the stored probe of an otherwise clean run; a clean probe raises none.

use super::*;
use servescope_coordinator::store::ProbeOutcome;
use servescope_proto::v1::{
    NixlXferStats, ProbeFinding, ProbeSizeResult, ProbeSummary, TransportTruthMsg,
};

/// UCX 1.23's selection for a one-GPU NIXL READ (the captured protocol table).
const READ_EMULATED: &str = "ref-initiator-1766 intra-node cfg#2 | remote memory read by ucp_get* from cuda/dev[1] to cuda/dev[1] | 0..inf | software emulation | tcp/lo";

/// A NIXL probe over one EFA port on GPU memory: 6 GB/s for READ and WRITE.
fn healthy() -> ProbeOutcome {
    let mut results = Vec::new();
    for size in [1u64 << 20, 16 << 20, 256 << 20] {
        for op in ["READ", "WRITE"] {
            results.push(ProbeSizeResult {
                size,
                op: op.into(),
                bytes: size * 50,
                seconds: (size * 50) as f64 / 6e9,
                bandwidth_bps: 6e9,
                nixl: Some(NixlXferStats {
                    iterations: 50,
                    post_avg_us: 5.0,
                    transfer_avg_us: size as f64 / 6e3,
                    verified: true,
                    ..Default::default()
                }),
                ..Default::default()
            });
        }
    }
    ProbeOutcome {
        from: "a:1".into(),
        to: "b:1".into(),
        transport: "nixl:UCX".into(),
        results,
        driver: Some(ProbeSummary {
            truth: Some(TransportTruthMsg {
                library: "ucx".into(),
                lanes: vec!["efa/rdmap16s27:1".into()],
                rma: "WRITE: zero-copy efa/rdmap16s27:1; READ: zero-copy efa/rdmap16s27:1".into(),
                memory: "cuda:0".into(),
                nixl_version: "nixl_cu13 1.5.1".into(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        responder: None,
        error: None,
    }
}

fn with(o: ProbeOutcome) -> Exp {
    let mut e = closed(&[4], 8);
    e.fabric = Some(o);
    e
}

#[tokio::test]
async fn clean_probe_is_the_capacity_and_raises_nothing() {
    let (a, _) = run(clean(), with(healthy())).await;
    assert!(a.findings.is_empty(), "{:#?}", a.findings);
    let p = a.kv.path.as_ref().expect("path");
    assert!(p.nixl && p.op == "READ", "{p:?}");
    assert_eq!(a.kv.capacity_gbps, Some(6.0));
    assert_eq!(p.line_rate_gbps, Some(12.5));
}

#[tokio::test]
async fn emulated_read_is_named_with_the_probes_evidence() {
    let mut o = healthy();
    let t = o.driver.as_mut().unwrap().truth.as_mut().unwrap();
    t.lanes.push("tcp/lo".into());
    t.rma = "EMULATED over tcp: WRITE: zero-copy efa/rdmap16s27:1; READ: software emulation tcp/lo"
        .into();
    t.findings = vec![ProbeFinding {
        name: "emulated_over_tcp".into(),
        evidence: vec![READ_EMULATED.into()],
        fix: "use a UCX with cuda_ipc".into(),
    }];
    let (a, _) = only(clean(), with(o), "kv_path_emulated_over_tcp").await;
    let f = &a.findings[0];
    assert_eq!(f.title, "KV path emulated over TCP");
    assert!(f.evidence.iter().any(|e| e == READ_EMULATED), "{f:?}");
    assert!(f.evidence[0].contains("fabric probe run"), "{f:?}");
    assert_eq!(f.fix, "use a UCX with cuda_ipc");
}

#[tokio::test]
async fn long_post_on_gpu_memory_is_named() {
    let mut o = healthy();
    for r in o.results.iter_mut().filter(|r| r.op == "READ") {
        let n = r.nixl.as_mut().unwrap();
        n.post_avg_us = 0.8 * n.transfer_avg_us;
    }
    only(clean(), with(o), "kv_post_dominates").await;
}

#[tokio::test]
async fn rate_above_the_line_rate_is_named() {
    let mut o = healthy();
    // The WRITE the connector does not use: the capacity (READ) stays clean.
    let r = o
        .results
        .iter_mut()
        .find(|r| r.op == "WRITE" && r.size == 256 << 20)
        .unwrap();
    r.bandwidth_bps = 40e9;
    let (a, _) = only(clean(), with(o), "kv_rate_above_line_rate").await;
    assert!(
        a.findings[0].evidence[0].contains("EFA: 100 Gbps × 1"),
        "{:?}",
        a.findings[0]
    );
}
