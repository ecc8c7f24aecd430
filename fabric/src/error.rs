//! The probe engine's error type.

use std::time::Duration;

use crate::plan::PlanError;

/// Errors from the probe engine. Each names what failed and, for library calls,
/// the function and the library's own message.
#[derive(Debug, thiserror::Error)]
pub enum FabricError {
    #[error("{library} unavailable ({reason})")]
    Unavailable {
        library: &'static str,
        reason: String,
    },
    #[error("{call} failed: {message} ({code})")]
    Call {
        call: &'static str,
        code: i64,
        message: String,
    },
    #[error("operation {0} is not offered by this transport/provider")]
    Unsupported(String),
    #[error("memory type {0}: {1}")]
    Memory(&'static str, String),
    #[error("invalid peer information: {0}")]
    BadPeer(String),
    #[error("timed out after {0:?} waiting for {1}")]
    Timeout(Duration, &'static str),
    /// NIXL cannot run here: no Python, no NIXL package in it, a backend plugin that
    /// does not load, no GPU for GPU memory.
    #[error("NIXL not available on this node ({0})")]
    NixlUnavailable(String),
    /// The NIXL driver refused a request or a transfer failed (`kind` as the driver
    /// names it: refused, transfer, verify, bad_request, exited).
    #[error("NIXL {cmd}: {kind}: {message}")]
    Nixl {
        cmd: String,
        kind: String,
        message: String,
    },
    #[error(
        "contents mismatch after {op} of {size} bytes: first differing byte at offset \
         {offset} (expected {expected:#04x}, got {got:#04x})"
    )]
    Mismatch {
        op: &'static str,
        size: u64,
        offset: u64,
        expected: u8,
        got: u8,
    },
    #[error("probe cancelled")]
    Cancelled,
    #[error(transparent)]
    Plan(#[from] PlanError),
}
