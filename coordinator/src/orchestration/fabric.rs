//! Fabric probes between two agents: the coordinator prepares a responder on one
//! agent and a driver on the other, hands each the other's address, runs both and
//! collects the driver's per-size results and both sides' transport evidence.
//! The judges of what a node offers and the pairwise matrix are in
//! [`crate::analysis::fabric`].

use std::time::Duration;

use servescope_proto::v1::{
    probe_event, PrepareProbeRequest, ProbeEvent, ProbePlanMsg, ProbeRole, ProbeSizeResult,
    ProbeSummary, ProbeTransport, RunProbeRequest,
};
use tonic::Streaming;

use crate::orchestration::connect::{connect, AgentEndpoint, ConnectError};
use crate::store::ProbeOutcome;

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("agent {agent}: {source}")]
    Connect {
        agent: String,
        #[source]
        source: ConnectError,
    },
    #[error("agent {agent} ({role}): {status}")]
    Agent {
        agent: String,
        role: &'static str,
        status: String,
    },
    #[error("bad transport `{0}`: use libfabric:PROVIDER (libfabric:tcp, libfabric:efa, libfabric:shm), ucx[:TLS] or nixl[:UCX|:LIBFABRIC]")]
    Transport(String),
    #[error("probe did not finish within {0:?}")]
    Timeout(Duration),
}

/// Parses `libfabric:tcp`, `libfabric:efa`, `ucx`, `ucx:tcp`, `ucx:rc,cuda_copy`.
pub fn parse_transport(s: &str) -> Result<ProbeTransport, ProbeError> {
    let (lib, rest) = s.split_once(':').unwrap_or((s, ""));
    match lib {
        "libfabric" | "fi" | "ofi" if !rest.is_empty() => Ok(ProbeTransport {
            library: "libfabric".into(),
            provider: rest.to_string(),
            ..Default::default()
        }),
        "ucx" => Ok(ProbeTransport {
            library: "ucx".into(),
            ucx_tls: rest.to_string(),
            ..Default::default()
        }),
        "nixl" => match rest.to_ascii_uppercase().as_str() {
            "" | "UCX" | "LIBFABRIC" => Ok(ProbeTransport {
                library: "nixl".into(),
                nixl_backend: if rest.is_empty() {
                    "UCX".into()
                } else {
                    rest.to_ascii_uppercase()
                },
                ..Default::default()
            }),
            _ => Err(ProbeError::Transport(s.to_string())),
        },
        _ => Err(ProbeError::Transport(s.to_string())),
    }
}

/// A human name for a transport ("libfabric:tcp", "ucx:tcp", "ucx").
pub fn transport_name(t: &ProbeTransport) -> String {
    match (t.library.as_str(), t.provider.as_str(), t.ucx_tls.as_str()) {
        ("libfabric", p, _) => format!("libfabric:{p}"),
        ("ucx", _, "") => "ucx".into(),
        ("ucx", _, tls) => format!("ucx:{tls}"),
        ("nixl", _, _) => format!("nixl:{}", t.nixl_backend),
        (l, _, _) => l.to_string(),
    }
}

fn probe_id() -> String {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("probe-{:x}-{:x}", n, std::process::id())
}

/// Runs one probe `from` → `to`. `on_result` sees each size as it arrives.
pub async fn probe(
    from: &AgentEndpoint,
    to: &AgentEndpoint,
    transport: &ProbeTransport,
    plan: &ProbePlanMsg,
    mut on_result: impl FnMut(&ProbeSizeResult),
) -> Result<ProbeOutcome, ProbeError> {
    let cerr = |a: &AgentEndpoint| {
        let agent = a.address.clone();
        move |source| ProbeError::Connect { agent, source }
    };
    let mut dc = connect(from).await.map_err(cerr(from))?;
    let mut rc = connect(to).await.map_err(cerr(to))?;
    let id = probe_id();
    let agent_err = |a: &AgentEndpoint, role: &'static str| {
        let agent = a.address.clone();
        move |s: tonic::Status| ProbeError::Agent {
            agent,
            role,
            status: s.message().to_string(),
        }
    };
    let prep = |role: ProbeRole| PrepareProbeRequest {
        probe_id: id.clone(),
        role: role as i32,
        transport: Some(transport.clone()),
        plan: Some(plan.clone()),
        prepare_timeout_ms: 60_000,
    };
    let r_info = rc
        .prepare_probe(prep(ProbeRole::Responder))
        .await
        .map_err(agent_err(to, "responder"))?
        .into_inner();
    let d_info = match dc.prepare_probe(prep(ProbeRole::Driver)).await {
        Ok(r) => r.into_inner(),
        Err(st) => {
            // Release the responder (an empty peer cancels a prepared probe).
            let _ = rc
                .run_probe(RunProbeRequest {
                    probe_id: id.clone(),
                    ..Default::default()
                })
                .await;
            return Err(agent_err(from, "driver")(st));
        }
    };
    let r_stream = rc
        .run_probe(RunProbeRequest {
            probe_id: id.clone(),
            peer_address: d_info.address,
            peer_rma: d_info.rma,
        })
        .await
        .map_err(agent_err(to, "responder"))?
        .into_inner();
    let d_stream = dc
        .run_probe(RunProbeRequest {
            probe_id: id,
            peer_address: r_info.address,
            peer_rma: r_info.rma,
        })
        .await
        .map_err(agent_err(from, "driver"))?
        .into_inner();
    let mut out = ProbeOutcome {
        from: from.address.clone(),
        to: to.address.clone(),
        transport: transport_name(transport),
        ..Default::default()
    };
    let limit = Duration::from_millis(plan.max_duration_ms.max(1)) + Duration::from_secs(30);
    let both = pair(
        collect(d_stream, |r| on_result(r)),
        collect(r_stream, |_| {}),
        RESPONDER_GRACE,
    );
    let ((dres, dsum, derr), (_, rsum, rerr)) = tokio::time::timeout(limit, both)
        .await
        .map_err(|_| ProbeError::Timeout(limit))?;
    out.results = dres;
    out.driver = dsum;
    out.responder = rsum;
    let mut errs = Vec::new();
    if let Some(e) = derr {
        errs.push(format!("driver {}: {e}", from.address));
    }
    if let Some(e) = rerr {
        errs.push(format!("responder {}: {e}", to.address));
    }
    if !errs.is_empty() {
        out.error = Some(errs.join("; "));
    }
    Ok(out)
}

/// How long the responder may keep serving after the driver's stream ended with an
/// error. A responder waits for the driver's "done", so without this it would hold
/// its agent's one probe slot until its idle timeout; dropping its stream cancels it.
pub const RESPONDER_GRACE: Duration = Duration::from_secs(3);

type Collected = (Vec<ProbeSizeResult>, Option<ProbeSummary>, Option<String>);

/// Runs the driver's and the responder's streams together. When the driver ends
/// with an error first, the responder gets `grace` to report its own end; after
/// that its stream is dropped (which ends its probe on the agent) and it is
/// reported as cut off.
async fn pair(
    driver: impl std::future::Future<Output = Collected>,
    responder: impl std::future::Future<Output = Collected>,
    grace: Duration,
) -> (Collected, Collected) {
    tokio::pin!(driver);
    tokio::pin!(responder);
    let (d, r_early) = tokio::select! {
        d = &mut driver => (d, None),
        r = &mut responder => ((&mut driver).await, Some(r)),
    };
    if let Some(r) = r_early {
        return (d, r);
    }
    if d.2.is_none() {
        return (d, responder.await);
    }
    match tokio::time::timeout(grace, &mut responder).await {
        Ok(r) => (d, r),
        Err(_) => (
            d,
            (
                Vec::new(),
                None,
                Some(format!(
                    "still serving {grace:?} after the driver failed: its stream was closed, which ends its probe"
                )),
            ),
        ),
    }
}

async fn collect(
    mut s: Streaming<ProbeEvent>,
    mut on_result: impl FnMut(&ProbeSizeResult),
) -> (Vec<ProbeSizeResult>, Option<ProbeSummary>, Option<String>) {
    let (mut res, mut sum) = (Vec::new(), None);
    loop {
        match s.message().await {
            Ok(Some(ev)) => match ev.event {
                Some(probe_event::Event::Result(r)) => {
                    on_result(&r);
                    res.push(r);
                }
                Some(probe_event::Event::Summary(x)) => sum = Some(x),
                None => {}
            },
            Ok(None) => return (res, sum, None),
            Err(st) => {
                let msg =
                    if st.code() == tonic::Code::Unknown || st.code() == tonic::Code::Unavailable {
                        format!("connection lost ({})", st.message())
                    } else {
                        st.message().to_string()
                    };
                return (res, sum, Some(msg));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Dropped(std::sync::Arc<std::sync::atomic::AtomicBool>);
    impl Drop for Dropped {
        fn drop(&mut self) {
            self.0.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }

    #[tokio::test]
    async fn a_failed_driver_cuts_a_responder_that_keeps_serving() {
        let dropped = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let guard = Dropped(std::sync::Arc::clone(&dropped));
        let driver = async { (Vec::new(), None, Some("transfer failed".to_string())) };
        let responder = async move {
            let _g = guard;
            std::future::pending::<Collected>().await
        };
        let t0 = std::time::Instant::now();
        let (d, r) = pair(driver, responder, Duration::from_millis(200)).await;
        assert!(
            t0.elapsed() < Duration::from_secs(2),
            "waited {:?}",
            t0.elapsed()
        );
        assert_eq!(d.2.as_deref(), Some("transfer failed"));
        assert!(
            r.2.as_deref()
                .is_some_and(|e| e.contains("after the driver failed")),
            "{r:?}"
        );
        assert!(
            dropped.load(std::sync::atomic::Ordering::SeqCst),
            "the responder's stream is dropped"
        );
    }

    #[tokio::test]
    async fn a_healthy_pair_waits_for_the_responder() {
        let driver = async { (Vec::new(), None, None) };
        let responder = async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            (Vec::new(), Some(ProbeSummary::default()), None)
        };
        let (_, r) = pair(driver, responder, Duration::from_millis(10)).await;
        assert!(r.1.is_some() && r.2.is_none(), "{r:?}");
        let early = async { (Vec::new(), None, Some("responder failed".to_string())) };
        let slow_driver = async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            (Vec::new(), Some(ProbeSummary::default()), None)
        };
        let (d, r) = pair(slow_driver, early, Duration::from_millis(10)).await;
        assert!(d.1.is_some() && r.2.is_some());
    }

    #[test]
    fn transports_parse_and_name() {
        let t = parse_transport("libfabric:efa").expect("efa");
        assert_eq!(
            (t.library.as_str(), t.provider.as_str()),
            ("libfabric", "efa")
        );
        assert_eq!(transport_name(&t), "libfabric:efa");
        let u = parse_transport("ucx:rc,cuda_copy").expect("ucx");
        assert_eq!(u.ucx_tls, "rc,cuda_copy");
        assert_eq!(transport_name(&parse_transport("ucx").expect("ucx")), "ucx");
        assert!(parse_transport("libfabric").is_err(), "provider required");
        assert!(parse_transport("nccl").is_err());
        let n = parse_transport("nixl").expect("nixl");
        assert_eq!(
            (n.library.as_str(), n.nixl_backend.as_str()),
            ("nixl", "UCX")
        );
        assert_eq!(
            transport_name(&parse_transport("nixl:libfabric").expect("lf")),
            "nixl:LIBFABRIC"
        );
        assert!(parse_transport("nixl:gds").is_err());
    }
}
