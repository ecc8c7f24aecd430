//! Everything the agent measures, one folder per area: [`gpu`] (NVML), [`host`]
//! (procfs, sysinfo, netdev sysfs), [`rdma`] (sysfs), [`kmsg`] (kernel log Xid
//! lines), [`startup_watch`] (serving processes' startup logs) and [`selfstats`]
//! (the agent's own cost).
//!
//! Two shapes of producer: a [`Collector`] is read on a shared tick grid by
//! [`spawn`], which measures each call's cost; an [`EventSource`] runs its own loop
//! and pushes when something happens (NVML XID events, /dev/kmsg, log tails, the slow
//! GPU sampler). [`registry::build`] turns the configuration into the list of both.
//! Within an area, reads (I/O) are kept apart from the pure functions that turn
//! what was read into samples, so the latter are tested on canned values.

mod cadence;
mod collector;
pub mod gpu;
pub mod host;
pub mod kmsg;
pub mod rdma;
pub mod registry;
pub mod selfstats;
mod source;
pub mod startup_watch;
pub mod sysfs;

pub use cadence::Cadence;
pub use collector::{spawn, CallCosts, Collector, Shutdown};
pub use registry::{build, Found, Producer, Registry};
pub use source::{spawn_source, EventSource, RunContext};
