//! Fabric facts judged and summarised: the preflight judge (`check`, with its
//! KV-path and NIXL-telemetry parts), the pairwise bandwidth matrix, and the size
//! and rate units users type and read.

pub mod check;
pub mod kv_check;
pub mod matrix;
pub mod nixl_telemetry;
pub mod units;
