//! A read due every so often on a collector's own clock.

use std::time::{Duration, Instant};

/// A read due every `every` from a first time on; a late look skips the missed
/// ones rather than catching up. A zero `every` is due at every look.
#[derive(Debug, Clone, Copy)]
pub struct Cadence {
    next: Instant,
    every: Duration,
}

impl Cadence {
    /// Due first at `first`.
    pub fn new(first: Instant, every: Duration) -> Self {
        Cadence { next: first, every }
    }

    /// Whether the read is due at `now`; if so the next one is `every` after `now`.
    pub fn take(&mut self, now: Instant) -> bool {
        if now < self.next {
            return false;
        }
        self.next = now + self.every;
        true
    }
}
