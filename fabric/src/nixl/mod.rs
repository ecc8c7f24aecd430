//! NIXL-level probes: the serving engine's own NIXL (its Python package and the UCX
//! bundled with it) moving data the way vLLM's NixlConnector does, driven through a
//! supervised child process that runs `fabric/py/nixl_driver.py` with the engine's
//! Python.
//!
//! * [`python`]: which interpreter (`--python`, `--engine-venv`, `--like-pid`, PATH).
//! * [`child`]: the child process (private files, bounded output, deadlines, kill).
//! * [`reply`]: the driver's `hello` and `run` answers as engine types.
//! * [`lanes`]: what UCX picked per direction, from its protocol tables.
//! * [`endpoint`]: [`NixlEndpoint`], one side of a probe.
//! * [`sizing`]: one request's KV transfer shape from a model's `config.json`.
//! * [`telemetry`]: NIXL's own telemetry buffers, as its reader prints them, summed up.
//! * [`telemetry_read`]: finding NIXL's reader in the engine's wheel and running it.

pub mod child;
pub mod endpoint;
pub mod lanes;
pub mod python;
pub mod reply;
pub mod sizing;
pub mod telemetry;
pub mod telemetry_read;

use std::time::{Duration, Instant};

use serde_json::json;

pub use endpoint::{NixlEndpoint, NixlOptions};
pub use python::{Python, PythonChoice};
pub use reply::Hello;

use crate::error::FabricError;
use child::{DriverChild, Spawn};

/// Starts a driver with `python` and asks what NIXL offers. A Python that cannot
/// run the driver, or one without NIXL, is "NIXL not available (why)".
pub(crate) fn start(
    python: &Python,
    spawn: Spawn,
    wait: Duration,
) -> Result<(DriverChild, Hello), FabricError> {
    let mut child = DriverChild::start(&spawn)?;
    let never = || false;
    match child.request(
        json!({"cmd": "hello"}),
        Instant::now() + wait,
        &never,
        &mut |_| {},
    ) {
        Ok(v) => Ok((child, Hello::from_json(&v))),
        Err(FabricError::Nixl { kind, message, .. }) if kind == "exited" => {
            Err(FabricError::NixlUnavailable(format!(
                "{} ({}) did not run the driver: {message}",
                python.path.display(),
                python.how
            )))
        }
        Err(FabricError::Timeout(..)) => Err(FabricError::NixlUnavailable(format!(
            "{} ({}) did not answer within {wait:?}",
            python.path.display(),
            python.how
        ))),
        Err(e) => Err(e),
    }
}

/// What NIXL offers on this node with `python`, within `wait` (for `fabric check`).
pub fn node_hello(python: &Python, wait: Duration) -> Result<Hello, FabricError> {
    let spawn = Spawn {
        python: python.path.clone(),
        max_bytes: 1 << 20,
        timeout: wait,
        ..Default::default()
    };
    start(python, spawn, wait).map(|(_, h)| h)
}
