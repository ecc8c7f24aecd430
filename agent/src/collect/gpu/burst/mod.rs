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
//! The agent's own processes (a fabric probe's driver) are left out of the lists
//! it is given; when the first list after a memory trigger shows only a new process
//! of the agent's own ([`Observation::OwnAppeared`]), the burst ends at once.
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
    /// This GPU's process list: (pid, used bytes), the agent's own processes left out.
    Processes(&'a [(u32, u64)]),
    /// A process of the agent's own (a probe's driver) appeared in this GPU's list.
    OwnAppeared,
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
    /// The memory that started it was the agent's own probe's.
    Own,
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
                    End::Own => "the memory was the agent's own probe's",
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
    trigger: Trigger,
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
            Observation::OwnAppeared => (None, false),
        };
        let own_only = matches!(obs, Observation::OwnAppeared)
            && self.burst.as_ref().is_some_and(|b| {
                matches!(b.trigger, Trigger::DeviceMemory { .. }) && b.new_pids.is_empty()
            });
        if let Some(b) = &self.burst {
            let lasted_ns = t_ns.saturating_sub(b.since);
            let p = &self.policy;
            let why = if own_only {
                Some(End::Own)
            } else if gone {
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
            trigger: t,
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
mod tests;
