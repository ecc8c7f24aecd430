//! servescope per-node agent: collectors (GPU through NVML, host through sysinfo and
//! sysfs, RDMA through sysfs), a bounded ring buffer of samples, and the gRPC and
//! Prometheus endpoints that serve them.
//!
//! Data flows one way: collectors → [`ring::Ring`] → `StreamTelemetry` / `/metrics`.

pub mod auth;
pub mod clock;
pub mod collect;
pub mod config;
pub mod exposition;
pub mod metrics_http;
pub mod metrics_tls;
pub mod probe;
pub mod ring;
pub mod runtime;
pub mod service;
pub mod shard;
#[cfg(any(test, feature = "test-support"))]
pub mod test_pki;

pub use config::AgentConfig;
pub use runtime::{start, start_with, AgentHandle};
