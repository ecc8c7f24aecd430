//! The collector contract and the thread that drives a collector at its cadence.
//!
//! Each collector runs on its own OS thread (NVML and sysfs calls block), produces
//! one sample payload per tick, and the runner stamps it (host time, cost) into the
//! ring. Per-call costs go to [`CallCosts`] for self-telemetry.

use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use servescope_proto::v1::{sample, CallCost};

use crate::clock::now_ns;
use crate::ring::Ring;

/// A source of samples.
pub trait Collector: Send + 'static {
    /// Short name used in self-telemetry and logs.
    fn name(&self) -> &'static str;
    /// Reads once. `None`: nothing to report this tick.
    fn sample(&mut self, costs: &CallCosts) -> Option<sample::Data>;
}

/// What else a shutdown wakes (a thread waiting on its own condition variable).
type Hook = Box<dyn Fn() + Send + Sync>;

/// A shutdown signal threads can sleep on.
#[derive(Clone, Default)]
pub struct Shutdown(Arc<(Mutex<bool>, Condvar)>, Arc<Mutex<Vec<Hook>>>);

impl Shutdown {
    pub fn trigger(&self) {
        let (m, c) = &*self.0;
        *m.lock().unwrap_or_else(|e| e.into_inner()) = true;
        c.notify_all();
        for hook in self.1.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            hook();
        }
    }

    /// Calls `f` when shutdown is triggered (at once if it already was), so that a
    /// thread waiting on something else is woken too.
    pub fn on_trigger(&self, f: impl Fn() + Send + Sync + 'static) {
        let mut hooks = self.1.lock().unwrap_or_else(|e| e.into_inner());
        if self.is_triggered() {
            drop(hooks);
            f();
        } else {
            hooks.push(Box::new(f));
        }
    }

    pub fn is_triggered(&self) -> bool {
        *self.0 .0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sleeps up to `d`; returns true if shutdown was triggered.
    pub fn sleep(&self, d: Duration) -> bool {
        let (m, c) = &*self.0;
        let g = m.lock().unwrap_or_else(|e| e.into_inner());
        if *g {
            return true;
        }
        let (g, _) = c
            .wait_timeout_while(g, d, |stop| !*stop)
            .unwrap_or_else(|e| e.into_inner());
        *g
    }
}

#[derive(Default, Clone, Copy)]
struct Acc {
    count: u64,
    total_ns: u64,
    max_ns: u64,
}

impl Acc {
    fn add(&mut self, ns: u64) {
        self.count += 1;
        self.total_ns = self.total_ns.saturating_add(ns);
        self.max_ns = self.max_ns.max(ns);
    }
}

/// Costs of named calls, accumulated between self-telemetry samples. Names may be
/// built at run time (per-GPU calls); each is stored once and kept, so recording
/// allocates only the first time a name is seen.
#[derive(Default, Clone)]
pub struct CallCosts(Arc<Mutex<BTreeMap<String, Acc>>>);

impl CallCosts {
    pub fn record(&self, name: &str, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let mut g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match g.get_mut(name) {
            Some(a) => a.add(ns),
            None => {
                let mut a = Acc::default();
                a.add(ns);
                g.insert(name.to_owned(), a);
            }
        }
    }

    /// Times `f` under `name`.
    pub fn time<T>(&self, name: &str, f: impl FnOnce() -> T) -> T {
        let t = Instant::now();
        let out = f();
        self.record(name, t.elapsed());
        out
    }

    /// Returns and resets the accumulated costs (names not called since the last
    /// take are left out).
    pub fn take(&self) -> Vec<CallCost> {
        let mut g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let out = g
            .iter()
            .filter(|(_, a)| a.count > 0)
            .map(|(n, a)| CallCost {
                name: n.clone(),
                count: a.count,
                mean_ns: a.total_ns.checked_div(a.count).unwrap_or(0),
                max_ns: a.max_ns,
            })
            .collect();
        for a in g.values_mut() {
            *a = Acc::default();
        }
        out
    }
}

/// The first tick of a collector at `interval`: the next multiple of `interval` on
/// the host clock. Collectors of one cadence thus tick together, so a live stream
/// wakes once per tick for all of them (see `AgentService::coalesce`) instead of once
/// per collector.
fn first_tick(interval: Duration) -> Instant {
    let i = u64::try_from(interval.as_nanos())
        .unwrap_or(u64::MAX)
        .max(1);
    let now = now_ns();
    let wait = i - now % i;
    Instant::now() + Duration::from_nanos(if wait == i { 0 } else { wait })
}

/// Runs `c` every `interval` on its own thread until shutdown. Ticks are scheduled
/// on a fixed grid aligned to multiples of `interval` on the host clock (see
/// [`first_tick`]); a slow tick skips the missed ones rather than bursting.
pub fn spawn(
    mut c: Box<dyn Collector>,
    interval: Duration,
    ring: Arc<Ring>,
    costs: CallCosts,
    shutdown: Shutdown,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(format!("collect-{}", c.name()))
        .spawn(move || {
            let mut next = first_tick(interval);
            if shutdown.sleep(next.saturating_duration_since(Instant::now())) {
                return;
            }
            loop {
                let t_ns = now_ns();
                let started = Instant::now();
                let data = c.sample(&costs);
                let took = started.elapsed();
                costs.record(c.name(), took);
                if let Some(data) = data {
                    let collect_ns = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
                    ring.push(t_ns, collect_ns, data);
                }
                next += interval;
                let now = Instant::now();
                if next < now {
                    // Fell behind: realign to the grid after now.
                    let behind = now - next;
                    let skip = behind.as_nanos() / interval.as_nanos().max(1) + 1;
                    next += interval * u32::try_from(skip).unwrap_or(u32::MAX);
                }
                if shutdown.sleep(next.saturating_duration_since(Instant::now())) {
                    break;
                }
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::RingLimits;
    use servescope_proto::v1::HostSample;

    struct Counter(u32);
    impl Collector for Counter {
        fn name(&self) -> &'static str {
            "counter"
        }
        fn sample(&mut self, _: &CallCosts) -> Option<sample::Data> {
            self.0 += 1;
            self.0
                .is_multiple_of(2)
                .then(|| sample::Data::Host(HostSample::default()))
        }
    }

    #[test]
    fn shutdown_runs_its_hooks_once_triggered_or_at_once_after() {
        use std::sync::atomic::{AtomicU32, Ordering};
        let sd = Shutdown::default();
        let n = Arc::new(AtomicU32::new(0));
        let m = Arc::clone(&n);
        sd.on_trigger(move || {
            m.fetch_add(1, Ordering::SeqCst);
        });
        assert_eq!(n.load(Ordering::SeqCst), 0);
        sd.clone().trigger();
        assert_eq!(n.load(Ordering::SeqCst), 1);
        let m = Arc::clone(&n);
        sd.on_trigger(move || {
            m.fetch_add(10, Ordering::SeqCst);
        });
        assert_eq!(n.load(Ordering::SeqCst), 11);
    }

    #[test]
    fn runner_ticks_and_stops() {
        let ring = Arc::new(Ring::new(RingLimits {
            horizon_ns: u64::MAX,
            max_samples: 1000,
            max_bytes: usize::MAX,
        }));
        let costs = CallCosts::default();
        let sd = Shutdown::default();
        let h = spawn(
            Box::new(Counter(0)),
            Duration::from_millis(5),
            ring.clone(),
            costs.clone(),
            sd.clone(),
        )
        .unwrap();
        std::thread::sleep(Duration::from_millis(120));
        sd.trigger();
        h.join().unwrap();
        let n = ring.state().samples;
        assert!(n >= 5, "only {n} samples");
        let c = costs.take();
        assert_eq!(c[0].name, "counter");
        assert!(c[0].count >= 10);
        assert!(costs.take().is_empty());
    }
}
