//! The demo's loopback fabric probe: a second agent started here, the first
//! transport that works of libfabric shm, libfabric tcp and UCX tcp, stored as a
//! fabric run whose bandwidth is the KV path's capacity.

use servescope_agent::AgentConfig;
use servescope_coordinator::analysis::fabric::units;
use servescope_coordinator::orchestration::fabric;
use servescope_coordinator::store::ProbeOutcome;
use servescope_coordinator::store::RunKind;
use servescope_coordinator::{AgentEndpoint, Store};
use servescope_proto::v1::ProbePlanMsg;

/// What the probe found.
pub struct Probed {
    pub transport: String,
    /// The stored fabric run.
    pub run: i64,
    /// Bandwidth at the largest size, GB/s.
    pub capacity_gbps: f64,
    /// One line per size, and the transport truth.
    pub lines: Vec<String>,
}

fn plan() -> ProbePlanMsg {
    ProbePlanMsg {
        sizes: vec![64 << 10, 1 << 20],
        ops: vec!["tag".into()],
        window: 8,
        iterations: 20,
        latency_iterations: 50,
        warmup: 2,
        duration_per_size_ms: 1000,
        max_duration_ms: 30_000,
        peer_timeout_ms: 5000,
        ..Default::default()
    }
}

/// Probes from `ep` to a second agent; `Ok(None)` where no transport works here
/// (the reasons are in the returned notes).
pub async fn probe(
    ep: &AgentEndpoint,
    db: &std::path::Path,
    notes: &mut Vec<String>,
) -> anyhow::Result<Option<Probed>> {
    let mut cfg = AgentConfig::loopback(ep.token.clone());
    cfg.metrics_listen = None;
    cfg.kmsg = false;
    cfg.startup_watch = false;
    let peer = servescope_agent::start(cfg).await?;
    let to = AgentEndpoint::new(peer.grpc_addr.to_string(), ep.token.clone());
    let plan = plan();
    let mut found = None;
    for t in ["libfabric:shm", "libfabric:tcp", "ucx:tcp"] {
        let Ok(tr) = fabric::parse_transport(t) else {
            continue;
        };
        match fabric::probe(ep, &to, &tr, &plan, |_| {}).await {
            Ok(o) if o.error.is_none() && !o.results.is_empty() => {
                found = Some((t, o));
                break;
            }
            Ok(o) => notes.push(format!(
                "{t}: {}",
                o.error.unwrap_or_else(|| "no result".into())
            )),
            Err(e) => notes.push(format!("{t}: {e}")),
        }
    }
    peer.shutdown().await;
    let Some((t, o)) = found else {
        return Ok(None);
    };
    let mut store = Store::open(db)?;
    let now = servescope_proto::now_ns();
    let run = store.create_run(RunKind::Fabric, t, now, "{}")?;
    store.save_fabric_probe(run, &o)?;
    store.finish_run(run, now, "done")?;
    Ok(Some(Probed {
        transport: t.to_string(),
        run,
        capacity_gbps: o
            .results
            .iter()
            .max_by_key(|r| r.size)
            .map_or(0.0, |r| r.bandwidth_bps / 1e9),
        lines: lines(t, &o),
    }))
}

fn lines(t: &str, o: &ProbeOutcome) -> Vec<String> {
    let mut v: Vec<String> = o
        .results
        .iter()
        .map(|r| {
            format!(
                "{t}: {:>7} {} | latency p50 {}",
                units::fmt_size(r.size),
                units::fmt_rate(r.bandwidth_bps),
                r.latency_p50_ns
                    .map_or("-".into(), |n| format!("{:.1} µs", n as f64 / 1e3))
            )
        })
        .collect();
    if let Some(tt) = o.driver.as_ref().and_then(|d| d.truth.as_ref()) {
        v.push(format!(
            "carried by: {} {} provider={} lanes=[{}]",
            tt.library,
            tt.version,
            tt.provider,
            tt.lanes.join(", ")
        ));
    }
    v
}
