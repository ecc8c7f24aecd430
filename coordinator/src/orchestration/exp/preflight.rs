//! The experiment's checks of its nodes: `fabric check` on every agent before the
//! first point (stored as a `fabric-check` run carrying the findings), and the
//! agents' telemetry of each deployment's minutes, recorded from their buffers
//! after its points (a `record` run); and, with `analyses: [startup]`, each deployed
//! deployment's time from its deploy step to a ready endpoint, with the startup phases
//! the agents' log watchers streamed meanwhile.

use std::path::Path;
use std::time::Duration;

use servescope_proto::v1::{FabricCheckRequest, GetInventoryRequest};

use crate::analysis::exp::{PreflightFinding, StartupRow};
use crate::analysis::fabric::check;
use crate::orchestration::connect::{connect, AgentEndpoint};
use crate::orchestration::record::{record, RecordConfig};
use crate::store::{RunKind, Store, StoreError, INTERRUPTED};

/// Judges every agent's fabric (an agent that cannot be asked is a finding too).
pub async fn check(agents: &[AgentEndpoint]) -> Vec<PreflightFinding> {
    let mut out = Vec::new();
    for ep in agents {
        let mut f = |severity: &str, title: String, evidence: String, fix: String| {
            out.push(PreflightFinding {
                agent: ep.address.clone(),
                severity: severity.into(),
                title,
                evidence,
                fix,
            })
        };
        let mut c = match connect(ep).await {
            Ok(c) => c,
            Err(e) => {
                f(
                    "error",
                    "agent unreachable".into(),
                    e.to_string(),
                    "start the agent or fix the address/token".into(),
                );
                continue;
            }
        };
        let inv = c.get_inventory(GetInventoryRequest {}).await;
        let fc = c.fabric_check(FabricCheckRequest::default()).await;
        match (inv, fc) {
            (Ok(inv), Ok(fc)) => {
                for x in check::judge(&inv.into_inner(), &fc.into_inner()) {
                    f(&x.severity.to_string(), x.title, x.evidence, x.fix);
                }
            }
            (Err(e), _) | (_, Err(e)) => f(
                "error",
                "fabric check failed".into(),
                e.message().to_string(),
                String::new(),
            ),
        }
    }
    out
}

/// Records the agents' buffers (the last minutes) into the store; returns the run.
/// An earlier recording of this label whose process died (an experiment killed
/// while recording) is resumed from its stored sequences instead, so nothing it
/// stored is stored twice.
pub async fn record_telemetry(
    agents: &[AgentEndpoint],
    db: &Path,
    label: &str,
) -> Result<i64, String> {
    let mut rc = RecordConfig::new(agents.to_vec(), Duration::from_secs(2), db.to_path_buf());
    rc.include_history = true;
    rc.label = label.to_string();
    rc.resume = interrupted_recording(db, label).map_err(|e| e.to_string())?;
    record(rc, Default::default())
        .await
        .map(|o| o.run_id)
        .map_err(|e| e.to_string())
}

/// The newest interrupted `record` run labelled `label`.
fn interrupted_recording(db: &Path, label: &str) -> Result<Option<i64>, StoreError> {
    Ok(Store::open(db)?
        .runs()?
        .into_iter()
        .rev()
        .find(|r| r.kind == RunKind::Record && r.label == label && r.status == INTERRUPTED)
        .map(|r| r.id))
}

/// Times the startup and, with agents, parses the startup lines they streamed.
pub async fn startup(
    agents: &[AgentEndpoint],
    db: &Path,
    exp: &str,
    deployment: &str,
    ready_s: f64,
) -> StartupRow {
    let mut row = StartupRow {
        deployment: deployment.to_string(),
        ready_s,
        ..Default::default()
    };
    if agents.is_empty() {
        row.note = Some("no agents: only the time to ready is known".into());
        return row;
    }
    let run = match record_telemetry(
        agents,
        db,
        &format!("{exp}: {deployment} startup telemetry"),
    )
    .await
    {
        Ok(r) => r,
        Err(e) => {
            row.note = Some(format!("recording the agents failed: {e}"));
            return row;
        }
    };
    let parsed = crate::store::Store::open(db)
        .map_err(|e| e.to_string())
        .and_then(|s| {
            let year = servescope_proto::ext::year_of_ns(servescope_proto::now_ns() as i64);
            crate::analysis::startup::agent_logs::parse_run(
                &s,
                run,
                &crate::analysis::startup::ParseOptions::new(year),
            )
            .map_err(|e| e.to_string())
        });
    match parsed {
        Ok(logs) => {
            for l in logs {
                for p in &l.parse.timeline.phases {
                    if let Some(sec) = p.seconds() {
                        row.phases.push((p.kind.label().to_string(), sec));
                    }
                }
            }
            if row.phases.is_empty() {
                row.note = Some(format!("run {run}: the agents streamed no startup log line (are the engine logs files the watcher sees?)"));
            }
        }
        Err(e) => row.note = Some(format!("parsing the agents' startup lines: {e}")),
    }
    row
}
