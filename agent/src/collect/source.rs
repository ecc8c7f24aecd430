//! The contract of producers that push: each runs its own loop on its own thread
//! (they block in the driver, in `poll`, or sleep on their own cadence) and writes
//! into the ring, or into state a [`super::Collector`] reads, until shutdown.

use std::sync::Arc;
use std::thread::JoinHandle;

use super::{CallCosts, Shutdown};
use crate::ring::Ring;

/// What a running producer may use: where samples go, where call costs are
/// summed, and the shutdown signal.
#[derive(Clone)]
pub struct RunContext {
    pub ring: Arc<Ring>,
    pub costs: CallCosts,
    pub shutdown: Shutdown,
}

/// A producer that pushes when something happens.
pub trait EventSource: Send + 'static {
    /// Short name, used for the thread.
    fn name(&self) -> &'static str;
    /// Runs until `ctx.shutdown` is triggered.
    fn run(self: Box<Self>, ctx: RunContext);
}

/// Runs `source` on its own thread.
pub fn spawn_source(
    source: Box<dyn EventSource>,
    ctx: RunContext,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(source.name().to_string())
        .spawn(move || source.run(ctx))
}
