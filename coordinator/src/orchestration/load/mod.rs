//! The client-side load engine (the `servescope-loadgen` crate, re-exported here) and
//! what the coordinator adds: sweeps stored in the store ([`runner`]). Readers of
//! other tools' results are in [`crate::analysis::load`].

pub use servescope_loadgen::{chunk, http, metrics, request, schedule, sse, stats, workload};

pub mod runner;
