//! When each GPU read is due, as pure functions of the tick (fast sampler) or of
//! the time (slow sampler), so that the cadences are tested without a GPU.

use std::time::{Duration, Instant};

/// How often the cumulative energy counter is read: `nvmlDeviceGetTotalEnergyConsumption`
/// costs ~3–4 ms of CPU per call on Hopper (H100 and H200, driver 580). It is a
/// cumulative counter, so a reading a minute old still integrates exactly; samples
/// in between repeat it marked stale. Once a minute is ~0.005 % of a core per GPU.
pub const ENERGY_INTERVAL: Duration = Duration::from_secs(60);
/// How often per-link NVLink field values are read on GPUs without GPM.
pub const NVLINK_FIELDS_INTERVAL: Duration = Duration::from_secs(1);
/// How often clocks, temperature and throttle reasons are read; also how often a
/// GPU whose memory is read with the v1 call reads the v2 call for its reserved
/// bytes ([`super::memory`]).
pub const SLOW_FIELDS_INTERVAL: Duration = Duration::from_secs(1);
/// How often the board power is read. On Ampere (except GA100) and newer NVML
/// returns power averaged over the last second, so reading it at 10 Hz repeats
/// the same average; twice a second keeps every window (on GA100 and older, where
/// it is instantaneous, 2 Hz is what `nvidia-smi dmon` shows at best).
pub const POWER_INTERVAL: Duration = Duration::from_millis(500);

/// ECC totals and remapped rows change rarely (a row remap needs a reset to take
/// effect): the slow sampler reads them this often, not at every process-list read.
pub const HEALTH_EVERY: Duration = Duration::from_secs(10);
/// The PCIe link (generation, width) and its replay counter: the five calls cost
/// ~0.5 ms together on an H100, and the link retrains only on load changes that
/// the byte counters show anyway; replays are a cumulative counter.
pub const PCIE_LINK_EVERY: Duration = Duration::from_secs(60);

/// Whole ticks of `interval` in `every`, at least 1.
pub fn ticks(interval: Duration, every: Duration) -> u64 {
    let i = interval.as_nanos().max(1);
    u64::try_from(every.as_nanos().div_ceil(i))
        .unwrap_or(1)
        .max(1)
}

/// What is read on one fast tick beyond the every-tick calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Due {
    pub energy: bool,
    /// The tick the energy counter is due after this one's read.
    pub energy_next: u64,
    pub gpm: bool,
    pub nvlink: bool,
    /// Clocks, temperature, throttle reasons, and reserved memory (v2 read).
    pub slow_fields: bool,
    pub power: bool,
}

/// The fast sampler's cadences, in ticks of its sample interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    pub energy_every: u64,
    pub nvlink_every: u64,
    pub slow_fields_every: u64,
    pub power_every: u64,
    /// GPM (PCIe/NVLink bytes) outside a burst.
    pub counters_every: u64,
}

impl Default for Schedule {
    /// Everything every tick (until the interval is known).
    fn default() -> Self {
        Schedule {
            energy_every: 1,
            nvlink_every: 1,
            slow_fields_every: 1,
            power_every: 1,
            counters_every: 1,
        }
    }
}

impl Schedule {
    /// The cadences at a sample `interval`, GPM every `counters` outside bursts.
    pub fn new(interval: Duration, counters: Duration) -> Self {
        Schedule {
            energy_every: ticks(interval, ENERGY_INTERVAL),
            nvlink_every: ticks(interval, NVLINK_FIELDS_INTERVAL),
            slow_fields_every: ticks(interval, SLOW_FIELDS_INTERVAL),
            power_every: ticks(interval, POWER_INTERVAL),
            counters_every: ticks(interval, counters),
        }
    }

    /// What is due on `tick` for a GPU whose energy is due at `energy_due`; a GPU
    /// in a burst reads its byte counters every tick.
    pub fn due(&self, tick: u64, energy_due: u64, burst: bool) -> Due {
        Due {
            energy: tick >= energy_due,
            energy_next: tick + self.energy_every,
            gpm: burst || tick.is_multiple_of(self.counters_every),
            nvlink: tick.is_multiple_of(self.nvlink_every),
            slow_fields: tick.is_multiple_of(self.slow_fields_every),
            power: tick.is_multiple_of(self.power_every),
        }
    }
}

/// A read of the slow sampler due every `every` from a first time on; a late look
/// skips the missed ones rather than catching up.
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

#[cfg(test)]
mod tests {
    use super::*;

    const TICK: Duration = Duration::from_millis(100);

    /// Ticks 0..n on which `f` says due.
    fn due_on(n: u64, f: impl Fn(u64) -> bool) -> Vec<u64> {
        (0..n).filter(|&t| f(t)).collect()
    }

    #[test]
    fn ticks_round_up_and_are_at_least_one() {
        assert_eq!(ticks(TICK, Duration::from_secs(60)), 600);
        assert_eq!(ticks(TICK, Duration::from_millis(250)), 3);
        assert_eq!(ticks(TICK, Duration::from_millis(10)), 1);
        assert_eq!(ticks(Duration::ZERO, Duration::ZERO), 1);
    }

    #[test]
    fn at_100_ms_energy_once_a_minute_and_the_slow_fields_once_a_second() {
        let s = Schedule::new(TICK, Duration::from_secs(2));
        assert_eq!(s.energy_every, 600);
        // Energy: the caller keeps `energy_next` of the last read.
        let mut energy_due = 0;
        let mut energy = Vec::new();
        for t in 0..1500 {
            let d = s.due(t, energy_due, false);
            if d.energy {
                energy.push(t);
                energy_due = d.energy_next;
            }
        }
        assert_eq!(energy, vec![0, 600, 1200]);
        let plain = |f: fn(&Due) -> bool| due_on(25, |t| f(&s.due(t, u64::MAX, false)));
        assert_eq!(plain(|d| d.slow_fields), vec![0, 10, 20]);
        assert_eq!(plain(|d| d.nvlink), vec![0, 10, 20]);
        assert_eq!(plain(|d| d.power), vec![0, 5, 10, 15, 20]);
        assert_eq!(plain(|d| d.energy), Vec::<u64>::new());
    }

    #[test]
    fn gpm_every_counters_interval_and_every_tick_in_a_burst() {
        let s = Schedule::new(TICK, Duration::from_secs(2));
        assert_eq!(
            due_on(45, |t| s.due(t, u64::MAX, false).gpm),
            vec![0, 20, 40]
        );
        assert_eq!(
            due_on(45, |t| s.due(t, u64::MAX, true).gpm),
            (0..45).collect::<Vec<_>>()
        );
        // In a burst the other cadences stay as they are.
        assert_eq!(
            due_on(25, |t| s.due(t, u64::MAX, true).slow_fields),
            vec![0, 10, 20]
        );
        // Before the interval is known, everything every tick.
        let d = Schedule::default().due(7, 0, false);
        assert!(d.energy && d.gpm && d.nvlink && d.slow_fields && d.power);
    }

    #[test]
    fn slow_cadences_take_once_per_period_and_skip_missed_ones() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut pcie = Cadence::new(t0, PCIE_LINK_EVERY);
        let mut health = Cadence::new(t0, HEALTH_EVERY);
        // The slow sampler looks every second for 130 s.
        let mut p = Vec::new();
        let mut h = 0;
        for s in 0..=130u64 {
            if pcie.take(at(s * 1000)) {
                p.push(s);
            }
            h += u32::from(health.take(at(s * 1000)));
        }
        assert_eq!(p, vec![0, 60, 120]);
        assert_eq!(h, 14);
        // A look 3 minutes late reads once, then a minute after that look.
        assert!(pcie.take(at(300_000)));
        assert!(!pcie.take(at(359_999)));
        assert!(pcie.take(at(360_000)));
    }
}
