//! The findings and the report of a stored run, as `demo` and `selftest` read them:
//! one function over the diagnosis, the rule ids it knows, one over the report.

use anyhow::Context;
use servescope_coordinator::pd::analyze::{attribute, AttributeOptions};
use servescope_coordinator::pd::Finding;
use servescope_coordinator::store::RunKind;
use servescope_coordinator::Store;

/// The rule ids the diagnosis called by [`findings`] can raise (the P/D rules).
pub const AVAILABLE_RULES: &[&str] = &[
    "kv_slow_transport",
    "kv_path_emulated_over_tcp",
    "kv_post_dominates",
    "kv_rate_above_line_rate",
    "kv_transfer_failures",
    "kv_serialising",
    "prefill_bound",
    "decode_bound",
    "proxy_overhead",
    "stream_batching",
    "client_saturation",
    "gibberish_after_transfer",
];

/// Whether the diagnosis has a rule with this id.
pub fn rule_available(rule: &str) -> bool {
    AVAILABLE_RULES.contains(&rule)
}

/// The findings of run `run` (most severe first), as `servescope diagnose RUN` gives
/// them; `None` where the diagnosis reads nothing of this kind of run.
pub fn findings(store: &Store, run: i64) -> anyhow::Result<Option<Vec<Finding>>> {
    let kind = store
        .run(run)
        .with_context(|| format!("reading run {run}"))?
        .kind;
    if !matches!(kind, RunKind::Pd | RunKind::Load) {
        return Ok(None);
    }
    let at = attribute(store, run, &AttributeOptions::default())
        .with_context(|| format!("diagnosing run {run}"))?;
    Ok(Some(at.findings))
}

/// The report of a run, written to `path` (the P/D attribution's page).
pub fn write_report(store: &Store, run: i64, path: &std::path::Path) -> anyhow::Result<()> {
    let at = attribute(store, run, &AttributeOptions::default())
        .with_context(|| format!("attributing run {run}"))?;
    std::fs::write(path, servescope_coordinator::pd::report::render(&at, 10))
        .with_context(|| format!("writing {}", path.display()))
}
