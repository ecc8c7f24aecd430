//! The experiment's checks of its nodes: `fabric check` on every agent before the
//! first point (stored as a `fabric-check` run carrying the findings), and the
//! agents' telemetry of each deployment's minutes, recorded from their buffers
//! after its points (a `record` run).

use std::path::Path;
use std::time::Duration;

use serde::Serialize;
use servescope_proto::v1::{FabricCheckRequest, GetInventoryRequest};

use crate::connect::{connect, AgentEndpoint};
use crate::fabric::check;
use crate::record::{record, RecordConfig};

/// One preflight finding.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct PreflightFinding {
    pub agent: String,
    pub severity: String,
    pub title: String,
    pub evidence: String,
    pub fix: String,
}

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
        let fc = c.fabric_check(FabricCheckRequest {}).await;
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
pub async fn record_telemetry(
    agents: &[AgentEndpoint],
    db: &Path,
    label: &str,
) -> Result<i64, String> {
    let mut rc = RecordConfig::new(agents.to_vec(), Duration::from_secs(2), db.to_path_buf());
    rc.include_history = true;
    rc.label = label.to_string();
    record(rc, Default::default())
        .await
        .map(|o| o.run_id)
        .map_err(|e| e.to_string())
}
