//! `servescope diagnose RUN` for every run kind: one registry of rules reading
//! whatever the run holds — its load points and requests, the agents' telemetry
//! (its own samples or its linked `record` run's), and, for runs with load points,
//! the P/D attribution whose rules ([`crate::analysis::pd::diagnose`]) keep their ids.
//!
//! * [`telemetry_gpu`], [`xid`]: throttling, XIDs, PCIe, NVLink, GPU memory.
//! * [`telemetry_nic`]: NIC/EFA links down or flapping, RDMA retransmits.
//! * [`kv`]: KV over TCP, KV served from expired leases.
//! * [`load`]: every request failed, wrong output, past saturation, client lag.
//! * [`agent`]: the agent's own overhead.
//!
//! Each rule is silent on a clean run and names exactly its fault; thresholds are
//! constants at the top of each module.

pub mod agent;
pub mod kv;
pub mod load;
pub mod telemetry;
pub mod telemetry_gpu;
pub mod telemetry_nic;
pub mod xid;

pub use crate::analysis::finding::{Finding, Severity};

use crate::analysis::pd::analyze::{attribute, AttributeOptions};
use crate::analysis::pd::{Attribution, PdError};
use crate::store::{PointRow, RunKind, RunRow, Store, StoreError, StoredRequest};
use telemetry::Telemetry;

/// Errors of a diagnosis.
#[derive(Debug, thiserror::Error)]
pub enum DiagnoseError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Pd(#[from] PdError),
}

/// A load point with its measured requests.
#[derive(Debug, Clone)]
pub struct PointFacts {
    pub row: PointRow,
    pub requests: Vec<StoredRequest>,
}

/// Everything a run holds that the rules read.
#[derive(Debug, Clone)]
pub struct RunFacts {
    pub run: RunRow,
    pub points: Vec<PointFacts>,
    pub telemetry: Option<Telemetry>,
    pub attribution: Option<Attribution>,
}

impl RunFacts {
    /// Whether the run went through a disaggregated (P/D) deployment.
    pub fn disaggregated(&self) -> bool {
        self.attribution
            .as_ref()
            .map_or(self.run.kind == RunKind::Pd, |a| a.disaggregated)
    }

    /// Reads run `run` from the store; `opts` tune the P/D attribution.
    pub fn load(
        store: &Store,
        run: i64,
        opts: &AttributeOptions,
    ) -> Result<RunFacts, DiagnoseError> {
        let row = store.run(run)?;
        let mut points = Vec::new();
        for p in store.points(run)? {
            let requests = store.point_requests(p.id)?;
            points.push(PointFacts { row: p, requests });
        }
        let source = if row.samples > 0 {
            Some(run)
        } else {
            store.run_links(run)?.telemetry_run
        };
        let telemetry = match source {
            Some(s) => Some(Telemetry::load(store, s, row.started_ns)?),
            None => None,
        };
        let attribution = if points.is_empty() {
            None
        } else {
            Some(attribute(store, run, opts)?)
        };
        Ok(RunFacts {
            run: row,
            points,
            telemetry,
            attribution,
        })
    }
}

/// A rule over the agents' telemetry.
type TelemetryRule = fn(&Telemetry) -> Option<Finding>;
/// A rule over the whole run.
type RunRule = fn(&RunFacts) -> Option<Finding>;

/// Every telemetry rule, in the order findings of one severity are listed.
pub const TELEMETRY_RULES: &[(&str, TelemetryRule)] = &[
    ("gpu_xid", xid::gpu_xid),
    ("gpu_throttled", telemetry_gpu::gpu_throttled),
    ("nvlink_inactive", telemetry_gpu::nvlink_inactive),
    ("pcie_link_degraded", telemetry_gpu::pcie_link_degraded),
    ("pcie_replays_rising", telemetry_gpu::pcie_replays_rising),
    ("gpu_memory_near_full", telemetry_gpu::gpu_memory_near_full),
    ("nic_link_down", telemetry_nic::nic_link_down),
    ("nic_link_flapping", telemetry_nic::nic_link_flapping),
    (
        "rdma_retransmits_rising",
        telemetry_nic::rdma_retransmits_rising,
    ),
    ("agent_overhead_high", agent::agent_overhead_high),
];

/// Every rule over the run's load points and KV path.
pub const RUN_RULES: &[(&str, RunRule)] = &[
    ("all_requests_failed", load::all_requests_failed),
    ("wrong_output", load::wrong_output),
    ("load_past_saturation", load::load_past_saturation),
    ("load_client_saturated", load::load_client_saturated),
    ("kv_over_tcp", kv::kv_over_tcp),
    ("kv_expired_leases", kv::kv_expired_leases),
];

/// Every rule id the registry can raise: the P/D rules', the telemetry rules' and
/// the run rules'.
pub fn rule_ids() -> impl Iterator<Item = &'static str> {
    crate::analysis::pd::diagnose::RULES
        .iter()
        .flat_map(|(ids, _)| ids.iter().copied())
        .chain(TELEMETRY_RULES.iter().map(|(id, _)| *id))
        .chain(RUN_RULES.iter().map(|(id, _)| *id))
}

/// Applies every rule to what the run holds; findings by severity, most severe first.
pub fn diagnose_facts(f: &RunFacts) -> Vec<Finding> {
    let mut out: Vec<Finding> = Vec::new();
    if let Some(a) = &f.attribution {
        // The P/D rules run on a disaggregated run; on a plain load run the load
        // rules above name what they would have (wrong output, client lag).
        if a.disaggregated {
            out.extend(a.findings.iter().cloned());
        }
    }
    if let Some(t) = &f.telemetry {
        out.extend(TELEMETRY_RULES.iter().filter_map(|(_, r)| r(t)));
    }
    out.extend(RUN_RULES.iter().filter_map(|(_, r)| r(f)));
    out.sort_by_key(|x| std::cmp::Reverse(x.severity));
    out
}

/// Diagnoses run `run` with default options.
pub fn diagnose_run(store: &Store, run: i64) -> Result<Vec<Finding>, DiagnoseError> {
    diagnose_run_with(store, run, &AttributeOptions::default())
}

/// Diagnoses run `run`; `opts` tune the P/D attribution (capacity, engine logs).
pub fn diagnose_run_with(
    store: &Store,
    run: i64,
    opts: &AttributeOptions,
) -> Result<Vec<Finding>, DiagnoseError> {
    Ok(diagnose_facts(&RunFacts::load(store, run, opts)?))
}

#[cfg(test)]
mod tests;
