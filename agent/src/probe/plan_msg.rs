//! Conversions between the wire plan/results and the engine's types. A bad wire plan
//! is refused with the parameter named.

use std::time::Duration;

use servescope_fabric::{MemKind, Op, PlanError, ProbePlan, SizeResult, TransportTruth};
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
    let mem = match m.memory.as_str() {
        "" | "host" => MemKind::Host,
        "cuda" => MemKind::Cuda(m.cuda_device),
        other => {
            return Err(invalid(
                "memory",
                format!("unknown memory `{other}` (host, cuda)"),
            ))
        }
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
        touch_payload: d.touch_payload,
    };
    p.validate()?;
    Ok(p)
}

/// Engine plan → wire plan.
pub fn plan_to_msg(p: &ProbePlan) -> ProbePlanMsg {
    let (memory, cuda_device) = match p.mem {
        MemKind::Host => ("host".to_string(), 0),
        MemKind::Cuda(i) => ("cuda".to_string(), i),
    };
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
