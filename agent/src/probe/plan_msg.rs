//! Conversions between the wire plan/results and the engine's types. A bad wire plan
//! is refused with the parameter named.

use std::time::Duration;

use servescope_fabric::{MemKind, Op, PlanError, ProbePlan, SizeResult, TransportTruth, Verify};
use servescope_proto::v1::{
    NixlXferStats, ProbeFinding, ProbePlanMsg, ProbeSizeResult, TransportTruthMsg,
};

fn invalid(param: &'static str, why: impl Into<String>) -> PlanError {
    PlanError::Invalid {
        param,
        why: why.into(),
    }
}

/// Wire plan → engine plan, validated. Zero durations mean "the default".
pub fn plan_from_msg(m: &ProbePlanMsg) -> Result<ProbePlan, PlanError> {
    let d = ProbePlan::default();
    let ms = |v: u64, dflt: Duration| {
        if v == 0 {
            dflt
        } else {
            Duration::from_millis(v)
        }
    };
    let ops = if m.ops.is_empty() {
        d.ops.clone()
    } else {
        m.ops
            .iter()
            .map(|o| match o.as_str() {
                "tag" => Ok(Op::Tag),
                "rma_write" | "put" | "write" => Ok(Op::RmaWrite),
                "rma_read" | "get" | "read" => Ok(Op::RmaRead),
                other => Err(invalid(
                    "ops",
                    format!("unknown operation `{other}` (tag, rma_write, rma_read)"),
                )),
            })
            .collect::<Result<Vec<_>, _>>()?
    };
    let mem = mem_kind("memory", &m.memory, m.cuda_device)?;
    let responder_mem = match m.responder_memory.as_str() {
        "" => None,
        r => Some(mem_kind("responder_memory", r, m.responder_cuda_device)?),
    };
    let nz = |v: u32, dflt: u32| if v == 0 { dflt } else { v };
    let p = ProbePlan {
        sizes: if m.sizes.is_empty() {
            d.sizes.clone()
        } else {
            m.sizes.clone()
        },
        ops,
        window: nz(m.window, d.window),
        iterations: nz(m.iterations, d.iterations),
        latency_iterations: m.latency_iterations,
        warmup: m.warmup,
        duration_per_size: ms(m.duration_per_size_ms, d.duration_per_size),
        max_duration: ms(m.max_duration_ms, d.max_duration),
        peer_timeout: ms(m.peer_timeout_ms, d.peer_timeout),
        mem,
        responder_mem,
        verify: false,
        corrupt_received_byte: None,
        touch_payload: d.touch_payload,
    };
    let p = ProbePlan {
        verify: m.verify.unwrap_or_else(|| p.uses_gpu()),
        ..p
    };
    p.validate()?;
    Ok(p)
}

fn mem_kind(param: &'static str, name: &str, device: u32) -> Result<MemKind, PlanError> {
    match name {
        "" | "host" => Ok(MemKind::Host),
        "cuda" => Ok(MemKind::Cuda(device)),
        other => Err(invalid(
            param,
            format!("unknown memory `{other}` (host, cuda)"),
        )),
    }
}

fn mem_to_msg(m: MemKind) -> (String, u32) {
    match m {
        MemKind::Host => ("host".to_string(), 0),
        MemKind::Cuda(i) => ("cuda".to_string(), i),
    }
}

/// Engine plan → wire plan.
pub fn plan_to_msg(p: &ProbePlan) -> ProbePlanMsg {
    let (memory, cuda_device) = mem_to_msg(p.mem);
    let (responder_memory, responder_cuda_device) =
        p.responder_mem.map(mem_to_msg).unwrap_or_default();
    ProbePlanMsg {
        sizes: p.sizes.clone(),
        ops: p.ops.iter().map(|o| o.name().to_string()).collect(),
        window: p.window,
        iterations: p.iterations,
        latency_iterations: p.latency_iterations,
        warmup: p.warmup,
        duration_per_size_ms: p.duration_per_size.as_millis() as u64,
        max_duration_ms: p.max_duration.as_millis() as u64,
        peer_timeout_ms: p.peer_timeout.as_millis() as u64,
        memory,
        cuda_device,
        responder_memory,
        responder_cuda_device,
        verify: Some(p.verify),
    }
}

pub fn result_to_msg(r: &SizeResult) -> ProbeSizeResult {
    ProbeSizeResult {
        size: r.size,
        op: r.op.to_string(),
        bytes: r.bytes,
        messages: r.messages,
        seconds: r.seconds,
        bandwidth_bps: r.bandwidth_bps,
        messages_per_s: r.messages_per_s,
        latency_p50_ns: r.latency_p50_ns,
        latency_p99_ns: r.latency_p99_ns,
        nixl: r.nixl.as_ref().map(|x| NixlXferStats {
            blocks: x.blocks,
            block_size: x.block_size,
            iterations: x.iterations,
            prepare_avg_us: x.prepare.avg_us,
            prepare_p99_us: x.prepare.p99_us,
            post_avg_us: x.post.avg_us,
            post_p99_us: x.post.p99_us,
            transfer_avg_us: x.transfer.avg_us,
            transfer_p99_us: x.transfer.p99_us,
            dlist_prep_us: x.dlist_prep_us,
            verified: x.verified,
        }),
        verified: r.verify == Verify::Verified,
        unverified: match &r.verify {
            Verify::Unverified(why) => why.clone(),
            _ => String::new(),
        },
    }
}

pub fn truth_to_msg(t: &TransportTruth) -> TransportTruthMsg {
    TransportTruthMsg {
        library: t.library.clone(),
        path: t.path.clone(),
        version: t.version.clone(),
        provider: t.provider.clone(),
        fabric: t.fabric.clone(),
        domain: t.domain.clone(),
        lanes: t.lanes.clone(),
        rma: t.rma.clone(),
        memory: t.memory.clone(),
        notes: t.notes.clone(),
        protocols: t.protocols.clone(),
        findings: t
            .findings
            .iter()
            .map(|f| ProbeFinding {
                name: f.name.clone(),
                evidence: f.evidence.clone(),
                fix: f.fix.clone(),
            })
            .collect(),
        nixl_version: t.nixl_version.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_plan_round_trips_and_defaults_fill_zeros() {
        let p = ProbePlan {
            sizes: vec![4096, 1 << 20],
            ops: vec![Op::Tag, Op::RmaWrite],
            mem: MemKind::Cuda(3),
            ..Default::default()
        };
        assert_eq!(plan_from_msg(&plan_to_msg(&p)), Ok(p));
        let d = plan_from_msg(&ProbePlanMsg::default()).expect("defaults");
        assert_eq!(d.sizes, ProbePlan::default().sizes);
        assert!(!d.verify && d.responder_mem.is_none());
    }

    #[test]
    fn responder_memory_and_verification_defaults() {
        // GPU → host, verification by default (GPU memory on one side).
        let m = ProbePlanMsg {
            memory: "cuda".into(),
            cuda_device: 1,
            responder_memory: "host".into(),
            ..Default::default()
        };
        let p = plan_from_msg(&m).expect("plan");
        assert_eq!(
            (p.mem, p.responder_mem),
            (MemKind::Cuda(1), Some(MemKind::Host))
        );
        assert!(p.verify);
        assert_eq!(p.for_responder().mem, MemKind::Host);
        assert_eq!(p.memory_label(), "cuda:1→host");
        assert_eq!(plan_from_msg(&plan_to_msg(&p)), Ok(p));
        // An older message (no responder memory): the same memory on both sides.
        let old = plan_from_msg(&ProbePlanMsg {
            memory: "cuda".into(),
            ..Default::default()
        })
        .expect("plan");
        assert_eq!(old.for_responder().mem, MemKind::Cuda(0));
        assert!(old.verify);
        // Explicitly off, and explicitly on for host memory.
        let off = plan_from_msg(&ProbePlanMsg {
            memory: "cuda".into(),
            verify: Some(false),
            ..Default::default()
        });
        assert!(!off.expect("plan").verify);
        let on = plan_from_msg(&ProbePlanMsg {
            verify: Some(true),
            ..Default::default()
        });
        assert!(on.expect("plan").verify);
    }

    #[test]
    fn verdicts_reach_the_wire() {
        let r = SizeResult {
            verify: Verify::Unverified("no message completed".into()),
            ..Default::default()
        };
        let m = result_to_msg(&r);
        assert!(!m.verified && m.unverified == "no message completed");
        let ok = result_to_msg(&SizeResult {
            verify: Verify::Verified,
            ..Default::default()
        });
        assert!(ok.verified && ok.unverified.is_empty());
    }

    #[test]
    fn bad_wire_plans_name_the_parameter() {
        for (m, name) in [
            (
                ProbePlanMsg {
                    sizes: vec![0],
                    ..Default::default()
                },
                "sizes",
            ),
            (
                ProbePlanMsg {
                    sizes: vec![1 << 40],
                    ..Default::default()
                },
                "sizes",
            ),
            (
                ProbePlanMsg {
                    ops: vec!["atomic".into()],
                    ..Default::default()
                },
                "ops",
            ),
            (
                ProbePlanMsg {
                    memory: "hbm".into(),
                    ..Default::default()
                },
                "memory",
            ),
            (
                ProbePlanMsg {
                    responder_memory: "disk".into(),
                    ..Default::default()
                },
                "responder_memory",
            ),
            (
                ProbePlanMsg {
                    max_duration_ms: 10_000_000,
                    ..Default::default()
                },
                "max_duration",
            ),
        ] {
            match plan_from_msg(&m) {
                Err(PlanError::Invalid { param, .. }) => assert_eq!(param, name),
                other => panic!("{name}: {other:?}"),
            }
        }
    }
}
