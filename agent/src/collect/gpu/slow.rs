//! The slow GPU sampler: per-process GPU memory (every process interval), ECC
//! totals and remapped rows (every [`HEALTH_EVERY`]) and the PCIe link
//! (generation, width, replays; every [`PCIE_LINK_EVERY`]) on their own thread
//! (the process list faster while a GPU is in a burst); the fast sampler attaches
//! the latest result.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nvml_wrapper::enum_wrappers::device::{EccCounter, MemoryError};
use nvml_wrapper::error::NvmlError;
use nvml_wrapper::{Device, Nvml};
use servescope_proto::v1::{FieldError, GpuProcess, GpuReading};

use super::board::{BurstBoard, BURST_INTERVAL};
use super::burst::Observation;
use super::calls::{Call, CallNames};
use super::ffi::{check, sym};
use super::own::{proc_ppid, OwnProcesses};
use super::procs::{ProcMem, ProcessLister};
use super::schedule::{list_now, HEALTH_EVERY, PCIE_LINK_EVERY};
use crate::clock::now_ns;
use crate::collect::{Cadence, CallCosts, EventSource, RunContext};

/// Latest slow readings for one GPU.
#[derive(Debug, Clone, Default)]
pub struct SlowState {
    pub index: u32,
    /// When the process list was read.
    pub t_ns: u64,
    pub processes: Vec<GpuProcess>,
    pub ecc_corrected: Option<u64>,
    pub ecc_uncorrected: Option<u64>,
    pub remapped: Option<(u32, u32, bool, bool)>,
    pub pcie: PcieLink,
    pub errors: Vec<FieldError>,
}

/// The PCIe link as trained now against what the GPU and slot allow, and the
/// replay counter (link-level retransmissions). Idle GPUs train their link down
/// to save power, so a lower generation means something only under load.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PcieLink {
    pub gen: Option<u32>,
    pub gen_max: Option<u32>,
    pub width: Option<u32>,
    pub width_max: Option<u32>,
    pub replays: Option<u64>,
}

impl SlowState {
    pub fn apply(&self, r: &mut GpuReading) {
        r.processes.clone_from(&self.processes);
        r.processes_t_ns = self.t_ns;
        r.ecc_corrected_total = self.ecc_corrected;
        r.ecc_uncorrected_total = self.ecc_uncorrected;
        if let Some((c, u, p, f)) = self.remapped {
            r.remapped_rows_correctable = Some(c);
            r.remapped_rows_uncorrectable = Some(u);
            r.remapped_rows_pending = Some(p);
            r.remapped_rows_failure = Some(f);
        }
        r.pcie_link_gen = self.pcie.gen;
        r.pcie_link_gen_max = self.pcie.gen_max;
        r.pcie_link_width = self.pcie.width;
        r.pcie_link_width_max = self.pcie.width_max;
        r.pcie_replay_count = self.pcie.replays;
        r.errors.extend(self.errors.iter().cloned());
    }
}

/// Name of a process from /proc/<pid>/comm (bounded), or "" when not visible.
pub fn process_name(pid: u32) -> String {
    use std::io::Read;
    let mut buf = [0u8; 64];
    let n = std::fs::File::open(format!("/proc/{pid}/comm"))
        .and_then(|mut f| f.read(&mut buf))
        .unwrap_or(0);
    String::from_utf8_lossy(&buf[..n]).trim().to_string()
}

fn remapped_rows(nvml: &Nvml, dev: &Device<'_>) -> Result<(u32, u32, bool, bool), NvmlError> {
    let call = sym(&nvml.lib().nvmlDeviceGetRemappedRows)?;
    let (mut c, mut u, mut p, mut f) = (0u32, 0u32, 0u32, 0u32);
    // SAFETY: live device handle, four out-parameters we own.
    check(unsafe { call(dev.handle(), &mut c, &mut u, &mut p, &mut f) })?;
    Ok((c, u, p != 0, f != 0))
}

fn keep<T>(errors: &mut Vec<FieldError>, field: &str, r: Result<T, NvmlError>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(NvmlError::NotSupported) => None,
        Err(e) => {
            errors.push(FieldError {
                field: field.into(),
                error: super::describe(&e),
            });
            None
        }
    }
}

/// One GPU's process list and when it was read (the middle of the call: it may
/// take long with a CUDA context being created), or why it could not be.
struct ProcReads {
    t_ns: u64,
    processes: Vec<GpuProcess>,
    error: Option<FieldError>,
}

/// One GPU's ECC totals and remapped rows.
#[derive(Default)]
struct HealthReads {
    ecc_corrected: Option<u64>,
    ecc_uncorrected: Option<u64>,
    remapped: Option<(u32, u32, bool, bool)>,
    errors: Vec<FieldError>,
}

/// One GPU's PCIe link and the errors of its read.
#[derive(Default)]
struct PcieReads {
    link: PcieLink,
    errors: Vec<FieldError>,
}

fn device_error(e: &NvmlError) -> FieldError {
    FieldError {
        field: "device".into(),
        error: super::describe(e),
    }
}

/// Reads the process list (into `lister`'s buffer and `scratch`); names of
/// processes already listed in `prev` are kept rather than read from `/proc` again.
fn read_processes(
    nvml: &Nvml,
    dev: &Device<'_>,
    lister: &mut ProcessLister,
    scratch: &mut Vec<ProcMem>,
    prev: Option<&ProcReads>,
    calls: &CallNames,
    costs: &CallCosts,
) -> ProcReads {
    let t0 = now_ns();
    // SAFETY: the raw handle is only passed back to this NVML, which `nvml` holds.
    let handle = unsafe { dev.handle() };
    let read = calls.time(costs, Call::Processes, || {
        lister.read(nvml, handle, scratch)
    });
    let t_ns = t0 + (now_ns().saturating_sub(t0)) / 2;
    let mut errors = Vec::new();
    if keep(&mut errors, "processes", read).is_none() {
        scratch.clear();
    }
    let processes = scratch
        .iter()
        .map(|p| GpuProcess {
            pid: p.pid,
            name: prev
                .and_then(|r| r.processes.iter().find(|x| x.pid == p.pid))
                .map_or_else(|| process_name(p.pid), |x| x.name.clone()),
            used_bytes: p.used_bytes.unwrap_or(0),
        })
        .collect();
    ProcReads {
        t_ns,
        processes,
        error: errors.pop(),
    }
}

fn read_health(nvml: &Nvml, dev: &Device<'_>, calls: &CallNames, costs: &CallCosts) -> HealthReads {
    let mut h = HealthReads::default();
    h.ecc_corrected = keep(
        &mut h.errors,
        "ecc_corrected",
        calls.time(costs, Call::EccCorrected, || {
            dev.total_ecc_errors(MemoryError::Corrected, EccCounter::Aggregate)
        }),
    );
    h.ecc_uncorrected = keep(
        &mut h.errors,
        "ecc_uncorrected",
        calls.time(costs, Call::EccUncorrected, || {
            dev.total_ecc_errors(MemoryError::Uncorrected, EccCounter::Aggregate)
        }),
    );
    h.remapped = keep(
        &mut h.errors,
        "remapped_rows",
        calls.time(costs, Call::RemappedRows, || remapped_rows(nvml, dev)),
    );
    h
}

fn read_pcie(dev: &Device<'_>, calls: &CallNames, costs: &CallCosts) -> PcieReads {
    let mut errors = Vec::new();
    let e = &mut errors;
    let link = calls.time(costs, Call::PcieLink, || PcieLink {
        gen: keep(e, "pcie_link_gen", dev.current_pcie_link_gen()),
        gen_max: keep(e, "pcie_link_gen_max", dev.max_pcie_link_gen()),
        width: keep(e, "pcie_link_width", dev.current_pcie_link_width()),
        width_max: keep(e, "pcie_link_width_max", dev.max_pcie_link_width()),
        replays: keep(e, "pcie_replay_count", dev.pcie_replay_counter()).map(u64::from),
    });
    PcieReads { link, errors }
}

/// One GPU's latest slow reads.
struct Slot {
    index: u32,
    calls: CallNames,
    procs: Option<ProcReads>,
    health: HealthReads,
    pcie: PcieReads,
    device: Option<FieldError>,
    /// The process list as the burst state machine takes it (reused).
    list: Vec<(u32, u64)>,
    lister: ProcessLister,
    /// The process list as NVML gave it (reused).
    scratch: Vec<ProcMem>,
    /// The agent's own processes in the last list.
    own_seen: Vec<u32>,
    /// When the process list was last read.
    listed: Option<Instant>,
}

impl Slot {
    fn state(&self) -> SlowState {
        let mut errors: Vec<FieldError> = self.device.iter().cloned().collect();
        errors.extend(self.procs.as_ref().and_then(|p| p.error.clone()));
        errors.extend(self.health.errors.iter().cloned());
        errors.extend(self.pcie.errors.iter().cloned());
        SlowState {
            index: self.index,
            t_ns: self.procs.as_ref().map_or(0, |p| p.t_ns),
            processes: self
                .procs
                .as_ref()
                .map(|p| p.processes.clone())
                .unwrap_or_default(),
            ecc_corrected: self.health.ecc_corrected,
            ecc_uncorrected: self.health.ecc_uncorrected,
            remapped: self.health.remapped,
            pcie: self.pcie.link,
            errors,
        }
    }
}

/// The slow sampler: reads every GPU each `interval` (process list, ECC, remapped
/// rows) and the process list of a GPU in a burst ([`super::burst`]) every
/// [`BURST_INTERVAL`]; results land in `out`, where the fast sampler picks them up.
pub struct SlowSampler {
    nvml: Arc<Nvml>,
    gpus: Vec<Slot>,
    interval: Duration,
    out: Arc<Mutex<Vec<SlowState>>>,
    board: Option<Arc<BurstBoard>>,
    /// Which listed processes are the agent's own (left out of the burst's lists).
    own: OwnProcesses,
}

impl SlowSampler {
    pub fn new(
        nvml: Arc<Nvml>,
        indices: &[u32],
        interval: Duration,
        out: Arc<Mutex<Vec<SlowState>>>,
    ) -> Self {
        SlowSampler {
            nvml,
            gpus: indices
                .iter()
                .map(|&index| Slot {
                    index,
                    calls: CallNames::new(index),
                    procs: None,
                    health: HealthReads::default(),
                    pcie: PcieReads::default(),
                    device: None,
                    list: Vec::new(),
                    lister: ProcessLister::default(),
                    scratch: Vec::new(),
                    own_seen: Vec::new(),
                    listed: None,
                })
                .collect(),
            interval,
            out,
            board: None,
            own: OwnProcesses::new(std::process::id()),
        }
    }

    /// Follows (and feeds) the burst states of `board`.
    pub fn with_burst(mut self, board: Arc<BurstBoard>) -> Self {
        self.board = Some(board);
        self
    }

    /// Reads the GPUs due: all of them when `full` (with ECC and remapped rows when
    /// `health`, the PCIe link when `pcie`), else those whose burst wants a
    /// process list.
    fn read(&mut self, full: bool, health: bool, pcie: bool, costs: &CallCosts) {
        let mut any = false;
        for slot in &mut self.gpus {
            let due = self
                .board
                .as_ref()
                .is_some_and(|b| b.list_due(slot.index, now_ns()));
            if !full && !due {
                continue;
            }
            let now = Instant::now();
            let steady = self.board.as_ref().is_some_and(|b| b.steady(slot.index));
            let list = list_now(due, steady, slot.listed, now);
            if !list && !health && !pcie {
                continue;
            }
            any = true;
            let started = now;
            let dev = match slot.calls.time(costs, Call::Device, || {
                self.nvml.device_by_index(slot.index)
            }) {
                Ok(d) => d,
                Err(e) => {
                    slot.device = Some(device_error(&e));
                    slot.calls.record(costs, Call::SlowTick, started.elapsed());
                    continue;
                }
            };
            slot.device = None;
            if list {
                slot.listed = Some(now);
                read_slot_processes(
                    slot,
                    &self.nvml,
                    &dev,
                    self.board.as_deref(),
                    &mut self.own,
                    costs,
                );
            }
            if health {
                slot.health = read_health(&self.nvml, &dev, &slot.calls, costs);
            }
            if pcie {
                slot.pcie = read_pcie(&dev, &slot.calls, costs);
            }
            slot.calls.record(costs, Call::SlowTick, started.elapsed());
        }
        if !any {
            return;
        }
        if full {
            let gpus = &self.gpus;
            self.own.retain(|pid| {
                gpus.iter()
                    .filter_map(|g| g.procs.as_ref())
                    .any(|p| p.processes.iter().any(|x| x.pid == pid))
            });
        }
        let states: Vec<SlowState> = self.gpus.iter().map(Slot::state).collect();
        if let Ok(mut g) = self.out.lock() {
            *g = states;
        }
    }
}

/// One GPU's process list, told to the burst board (the agent's own processes
/// apart).
fn read_slot_processes(
    slot: &mut Slot,
    nvml: &Nvml,
    dev: &Device<'_>,
    board: Option<&BurstBoard>,
    own: &mut OwnProcesses,
    costs: &CallCosts,
) {
    let p = read_processes(
        nvml,
        dev,
        &mut slot.lister,
        &mut slot.scratch,
        slot.procs.as_ref(),
        &slot.calls,
        costs,
    );
    if let Some(board) = board {
        // The agent's own processes (a probe's driver) are no cold start.
        slot.list.clear();
        let mut own_appeared = false;
        let mut own_now = Vec::new();
        for x in &p.processes {
            if own.is_own(x.pid, |q| proc_ppid(Path::new("/proc"), q)) {
                own_appeared |= !slot.own_seen.contains(&x.pid);
                own_now.push(x.pid);
            } else {
                slot.list.push((x.pid, x.used_bytes));
            }
        }
        slot.own_seen = own_now;
        if p.error.is_none() {
            board.observe(slot.index, p.t_ns, Observation::Processes(&slot.list));
            if own_appeared {
                board.observe(slot.index, p.t_ns, Observation::OwnAppeared);
            }
        }
    }
    slot.procs = Some(p);
}

impl EventSource for SlowSampler {
    fn name(&self) -> &'static str {
        "collect-gpu-slow"
    }

    fn run(mut self: Box<Self>, ctx: RunContext) {
        // Waits on the board end at shutdown too (they wake for new bursts).
        if let Some(b) = &self.board {
            let b = Arc::clone(b);
            ctx.shutdown.on_trigger(move || b.stop());
        }
        let mut next_full = Instant::now();
        let mut health = Cadence::new(next_full, HEALTH_EVERY.max(self.interval));
        let mut pcie = Cadence::new(next_full, PCIE_LINK_EVERY.max(self.interval));
        loop {
            let generation = self.board.as_ref().map_or(0, |b| b.generation());
            let now = Instant::now();
            let full = now >= next_full;
            let health_due = full && health.take(now);
            let pcie_due = full && pcie.take(now);
            self.read(full, health_due, pcie_due, &ctx.costs);
            if full {
                next_full += self.interval;
                if next_full < now {
                    next_full = now + self.interval;
                }
            }
            let until_full = next_full.saturating_duration_since(Instant::now());
            let wait = match &self.board {
                Some(b) if b.any_bursting() => until_full.min(BURST_INTERVAL),
                _ => until_full,
            };
            match &self.board {
                Some(b) => b.wait(generation, wait),
                None => drop(ctx.shutdown.sleep(wait)),
            }
            if ctx.shutdown.is_triggered() {
                break;
            }
        }
    }
}
