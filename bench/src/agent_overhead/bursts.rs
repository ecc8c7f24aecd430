//! Whether a GPU of the agent is in a cold-start burst, from what the stream
//! carried: its `collector_cadence` events ("burst cadence …" / "normal cadence
//! after …") and, in its self-telemetry, `gpu<N>.burst_tick` calls (made only on a
//! burst's ticks). A steady window must not overlap a burst.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use servescope_proto::now_ns;

use super::selfcost::{is_burst_tick, Seen};

/// Whether no GPU bursts: no cadence event left one in a burst, and a self sample
/// stamped after `since_ns` had no burst ticks.
pub fn quiet_since(seen: &Seen, since_ns: u64) -> bool {
    !seen.bursting.values().any(|b| *b)
        && seen
            .last_self
            .is_some_and(|(t, burst)| t > since_ns && !burst)
}

/// Waits (at most `max`) until no GPU bursts; returns the wait and whether it
/// ended quiet.
pub fn wait_quiet(seen: &Mutex<Seen>, max: Duration) -> (Duration, bool) {
    let since = now_ns();
    let started = Instant::now();
    loop {
        let quiet = quiet_since(&seen.lock().unwrap_or_else(|e| e.into_inner()), since);
        if quiet || started.elapsed() >= max {
            return (started.elapsed(), quiet);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Bursts seen within a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Overlap {
    /// Cadence changes stamped within it.
    pub changes: usize,
    /// Burst ticks counted by the self samples covering it.
    pub burst_ticks: u64,
}

impl Overlap {
    pub fn none(&self) -> bool {
        self.changes == 0 && self.burst_ticks == 0
    }
}

/// The bursts within [t0, t1] (self samples up to `t1_self`, the one that closes
/// the window coming later).
pub fn overlap(seen: &Seen, t0: u64, t1: u64, t1_self: u64) -> Overlap {
    Overlap {
        changes: seen
            .cadence
            .iter()
            .filter(|(t, _)| *t >= t0 && *t <= t1)
            .count(),
        burst_ticks: seen
            .calls
            .iter()
            .filter(|(t, _)| *t > t0 && *t <= t1_self)
            .flat_map(|(_, calls)| calls.iter().filter(|c| is_burst_tick(c)))
            .map(|c| c.count)
            .sum(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use servescope_proto::v1::{sample, CallCost, Event, Sample, SelfSample};

    fn self_sample(t_ns: u64, burst_ticks: u64) -> Sample {
        let mut calls = vec![CallCost {
            name: "gpu0.memory".into(),
            count: 10,
            mean_ns: 13_000,
            max_ns: 20_000,
        }];
        if burst_ticks > 0 {
            calls.push(CallCost {
                name: "gpu0.burst_tick".into(),
                count: burst_ticks,
                mean_ns: 300_000,
                max_ns: 400_000,
            });
            calls.push(CallCost {
                name: "gpu.burst_tick".into(),
                count: burst_ticks,
                mean_ns: 300_000,
                max_ns: 400_000,
            });
        }
        Sample {
            t_ns,
            data: Some(sample::Data::SelfStats(SelfSample {
                calls,
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    fn cadence(t_ns: u64, gpu: u32, message: &str) -> Sample {
        Sample {
            t_ns,
            data: Some(sample::Data::Event(Event {
                kind: "collector_cadence".into(),
                source: "agent".into(),
                gpu_index: Some(gpu),
                message: message.into(),
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    const S: u64 = 1_000_000_000;

    #[test]
    fn quiet_after_the_burst_ends_and_a_fresh_self_sample_has_no_burst_ticks() {
        let mut seen = Seen::default();
        assert!(!quiet_since(&seen, 0), "no self sample yet");
        seen.add(&cadence(
            S,
            0,
            "gpu 0: burst cadence (…): serving process 42 found in /proc",
        ));
        seen.add(&self_sample(2 * S, 10));
        assert!(!quiet_since(&seen, 0));
        seen.add(&cadence(
            5 * S,
            0,
            "gpu 0: normal cadence after a 4.0 s burst: served",
        ));
        // The self sample covering the burst's last ticks.
        seen.add(&self_sample(5 * S + 1, 3));
        assert!(!quiet_since(&seen, 0));
        seen.add(&self_sample(6 * S, 0));
        assert!(quiet_since(&seen, 0));
        // Not fresh: stamped before the wait began.
        assert!(!quiet_since(&seen, 7 * S));
        // A burst on another GPU by its event alone.
        seen.add(&cadence(
            8 * S,
            1,
            "gpu 1: burst cadence (…): new process 7 holds memory",
        ));
        seen.add(&self_sample(9 * S, 0));
        assert!(!quiet_since(&seen, 0));
    }

    #[test]
    fn overlap_counts_changes_and_burst_ticks_within_the_window() {
        let mut seen = Seen::default();
        seen.add(&cadence(S, 0, "gpu 0: burst cadence (…): x"));
        seen.add(&self_sample(2 * S, 10));
        seen.add(&cadence(
            3 * S,
            0,
            "gpu 0: normal cadence after a 2.0 s burst: served",
        ));
        seen.add(&self_sample(4 * S, 0));
        seen.add(&self_sample(5 * S, 0));
        assert!(overlap(&seen, 4 * S, 5 * S, 6 * S).none());
        assert_eq!(
            overlap(&seen, 2 * S, 5 * S, 6 * S),
            Overlap {
                changes: 1,
                burst_ticks: 0
            }
        );
        assert_eq!(
            overlap(&seen, S + 1, 5 * S, 6 * S),
            Overlap {
                changes: 1,
                burst_ticks: 10
            }
        );
    }
}
