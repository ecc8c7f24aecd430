//! The interface every transport implements: one side of a probe, and what it
//! publishes to its peer out of band.

use crate::error::FabricError;
use crate::plan::{ProbePlan, SizeResult, TransportTruth};

/// What one side of a probe publishes to the other, out of band.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerInfo {
    /// Transport-specific endpoint address (libfabric `fi_getname`, UCX worker address).
    pub address: Vec<u8>,
    /// Transport-specific description of a registered buffer for RMA (address,
    /// length and key, or UCX packed rkey). Empty when RMA is not offered.
    pub rma: Vec<u8>,
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
