//! Burst cadence on a cold start, as a pure state machine per GPU.
//!
//! A process starting to hold GPU memory is what startup inference needs at
//! ≥ 10 Hz (its memory, the GPU's utilisation and PCIe/NVLink counters), while a
//! GPU that only serves is fine at the normal cadence. [`BurstState`] takes what
//! the samplers observed, with times, and says whether the GPU is in a burst; each
//! change is returned so the caller can report it. Triggers, earliest first:
//! - a serving process found through `/proc` (usually seconds before its first CUDA
//!   call: the engine imports torch first); node-wide, so every GPU is told;
//! - the GPU's used memory rising by [`Policy::mem_step`] in one fast tick (a CUDA
//!   context appearing; seen on the fast path, before the process list shows it);
//! - a new PID in the GPU's process list.
//!
//! A burst ends when the GPU has served for a while ([`Policy::serve_for`] of
//! utilisation ≥ [`Policy::busy_util`] with no memory step), when every process
//! that appeared during it is gone, when no new process showed up on this GPU
//! within [`Policy::confirm`] (a trigger meant for another GPU, or memory growth of
//! a process already running), or after [`Policy::max`] at most.

/// Thresholds and bounds of the burst.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    /// Rise of the GPU's used memory within one fast tick that starts a burst.
    pub mem_step: u64,
    /// Change of a process's memory between two lists that counts as a memory step.
    pub proc_step: u64,
    /// Utilisation that counts as serving.
    pub busy_util: u32,
    /// Serving this long after the last memory step ends the burst, ns.
    pub serve_for_ns: u64,
    /// No new process on this GPU this long after the trigger ends the burst, ns.
    pub confirm_ns: u64,
    /// Longest burst, ns.
    pub max_ns: u64,
    /// In a burst, the process list (~0.35 ms a read) is read when the device's used
    /// memory moved by [`Policy::proc_step`] since the last read, else at most this
    /// often, ns: its memory boundaries need the 100 ms ticks only while memory moves.
    pub list_every_ns: u64,
}

const S: u64 = 1_000_000_000;

impl Default for Policy {
    fn default() -> Self {
        Policy {
            mem_step: 128 << 20,
            proc_step: 16 << 20,
            busy_util: 50,
            serve_for_ns: 3 * S,
            confirm_ns: 60 * S,
            max_ns: 600 * S,
            list_every_ns: S / 2,
        }
    }
}

/// What a sampler saw.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Observation<'a> {
    /// A serving process found on the node through `/proc`.
    Serving { pid: u32 },
    /// One fast tick of this GPU.
    Tick {
        mem_used: Option<u64>,
        util_pct: Option<u32>,
    },
    /// This GPU's process list: (pid, used bytes).
    Processes(&'a [(u32, u64)]),
}

/// Why a burst began.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Serving { pid: u32 },
    DeviceMemory { rise_bytes: u64 },
    NewProcess { pid: u32 },
}

/// Why a burst ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Served,
    Gone,
    Unconfirmed,
    Bound,
}

/// A change of cadence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Began(Trigger),
    Ended { why: End, lasted_ns: u64 },
}

impl Change {
    /// What a person is shown (the `collector_cadence` event's message).
    pub fn describe(&self, gpu: u32) -> String {
        match self {
            Change::Began(t) => {
                let why = match t {
                    Trigger::Serving { pid } => format!("serving process {pid} found in /proc"),
                    Trigger::DeviceMemory { rise_bytes } => {
                        format!("used memory rose {} MiB in one tick", rise_bytes >> 20)
                    }
                    Trigger::NewProcess { pid } => format!("new process {pid} holds memory"),
                };
                format!("gpu {gpu}: burst cadence (process list, utilisation, PCIe/NVLink at the fast tick): {why}")
            }
            Change::Ended { why, lasted_ns } => {
                let why = match why {
                    End::Served => "served (utilisation high, memory steady)",
                    End::Gone => "the new processes exited",
                    End::Unconfirmed => "no new process on this GPU",
                    End::Bound => "longest burst reached",
                };
                format!(
                    "gpu {gpu}: normal cadence after a {:.1} s burst: {why}",
                    *lasted_ns as f64 / 1e9
                )
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Burst {
    since: u64,
    /// Processes that appeared on this GPU during the burst.
    new_pids: Vec<u32>,
    /// Utilisation high without a memory step since.
    busy_since: Option<u64>,
}

/// One GPU's burst state.
#[derive(Debug, Clone, PartialEq)]
pub struct BurstState {
    policy: Policy,
    last_mem: Option<u64>,
    /// The last process list; `None` until one was read (the first is the baseline).
    known: Option<Vec<(u32, u64)>>,
    burst: Option<Burst>,
    /// When the last process list was taken, and the device's used memory then.
    list_read: Option<(u64, Option<u64>)>,
}

impl BurstState {
    pub fn new(policy: Policy) -> Self {
        BurstState {
            policy,
            last_mem: None,
            known: None,
            burst: None,
            list_read: None,
        }
    }

    /// Whether the GPU is sampled at the burst cadence now.
    pub fn bursting(&self) -> bool {
        self.burst.is_some()
    }

    /// Whether the process list is due at `t_ns` in a burst: first in the burst, once
    /// the device's used memory moved by [`Policy::proc_step`] since the last list,
    /// or [`Policy::list_every_ns`] after it. Outside a burst the normal cadence
    /// reads it, so this says no.
    pub fn list_due(&self, t_ns: u64) -> bool {
        if self.burst.is_none() {
            return false;
        }
        match self.list_read {
            None => true,
            Some((at, mem)) => {
                let moved = match (mem, self.last_mem) {
                    (Some(a), Some(b)) => a.abs_diff(b) >= self.policy.proc_step,
                    _ => true,
                };
                moved || t_ns.saturating_sub(at) >= self.policy.list_every_ns
            }
        }
    }

    /// Takes one observation at `t_ns`; returns the change of cadence it caused.
    pub fn observe(&mut self, t_ns: u64, obs: Observation<'_>) -> Option<Change> {
        let (trigger, gone) = match obs {
            Observation::Serving { pid } => (Some(Trigger::Serving { pid }), false),
            Observation::Tick { mem_used, util_pct } => {
                (self.tick(t_ns, mem_used, util_pct), false)
            }
            Observation::Processes(list) => {
                self.list_read = Some((t_ns, self.last_mem));
                self.processes(list)
            }
        };
        if let Some(b) = &self.burst {
            let lasted_ns = t_ns.saturating_sub(b.since);
            let p = &self.policy;
            let why = if gone {
                Some(End::Gone)
            } else if lasted_ns >= p.max_ns {
                Some(End::Bound)
            } else if b
                .busy_since
                .is_some_and(|s| t_ns.saturating_sub(s) >= p.serve_for_ns)
            {
                Some(End::Served)
            } else if b.new_pids.is_empty() && lasted_ns >= p.confirm_ns {
                Some(End::Unconfirmed)
            } else {
                None
            };
            if let Some(why) = why {
                self.burst = None;
                return Some(Change::Ended { why, lasted_ns });
            }
            return None;
        }
        let t = trigger?;
        self.burst = Some(Burst {
            since: t_ns,
            new_pids: match t {
                Trigger::NewProcess { pid } => vec![pid],
                _ => Vec::new(),
            },
            busy_since: None,
        });
        Some(Change::Began(t))
    }

    fn tick(&mut self, t_ns: u64, mem: Option<u64>, util: Option<u32>) -> Option<Trigger> {
        let rise = match (self.last_mem, mem) {
            (Some(a), Some(b)) => b.saturating_sub(a),
            _ => 0,
        };
        if mem.is_some() {
            self.last_mem = mem;
        }
        let step = rise >= self.policy.mem_step;
        if let Some(b) = &mut self.burst {
            if step || util.is_none_or(|u| u < self.policy.busy_util) {
                b.busy_since = None;
            } else {
                b.busy_since.get_or_insert(t_ns);
            }
            return None;
        }
        step.then_some(Trigger::DeviceMemory { rise_bytes: rise })
    }

    /// A process list: the trigger it gives outside a burst, and whether every
    /// process that appeared during the burst is gone.
    fn processes(&mut self, list: &[(u32, u64)]) -> (Option<Trigger>, bool) {
        let Some(known) = self.known.replace(list.to_vec()) else {
            return (None, false);
        };
        let before = |pid: u32| known.iter().find(|k| k.0 == pid).map(|k| k.1);
        let new = list
            .iter()
            .find(|(pid, _)| before(*pid).is_none())
            .map(|p| p.0);
        let Some(b) = &mut self.burst else {
            return (new.map(|pid| Trigger::NewProcess { pid }), false);
        };
        let stepped = list.iter().any(|&(pid, bytes)| {
            before(pid).is_some_and(|was| was.abs_diff(bytes) >= self.policy.proc_step)
        });
        for &(pid, _) in list {
            if before(pid).is_none() && !b.new_pids.contains(&pid) {
                b.new_pids.push(pid);
            }
        }
        if stepped || new.is_some() {
            b.busy_since = None;
        }
        let alive = b.new_pids.iter().any(|p| list.iter().any(|x| x.0 == *p));
        (None, !b.new_pids.is_empty() && !alive)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;
    const GIB: u64 = 1 << 30;

    fn tick(mem: u64, util: u32) -> Observation<'static> {
        Observation::Tick {
            mem_used: Some(mem),
            util_pct: Some(util),
        }
    }

    /// A cold start on one GPU at the normal cadence (fast ticks every 100 ms,
    /// process list every 1 s): idle, context at 2.05 s, weights, serving.
    #[test]
    fn a_context_appearing_switches_at_the_next_fast_tick_and_serving_returns() {
        let mut s = BurstState::new(Policy::default());
        let mut changes = Vec::new();
        let mut bursting_at = Vec::new();
        for k in 0..400u64 {
            let t = k * 100 * MS;
            // Context 0.5 GiB at 2.05 s, weights 2–6 s, serving from 6 s.
            let mem = match t {
                t if t < 2_050 * MS => 1 << 20,
                t if t < 6_000 * MS => GIB / 2 + (t - 2_050 * MS) / 100 * (GIB / 100) / MS,
                _ => 5 * GIB,
            };
            let util = if t >= 6_000 * MS { 95 } else { 0 };
            if let Some(c) = s.observe(t, tick(mem, util)) {
                changes.push((t, c));
            }
            if k % 10 == 0 || s.bursting() {
                let list: Vec<(u32, u64)> = if t >= 2_050 * MS {
                    vec![(42, mem)]
                } else {
                    vec![]
                };
                if let Some(c) = s.observe(t + MS, Observation::Processes(&list)) {
                    changes.push((t + MS, c));
                }
            }
            bursting_at.push(s.bursting());
        }
        assert_eq!(
            changes[0],
            (
                2_100 * MS,
                Change::Began(Trigger::DeviceMemory {
                    rise_bytes: GIB / 2 + (50 * MS / 100 * (GIB / 100) / MS) - (1 << 20)
                })
            )
        );
        // Serving from 6 s (the last memory step): 3 s of high utilisation with
        // steady memory after it ends the burst.
        assert_eq!(
            changes[1],
            (
                9_100 * MS,
                Change::Ended {
                    why: End::Served,
                    lasted_ns: 7_000 * MS
                }
            )
        );
        assert_eq!(changes.len(), 2, "{changes:?}");
        assert!(!bursting_at[20] && bursting_at[21] && bursting_at[90] && !bursting_at[91]);
    }

    #[test]
    fn a_new_pid_or_a_serving_process_starts_it_and_the_process_leaving_ends_it() {
        let mut s = BurstState::new(Policy::default());
        assert_eq!(
            s.observe(0, Observation::Processes(&[(7, GIB)])),
            None,
            "baseline"
        );
        assert_eq!(
            s.observe(S, Observation::Processes(&[(7, GIB), (8, GIB / 2)])),
            Some(Change::Began(Trigger::NewProcess { pid: 8 }))
        );
        assert_eq!(
            s.observe(S + 100 * MS, Observation::Processes(&[(7, GIB), (8, GIB)])),
            None
        );
        assert_eq!(
            s.observe(3 * S, Observation::Processes(&[(7, GIB)])),
            Some(Change::Ended {
                why: End::Gone,
                lasted_ns: 2 * S
            })
        );
        // /proc discovery, well before the process touches the GPU.
        assert_eq!(
            s.observe(10 * S, Observation::Serving { pid: 9 }),
            Some(Change::Began(Trigger::Serving { pid: 9 }))
        );
        assert_eq!(
            s.observe(15 * S, Observation::Processes(&[(7, GIB), (9, GIB)])),
            None
        );
        assert!(s.bursting());
        // Memory steps keep resetting the serving clock.
        for k in 0..100u64 {
            let bytes = GIB + k * (32 << 20);
            let t = 16 * S + k * 100 * MS;
            assert_eq!(
                s.observe(t, Observation::Processes(&[(7, GIB), (9, bytes)])),
                None
            );
            assert_eq!(s.observe(t + MS, tick(10 * GIB, 99)), None);
        }
        assert!(s.bursting());
    }

    /// In a burst the process list is read while the device's memory moves, and
    /// every 500 ms while it holds still; never outside a burst.
    #[test]
    fn the_process_list_is_due_on_a_memory_move_or_every_500_ms() {
        let mut s = BurstState::new(Policy::default());
        s.observe(0, tick(GIB, 0));
        assert!(!s.list_due(0));
        s.observe(100 * MS, tick(2 * GIB, 0));
        assert!(s.bursting() && s.list_due(100 * MS));
        s.observe(101 * MS, Observation::Processes(&[(7, GIB)]));
        assert!(!s.list_due(101 * MS));
        // Memory still: not before 500 ms after the last list.
        s.observe(200 * MS, tick(2 * GIB, 0));
        assert!(!s.list_due(200 * MS) && !s.list_due(600 * MS) && s.list_due(601 * MS));
        // Memory moved by ≥ 16 MiB: due at once.
        s.observe(300 * MS, tick(2 * GIB + (32 << 20), 0));
        assert!(s.list_due(300 * MS));
        s.observe(301 * MS, Observation::Processes(&[(7, GIB + (32 << 20))]));
        s.observe(400 * MS, tick(2 * GIB + (40 << 20), 0));
        assert!(!s.list_due(400 * MS));
    }

    #[test]
    fn bounded_and_unconfirmed_bursts_return() {
        let mut s = BurstState::new(Policy::default());
        s.observe(0, Observation::Processes(&[]));
        s.observe(S, Observation::Processes(&[(5, GIB)]));
        // Never serves, never leaves: the bound ends it.
        let mut end = None;
        for k in 1..=700u64 {
            let list = [(5, GIB + (k % 2) * GIB)];
            if let Some(c) = s.observe(S + k * S, Observation::Processes(&list)) {
                end = Some((k, c));
                break;
            }
        }
        assert_eq!(
            end,
            Some((
                600,
                Change::Ended {
                    why: End::Bound,
                    lasted_ns: 600 * S
                }
            ))
        );
        // A trigger meant for another GPU: nothing new here within a minute.
        assert!(matches!(
            s.observe(1000 * S, Observation::Serving { pid: 1 }),
            Some(Change::Began(_))
        ));
        assert_eq!(
            s.observe(1059 * S, Observation::Processes(&[(5, GIB)])),
            None
        );
        assert_eq!(
            s.observe(1060 * S, tick(GIB, 0)),
            Some(Change::Ended {
                why: End::Unconfirmed,
                lasted_ns: 60 * S
            })
        );
    }

    #[test]
    fn two_processes_on_two_gpus_burst_each_on_its_own() {
        let mut g = [
            BurstState::new(Policy::default()),
            BurstState::new(Policy::default()),
        ];
        for s in &mut g {
            s.observe(0, Observation::Processes(&[]));
            s.observe(0, tick(GIB / 100, 0));
        }
        // GPU 0's rank starts at 1 s, GPU 1's at 4 s.
        assert!(g[0].observe(S, tick(GIB, 0)).is_some());
        assert!(g[1].observe(S, tick(GIB / 100, 0)).is_none());
        assert!(g[0].bursting() && !g[1].bursting());
        assert!(g[1]
            .observe(4 * S, Observation::Processes(&[(11, GIB)]))
            .is_some());
        g[0].observe(4 * S, Observation::Processes(&[(10, GIB)]));
        assert!(g[0].bursting() && g[1].bursting());
        // GPU 0's process exits; GPU 1's keeps its burst.
        assert_eq!(
            g[0].observe(9 * S, Observation::Processes(&[])),
            Some(Change::Ended {
                why: End::Gone,
                lasted_ns: 8 * S
            })
        );
        assert_eq!(
            g[1].observe(9 * S, Observation::Processes(&[(11, GIB)])),
            None
        );
        assert!(!g[0].bursting() && g[1].bursting());
    }
}
