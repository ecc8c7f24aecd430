//! servescope per-node agent: collectors (GPU through NVML, host through sysinfo and
//! sysfs, RDMA through sysfs), a bounded ring buffer of samples, and the gRPC and
//! Prometheus endpoints that serve them.
//!
//! Data flows one way: collectors → [`ring::Ring`] → `StreamTelemetry` / `/metrics`.

pub mod auth;
pub mod clock;
pub mod collector;
pub mod config;
pub mod exposition;
pub mod gpu;
pub mod host;
pub mod kmsg;
pub mod metrics_http;
pub mod netdev;
pub mod probe;
pub mod procstat;
pub mod rdma;
pub mod ring;
pub mod runtime;
pub mod selfstats;
pub mod service;
pub mod shard;
pub mod watch;

pub use config::AgentConfig;
pub use runtime::{start, AgentHandle};
