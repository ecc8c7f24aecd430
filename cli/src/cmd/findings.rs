//! The findings and the report of stored runs, as `demo` and `selftest` read them:
//! the diagnosis registry's findings and rule ids, and the unified report.

use anyhow::Context;
use servescope_coordinator::analysis::diagnose::{diagnose_run, rule_ids, Finding};
use servescope_coordinator::Store;

/// Whether the diagnosis has a rule with this id.
pub fn rule_available(rule: &str) -> bool {
    rule_ids().any(|id| id == rule)
}

/// The findings of run `run` (most severe first), as `servescope diagnose RUN` gives
/// them (the one registry every run kind goes through).
pub fn findings(store: &Store, run: i64) -> anyhow::Result<Option<Vec<Finding>>> {
    Ok(Some(
        diagnose_run(store, run).with_context(|| format!("diagnosing run {run}"))?,
    ))
}

/// The report of `runs` (`servescope report RUN…`'s page), written to `path`.
pub fn write_report(store: &Store, runs: &[i64], path: &std::path::Path) -> anyhow::Result<()> {
    use servescope_coordinator::report::unified;
    let sources = unified::gather(store, runs).with_context(|| format!("reading runs {runs:?}"))?;
    std::fs::write(path, unified::render(&sources))
        .with_context(|| format!("writing {}", path.display()))
}
