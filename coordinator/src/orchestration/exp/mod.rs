//! Experiments as code: an experiment file ([`file`]) names deployments and
//! a workload grid; [`plan`] expands it into points; [`runner`] runs the points not yet
//! stored (deploy, wait ready, load through local or agent-hosted shards
//! ([`shards`]), store each point atomically, teardown); [`crate::analysis::exp`]
//! computes horizontal scaling and the deployment matrix; [`crate::report::exp`]
//! writes one HTML page.

pub mod file;
pub mod plan;
pub mod preflight;
pub mod ray_step;
pub mod runner;
pub mod shards;

pub use file::{parse, ExperimentFile};
