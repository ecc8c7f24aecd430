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

/// How often a busy GPU whose memory holds steady has its memory read. Read once
/// per 100 ms tick the memory call costs ~65 µs on an H100 (driver 580; ~6 µs right
/// after another call, busy or idle): 0.06 % of a core per GPU on its own. A busy,
/// steady GPU is a serving engine between cold starts, whose memory (weights, KV
/// cache) is allocated once; an idle GPU, where a cold start shows first as a
/// memory rise, is read every tick.
pub const BUSY_MEMORY_INTERVAL: Duration = Duration::from_secs(1);
/// Utilisation (%) at or above which a GPU counts as busy for [`MemoryCadence`].
pub const BUSY_UTIL_PCT: u32 = 50;
/// Utilisation (%) below which a slowed GPU is read every tick again (hysteresis,
/// so that a load hovering at [`BUSY_UTIL_PCT`] does not flip the cadence).
pub const IDLE_UTIL_PCT: u32 = 25;
/// Unchanged memory reads in a row (one a tick) before a busy GPU is slowed.
pub const STEADY_MEMORY_READS: u32 = 10;

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
    /// Memory (set by the GPU's [`MemoryCadence`]; true from [`Schedule::due`]).
    pub memory: bool,
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
            memory: true,
            energy: tick >= energy_due,
            energy_next: tick + self.energy_every,
            gpm: burst || tick.is_multiple_of(self.counters_every),
            nvlink: tick.is_multiple_of(self.nvlink_every),
            slow_fields: tick.is_multiple_of(self.slow_fields_every),
            power: tick.is_multiple_of(self.power_every),
        }
    }
}

/// How often a busy GPU whose memory holds steady (the fast sampler's memory
/// cadence) has its process list read: a new process there allocates memory first,
/// which the fast sampler sees within a second and which puts the GPU back on the
/// full cadence (and in a burst at a rise of 128 MiB). On an H100 one list costs
/// ~0.15 ms when read once a second (~0.015 % of a core per GPU).
pub const STEADY_LIST_EVERY: Duration = Duration::from_secs(5);

/// Whether a slow pass reads a GPU's process list: when its burst wants one, on a
/// GPU that is not busy and steady ([`MemoryCadence`]), and on a steady one every
/// [`STEADY_LIST_EVERY`] since the last list (`listed`).
pub fn list_now(burst_due: bool, steady: bool, listed: Option<Instant>, now: Instant) -> bool {
    burst_due
        || !steady
        || listed.is_none_or(|t| now.saturating_duration_since(t) >= STEADY_LIST_EVERY)
}

/// One tick's memory read, as [`MemoryCadence::observe`] needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryRead {
    /// Not due this tick (the last values repeat, marked stale).
    Skipped,
    /// The call failed.
    Failed,
    /// Bytes in use.
    Used(u64),
}

/// When a GPU's memory is read: every tick, except on a GPU that is busy
/// (utilisation ≥ [`BUSY_UTIL_PCT`] until it drops under [`IDLE_UTIL_PCT`]) and
/// whose memory read the same for [`STEADY_MEMORY_READS`] reads in a row; that GPU
/// is read every [`BUSY_MEMORY_INTERVAL`] until its memory changes, its utilisation
/// drops or it bursts. Pure: the sampler feeds it each tick's reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryCadence {
    /// Ticks between reads while slowed.
    every: u64,
    last: Option<u64>,
    unchanged: u32,
    /// The tick memory is due next while slowed.
    next: u64,
    slowed: bool,
}

impl MemoryCadence {
    /// At a sample `interval`.
    pub fn new(interval: Duration) -> Self {
        MemoryCadence {
            every: ticks(interval, BUSY_MEMORY_INTERVAL),
            last: None,
            unchanged: 0,
            next: 0,
            slowed: false,
        }
    }

    /// Whether memory is read on `tick`: always in a burst or unless slowed.
    pub fn due(&self, tick: u64, burst: bool) -> bool {
        burst || !self.slowed || tick >= self.next
    }

    /// Whether the GPU is read every [`BUSY_MEMORY_INTERVAL`] now.
    pub fn slowed(&self) -> bool {
        self.slowed
    }

    /// Takes `tick`'s memory read and utilisation; returns the new state when the
    /// GPU was slowed or sped up by them.
    pub fn observe(
        &mut self,
        tick: u64,
        memory: MemoryRead,
        util_pct: Option<u32>,
        burst: bool,
    ) -> Option<bool> {
        match memory {
            MemoryRead::Skipped => {}
            MemoryRead::Failed => {
                self.last = None;
                self.unchanged = 0;
            }
            MemoryRead::Used(used) => {
                self.unchanged = if self.last == Some(used) {
                    self.unchanged.saturating_add(1)
                } else {
                    0
                };
                self.last = Some(used);
                self.next = tick + self.every;
            }
        }
        let busy =
            util_pct.is_some_and(|u| u >= BUSY_UTIL_PCT || (self.slowed && u >= IDLE_UTIL_PCT));
        let slowed = !burst && busy && self.unchanged >= STEADY_MEMORY_READS;
        (slowed != self.slowed).then(|| {
            self.slowed = slowed;
            slowed
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::Cadence;

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

    /// Runs a cadence over `(util, used)` ticks (`used` is what a read would
    /// return) and lists the ticks memory was read on.
    fn memory_reads(
        c: &mut MemoryCadence,
        from: u64,
        ticks: &[(u32, u64)],
        burst: bool,
    ) -> Vec<u64> {
        let mut read = Vec::new();
        for (i, &(util, used)) in ticks.iter().enumerate() {
            let t = from + i as u64;
            let m = if c.due(t, burst) {
                read.push(t);
                MemoryRead::Used(used)
            } else {
                MemoryRead::Skipped
            };
            c.observe(t, m, Some(util), burst);
        }
        read
    }

    #[test]
    fn idle_gpu_memory_is_read_every_tick() {
        let mut c = MemoryCadence::new(TICK);
        let idle = vec![(3, 1 << 30); 50];
        assert_eq!(
            memory_reads(&mut c, 0, &idle, false),
            (0..50).collect::<Vec<_>>()
        );
        assert!(!c.slowed());
    }

    #[test]
    fn busy_steady_gpu_is_read_once_a_second_until_its_memory_changes() {
        let mut c = MemoryCadence::new(TICK);
        let busy = vec![(97, 70 << 30); 40];
        // 10 unchanged reads after the first (ticks 0..=10), then every 10 ticks.
        let read = memory_reads(&mut c, 0, &busy, false);
        assert_eq!(read, [(0..=10).collect::<Vec<_>>(), vec![20, 30]].concat());
        assert!(c.slowed());
        // A changed value on a slowed read: every tick again, for 10 unchanged reads.
        let changed = vec![(97, 71 << 30); 25];
        let read = memory_reads(&mut c, 40, &changed, false);
        assert_eq!(read, [(40..=50).collect::<Vec<_>>(), vec![60]].concat());
    }

    #[test]
    fn utilisation_drop_or_burst_reads_every_tick_again() {
        let mut c = MemoryCadence::new(TICK);
        memory_reads(&mut c, 0, &[(90, 5 << 30); 15], false);
        assert!(c.slowed());
        // Still slowed at 40 % (hysteresis), read every tick under 25 %.
        assert_eq!(
            memory_reads(&mut c, 15, &[(40, 5 << 30); 3], false),
            Vec::<u64>::new()
        );
        assert!(c.slowed());
        assert_eq!(
            c.observe(18, MemoryRead::Skipped, Some(10), false),
            Some(false)
        );
        assert_eq!(
            memory_reads(&mut c, 19, &[(10, 5 << 30); 3], false),
            vec![19, 20, 21]
        );
        // Busy and steady again, then a burst: every tick for the burst.
        memory_reads(&mut c, 22, &[(90, 5 << 30); 15], false);
        assert!(c.slowed());
        assert_eq!(
            memory_reads(&mut c, 37, &[(90, 5 << 30); 4], true),
            vec![37, 38, 39, 40]
        );
        assert!(!c.slowed());
        // A failed read starts the count over.
        let mut c = MemoryCadence::new(TICK);
        memory_reads(&mut c, 0, &[(90, 5 << 30); 15], false);
        assert_eq!(
            c.observe(15, MemoryRead::Failed, Some(90), false),
            Some(false)
        );
        assert!(c.due(16, false));
    }

    #[test]
    fn steady_gpus_list_processes_every_five_seconds() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        // Not steady: every pass; steady: 5 s after the last list; a burst: always.
        assert!(list_now(false, false, Some(at(0)), at(1)));
        assert!(!list_now(false, true, Some(at(0)), at(4)));
        assert!(list_now(false, true, Some(at(0)), at(5)));
        assert!(list_now(false, true, None, at(1)));
        assert!(list_now(true, true, Some(at(0)), at(1)));
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
