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
//! * `verify`: the contents check after each size (pattern, complement, compare).
//! * [`libs`]: which fabric library files are present, and their versions.
//! * [`nixl`]: NIXL-level probes through the engine's own Python and NIXL.

pub mod cuda;
mod endpoint;
pub mod engine_libs;
mod error;
pub(crate) mod hostbuf;
mod libcache;
pub mod libfabric;
pub mod libs;
pub mod nixl;
pub mod open;
pub mod plan;
mod stats;
#[cfg(any(test, feature = "test-support"))]
pub mod test_support;
pub mod ucx;
mod verify;

pub use endpoint::{PeerInfo, ProbeEndpoint};
pub use error::FabricError;
pub use open::{fill_check, open_endpoint};
pub use plan::{
    AvgP99, Finding, MemKind, Op, PlanError, ProbePlan, SizeResult, TransportTruth, Verify,
    XferStats,
};
