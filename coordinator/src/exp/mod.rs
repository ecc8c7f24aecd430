//! Experiments as code: an experiment file ([`file`]) names deployments and
//! a workload grid; [`plan`] expands it into points; [`runner`] runs the points not yet
//! stored (deploy, wait ready, load through local or agent-hosted shards
//! ([`shards`]), store each point atomically, teardown); [`analysis`] computes
//! horizontal scaling and the deployment matrix; [`report`] writes one HTML page.

pub mod analysis;
pub mod file;
pub mod plan;
pub mod preflight;
pub mod ray_step;
pub mod report;
pub mod runner;
pub mod shards;

pub use file::{parse, ExperimentFile};

/// Errors of experiments.
#[derive(Debug, thiserror::Error)]
pub enum ExpError {
    #[error("experiment file, line {line}{}: {message}", if field.is_empty() { String::new() } else { format!(", field {field}") })]
    File {
        line: usize,
        field: String,
        message: String,
    },
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("deployment {deployment}: {message}")]
    Deploy { deployment: String, message: String },
    #[error("shard on {agent}: {message}")]
    Shard { agent: String, message: String },
    #[error("interrupted: {done} point(s) stored, {left} left; run the same file again to finish")]
    Interrupted { done: usize, left: usize },
    #[error("no experiment named {0:?} in the store")]
    Unknown(String),
    #[error(transparent)]
    Metrics(#[from] crate::load::metrics::MetricsError),
}
