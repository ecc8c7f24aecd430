//! servescope fabric probes: bandwidth and latency between two agents over libfabric
//! or UCX, both loaded at run time, and the evidence of which transport carried the
//! bytes. Every `unsafe` FFI call of the probe engine lives in this crate.
//!
//! A probe has two sides. The *responder* opens an endpoint first and hands its
//! address (plus, for RMA, a remote key to its registered buffer) to the coordinator;
//! the *driver* opens its own endpoint, and both are given each other's address
//! out of band (gRPC). Then both run the same [`ProbePlan`]: for each message size,
//! a ping-pong latency phase, then a windowed bandwidth phase per operation.
//! Both sides implement every transport, so the in-band protocol (who sends what
//! when) is private to each transport module. A transport is one implementation of
//! [`ProbeEndpoint`], chosen by [`open_endpoint`].
//!
//! * [`libfabric`], [`ucx`]: the two transports (bindings, endpoint, protocol) and the
//!   parsers of their reference tools' output (`fi_pingpong`, `ucx_perftest`).
//! * [`plan`]: the plan, its results and the transport truth.
//! * [`cuda`]: the CUDA driver loaded at run time, for device-memory probes.
//! * [`libs`]: which fabric library files are present, and their versions.

pub mod cuda;
pub(crate) mod hostbuf;
pub mod libfabric;
pub mod libs;
pub mod open;
pub mod plan;
pub mod ucx;

pub use open::{fill_check, open_endpoint};
pub use plan::{MemKind, Op, PlanError, ProbePlan, SizeResult, TransportTruth};

use std::time::Duration;

/// What one side of a probe publishes to the other, out of band.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerInfo {
    /// Transport-specific endpoint address (libfabric `fi_getname`, UCX worker address).
    pub address: Vec<u8>,
    /// Transport-specific description of a registered buffer for RMA (address,
    /// length and key, or UCX packed rkey). Empty when RMA is not offered.
    pub rma: Vec<u8>,
}

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
    #[error("probe cancelled")]
    Cancelled,
    #[error(transparent)]
    Plan(#[from] PlanError),
}

/// One side of a probe over one transport. Blocking: callers run it on a thread of
/// its own. `cancel` is polled in every progress loop so that a dead peer or a
/// coordinator's cancel ends the probe within `plan.peer_timeout`.
pub trait ProbeEndpoint: Send {
    /// This side's address and RMA key, to hand to the peer.
    fn local_info(&self) -> PeerInfo;
    /// Connects to (inserts) the peer. Called once, before `run_*`.
    fn connect(&mut self, peer: &PeerInfo) -> Result<(), FabricError>;
    /// Runs the plan as the driving side; returns one result per (size, op).
    fn run_driver(
        &mut self,
        plan: &ProbePlan,
        cancel: &dyn Fn() -> bool,
    ) -> Result<Vec<SizeResult>, FabricError>;
    /// Runs the plan as the responding side; returns when the driver is done.
    fn run_responder(
        &mut self,
        plan: &ProbePlan,
        cancel: &dyn Fn() -> bool,
    ) -> Result<(), FabricError>;
    /// What carried the bytes, as far as the library says (filled after connect).
    fn truth(&self) -> TransportTruth;
}
