//! The burst states of every GPU, shared by the producers that observe them (fast
//! sampler, slow sampler, `/proc` discovery) and read by the ones whose cadence
//! they set. Each change of cadence is stated in the self-telemetry as a
//! `collector_cadence` event; a burst beginning wakes the slow sampler at once.

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use servescope_proto::v1::{sample, Event};

use super::burst::{BurstState, Change, Observation, Policy};
use crate::clock::now_ns;
use crate::ring::Ring;

/// The process-list cadence during a burst.
pub const BURST_INTERVAL: Duration = Duration::from_millis(100);

struct Inner {
    gpus: Vec<(u32, BurstState)>,
    /// Bursts begun so far (what the slow sampler waits on).
    began: u64,
    /// Per GPU (indexed like `gpus`): busy with its memory steady, as the fast
    /// sampler's memory cadence last said.
    steady: Vec<bool>,
    /// The agent is shutting down: waits end.
    stopped: bool,
}

/// Per-GPU burst states (indexed like the GPU list) and a wake-up for the slow
/// sampler.
pub struct BurstBoard {
    gpus: Mutex<Inner>,
    changed: Condvar,
    ring: Arc<Ring>,
}

impl BurstBoard {
    pub fn new(indices: &[u32], policy: Policy, ring: Arc<Ring>) -> Arc<Self> {
        Arc::new(BurstBoard {
            gpus: Mutex::new(Inner {
                gpus: indices
                    .iter()
                    .map(|&i| (i, BurstState::new(policy)))
                    .collect(),
                began: 0,
                steady: vec![false; indices.len()],
                stopped: false,
            }),
            changed: Condvar::new(),
            ring,
        })
    }

    /// Feeds one observation of GPU `gpu`; returns whether it is bursting after.
    pub fn observe(&self, gpu: u32, t_ns: u64, obs: Observation<'_>) -> bool {
        let mut g = self.lock();
        let Some((_, s)) = g.gpus.iter_mut().find(|(i, _)| *i == gpu) else {
            return false;
        };
        let change = s.observe(t_ns, obs);
        let bursting = s.bursting();
        if matches!(change, Some(Change::Began(_))) {
            g.began += 1;
        }
        drop(g);
        if let Some(c) = change {
            self.report(gpu, t_ns, c);
        }
        bursting
    }

    /// A serving process found on the node: every GPU is told.
    pub fn serving(&self, pid: u32) {
        let t_ns = now_ns();
        let mut g = self.lock();
        let changes: Vec<(u32, Change)> = g
            .gpus
            .iter_mut()
            .filter_map(|(i, s)| Some((*i, s.observe(t_ns, Observation::Serving { pid })?)))
            .collect();
        g.began += changes.len() as u64;
        drop(g);
        for (gpu, c) in changes {
            self.report(gpu, t_ns, c);
        }
    }

    /// Whether GPU `gpu` is bursting.
    pub fn bursting(&self, gpu: u32) -> bool {
        self.lock()
            .gpus
            .iter()
            .any(|(i, s)| *i == gpu && s.bursting())
    }

    /// Whether GPU `gpu`'s process list is due in its burst ([`BurstState::list_due`]).
    pub fn list_due(&self, gpu: u32, t_ns: u64) -> bool {
        self.lock()
            .gpus
            .iter()
            .any(|(i, s)| *i == gpu && s.list_due(t_ns))
    }

    /// Records whether GPU `gpu` is busy with its memory steady (the fast
    /// sampler's memory cadence), for the slow sampler's process-list cadence.
    pub fn set_steady(&self, gpu: u32, steady: bool) {
        let mut g = self.lock();
        if let Some(k) = g.gpus.iter().position(|(i, _)| *i == gpu) {
            g.steady[k] = steady;
        }
    }

    /// Whether GPU `gpu` is busy with its memory steady and not bursting.
    pub fn steady(&self, gpu: u32) -> bool {
        let g = self.lock();
        g.gpus
            .iter()
            .position(|(i, _)| *i == gpu)
            .is_some_and(|k| g.steady[k] && !g.gpus[k].1.bursting())
    }

    /// Ends every [`BurstBoard::wait`], now and later (the agent is stopping).
    pub fn stop(&self) {
        self.lock().stopped = true;
        self.changed.notify_all();
    }

    /// Whether any GPU is bursting.
    pub fn any_bursting(&self) -> bool {
        self.lock().gpus.iter().any(|(_, s)| s.bursting())
    }

    /// Bursts begun so far; pass it to [`BurstBoard::wait`].
    pub fn generation(&self) -> u64 {
        self.lock().began
    }

    /// Waits up to `d`, until a burst begins after `generation`, or until
    /// [`BurstBoard::stop`].
    pub fn wait(&self, generation: u64, d: Duration) {
        let g = self.lock();
        drop(
            self.changed
                .wait_timeout_while(g, d, |i| i.began == generation && !i.stopped),
        );
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.gpus.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn report(&self, gpu: u32, t_ns: u64, c: Change) {
        tracing::info!("{}", c.describe(gpu));
        self.ring.push(
            t_ns,
            0,
            sample::Data::Event(Event {
                kind: "collector_cadence".into(),
                source: "agent".into(),
                gpu_index: Some(gpu),
                message: c.describe(gpu),
                ..Default::default()
            }),
        );
        if matches!(c, Change::Began(_)) {
            self.changed.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::RingLimits;
    use std::time::Instant;

    fn board() -> Arc<BurstBoard> {
        let ring = Arc::new(Ring::new(RingLimits {
            horizon_ns: u64::MAX,
            max_samples: 100,
            max_bytes: usize::MAX,
        }));
        BurstBoard::new(&[0, 3], Policy::default(), ring)
    }

    #[test]
    fn steady_per_gpu_and_never_while_bursting() {
        let b = board();
        assert!(!b.steady(3));
        b.set_steady(3, true);
        assert!(b.steady(3) && !b.steady(0) && !b.steady(7));
        b.serving(4242);
        assert!(b.bursting(3) && !b.steady(3));
    }

    #[test]
    fn stop_ends_waits_now_and_later() {
        let b = board();
        let w = Arc::clone(&b);
        let t = Instant::now();
        let waiter = std::thread::spawn(move || w.wait(w.generation(), Duration::from_secs(30)));
        std::thread::sleep(Duration::from_millis(50));
        b.stop();
        waiter.join().unwrap();
        b.wait(b.generation(), Duration::from_secs(30));
        assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    }
}
