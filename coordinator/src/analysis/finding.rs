//! A named finding: what the diagnosis rules of every run kind produce (the P/D
//! attribution's rules and the telemetry, load and KV rules of [`crate::analysis::diagnose`]).

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Critical,
}

/// A named finding.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub rule: &'static str,
    pub severity: Severity,
    pub title: String,
    pub evidence: Vec<String>,
    pub fix: String,
}
