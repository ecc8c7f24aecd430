//! The client-side load engine (the `servescope-loadgen` crate, re-exported here) and
//! what the coordinator adds: sweeps stored in the store ([`runner`]) and readers of
//! other tools' results ([`vllm_json`], [`guidellm`]).

pub use servescope_loadgen::{chunk, http, metrics, request, schedule, sse, stats, workload};

pub mod guidellm;
pub mod runner;
pub mod vllm_json;
