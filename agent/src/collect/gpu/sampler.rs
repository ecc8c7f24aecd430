//! The fast GPU sampler: each tick, the NVML reads of every GPU into a
//! [`RawReading`] (I/O only), then [`build_reading`] into the sample.
//!
//! Cheap enough for 8 GPUs at 10 Hz: device handles are looked up once; every tick
//! reads utilisation, and memory (through the cheaper NVML call, [`super::memory`])
//! except on a busy GPU whose memory holds steady, read every
//! [`BUSY_MEMORY_INTERVAL`] ([`MemoryCadence`]);
//! power every [`POWER_INTERVAL`]; clocks, temperature and throttle reasons
//! (slow-changing) every [`SLOW_FIELDS_INTERVAL`], repeated in between; energy
//! every [`ENERGY_INTERVAL`]; PCIe/NVLink counters every counters interval, and
//! every tick while the GPU is in a burst ([`super::burst`]). The cadences are
//! [`super::schedule`]'s.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nvml_wrapper::enum_wrappers::device::{Clock, TemperatureSensor};
use nvml_wrapper::{Device, Nvml};
use servescope_proto::v1::{sample, Availability, Event, GpuInfo, GpuSample};

use super::board::BurstBoard;
use super::build::{build_reading, GpuState};
use super::burst::Observation;
use super::calls::{Call, CallNames};
use super::memory::MemoryReader;
use super::raw::{read, RawFields, RawGpm, RawReading, RawReads, RawUtilization, Read, ReadError};
use super::schedule::{ticks, Due, MemoryCadence, MemoryRead, Schedule, BUSY_MEMORY_INTERVAL};
#[cfg(doc)]
use super::schedule::{ENERGY_INTERVAL, POWER_INTERVAL, SLOW_FIELDS_INTERVAL};
use super::slow::SlowState;
use super::{describe, fields, gpm};
use crate::clock::now_ns;
use crate::collect::{CallCosts, Collector};
use crate::ring::Ring;

/// A device handle looked up once. NVML handles stay valid while the library is
/// loaded (the collector holds it through its `Arc<Nvml>`); calls on a GPU that
/// fell off the bus return `GpuLost`.
#[derive(Clone, Copy)]
struct Handle(nvml_wrapper_sys::bindings::nvmlDevice_t);

// SAFETY: NVML is thread-safe; the handle is an opaque token, only passed to NVML.
unsafe impl Send for Handle {}

/// The slow-changing reads, repeated on the ticks they are not due.
#[derive(Clone)]
struct SlowFields {
    sm_clock_mhz: Read<u32>,
    mem_clock_mhz: Read<u32>,
    temperature_c: Read<u32>,
    throttle_reasons: Read<u64>,
}

enum GpmState {
    Untried,
    On(Box<gpm::GpmCounter>),
    Off,
}

struct PerGpu {
    index: u32,
    handle: Option<Handle>,
    /// The memory call chosen at the first read through a handle.
    memory: Option<MemoryReader>,
    /// When memory is read (every tick, or less often on a busy, steady GPU).
    mem_cadence: MemoryCadence,
    /// `None` until first read (read on the first tick).
    slow_fields: Option<SlowFields>,
    /// The last power reading, repeated until [`POWER_INTERVAL`] has passed.
    power_mw: Option<Read<u32>>,
    links: u32,
    lost: bool,
    gpm: GpmState,
    /// The tick the energy counter is due again.
    energy_due: u64,
    state: GpuState,
    calls: CallNames,
}

/// The fast sampler.
pub struct GpuCollector {
    nvml: Arc<Nvml>,
    gpus: Vec<PerGpu>,
    slow: Arc<Mutex<Vec<SlowState>>>,
    ring: Arc<Ring>,
    status: Arc<Mutex<Availability>>,
    reqs: Vec<(u32, u32)>,
    /// This tick's reads, kept for the next tick's.
    raws: Vec<RawReading>,
    board: Option<Arc<BurstBoard>>,
    tick: u64,
    schedule: Schedule,
}

impl GpuCollector {
    /// Tells the collector its sample interval, so that the energy counter is read
    /// every [`ENERGY_INTERVAL`] rather than every tick.
    pub fn with_interval(mut self, interval: Duration) -> Self {
        self.schedule = Schedule {
            counters_every: self.schedule.counters_every,
            ..Schedule::new(interval, Duration::ZERO)
        };
        for g in &mut self.gpus {
            g.mem_cadence = MemoryCadence::new(interval);
        }
        self
    }

    /// Feeds each tick's memory and utilisation to `board` and reads the byte
    /// counters every tick while a GPU is bursting.
    pub fn with_burst(mut self, board: Arc<BurstBoard>) -> Self {
        self.board = Some(board);
        self
    }

    /// Reads GPM byte counters every `counters` (rounded up to whole ticks of
    /// `interval`); samples in between repeat the last totals, marked stale. Only
    /// GPM: the 32-bit field-value counters of older GPUs are read every tick, since
    /// they wrap.
    pub fn with_counters_interval(mut self, interval: Duration, counters: Duration) -> Self {
        self.schedule.counters_every = ticks(interval, counters);
        self
    }

    pub fn new(
        nvml: Arc<Nvml>,
        gpus: &[GpuInfo],
        slow: Arc<Mutex<Vec<SlowState>>>,
        ring: Arc<Ring>,
        status: Arc<Mutex<Availability>>,
    ) -> Self {
        GpuCollector {
            nvml,
            gpus: gpus
                .iter()
                .map(|g| PerGpu {
                    index: g.index,
                    handle: None,
                    memory: None,
                    // Every tick until the interval is known.
                    mem_cadence: MemoryCadence::new(BUSY_MEMORY_INTERVAL),
                    slow_fields: None,
                    power_mw: None,
                    links: g.nvlink_links,
                    lost: false,
                    gpm: GpmState::Untried,
                    energy_due: 0,
                    state: GpuState::default(),
                    calls: CallNames::new(g.index),
                })
                .collect(),
            slow,
            ring,
            status,
            reqs: Vec::new(),
            raws: Vec::with_capacity(gpus.len()),
            board: None,
            tick: 0,
            schedule: Schedule::default(),
        }
    }

    /// States the memory call chosen for GPU `index` (once, at its first read), in
    /// the log and as a `collector_call` event.
    fn memory_call(&self, index: u32, what: String) {
        tracing::info!("{what}");
        self.ring.push(
            now_ns(),
            0,
            sample::Data::Event(Event {
                kind: "collector_call".into(),
                source: "agent".into(),
                gpu_index: Some(index),
                message: what,
                ..Default::default()
            }),
        );
    }

    /// Reports a GPU that stopped answering, once.
    fn lost(&self, index: u32, why: &str) {
        self.ring.push(
            now_ns(),
            0,
            sample::Data::Event(Event {
                kind: "gpu_lost".into(),
                source: "nvml".into(),
                gpu_index: Some(index),
                message: why.to_string(),
                ..Default::default()
            }),
        );
        if let Ok(mut st) = self.status.lock() {
            st.available = false;
            st.detail = format!("GPU {index}: {why}");
        }
    }
}

/// One GPU's NVML reads of one tick.
fn read_gpu(
    nvml: &Arc<Nvml>,
    g: &mut PerGpu,
    due: Due,
    reqs: &mut Vec<(u32, u32)>,
    costs: &CallCosts,
) -> RawReading {
    let c = &g.calls;
    let handle = match g.handle {
        Some(h) => h,
        None => match c.time(costs, Call::Device, || nvml.device_by_index(g.index)) {
            // SAFETY: the raw handle is only passed back to this NVML.
            Ok(d) => *g.handle.insert(Handle(unsafe { d.handle() })),
            Err(e) => {
                return RawReading {
                    index: g.index,
                    device: Err(describe(&e)),
                }
            }
        },
    };
    // SAFETY: the handle came from this NVML, which `nvml` keeps loaded.
    let dev = unsafe { Device::new(handle.0, nvml) };
    let memory = due.memory.then(|| {
        g.memory
            .get_or_insert_with(|| MemoryReader::probe(nvml, handle.0, c, costs))
            .read(nvml, handle.0, due.slow_fields, c, costs)
    });
    if matches!(memory, Some(Err(ReadError::Failed(_)))) {
        // Looked up again next tick: a GPU that fell off the bus is reported then.
        g.handle = None;
    }
    let utilization = read(c.time(costs, Call::Utilization, || dev.utilization_rates())).map(|u| {
        RawUtilization {
            gpu: u.gpu,
            memory: u.memory,
        }
    });
    let power_mw = match (&g.power_mw, due.power) {
        (Some(p), false) => p.clone(),
        _ => g
            .power_mw
            .insert(read(c.time(costs, Call::Power, || dev.power_usage())))
            .clone(),
    };
    if due.energy {
        g.energy_due = due.energy_next;
    }
    let energy_mj = due
        .energy
        .then(|| read(c.time(costs, Call::Energy, || dev.total_energy_consumption())));
    if due.slow_fields || g.slow_fields.is_none() {
        g.slow_fields = Some(read_slow_fields(&dev, c, costs));
    }
    let SlowFields {
        sm_clock_mhz,
        mem_clock_mhz,
        temperature_c,
        throttle_reasons,
    } = g
        .slow_fields
        .clone()
        .unwrap_or_else(|| read_slow_fields(&dev, c, costs));

    // PCIe/NVLink bytes: GPM where the GPU has it (no wrap, ~32 µs), else NVML
    // field values (32-bit PCIe counters, ~135 µs per field).
    if matches!(g.gpm, GpmState::Untried) {
        g.gpm = match gpm::GpmCounter::new(Arc::clone(nvml), &dev) {
            Ok(counter) => GpmState::On(Box::new(counter)),
            Err(err) => {
                tracing::info!(
                    "gpu {}: no GPM ({}); PCIe/NVLink bytes from NVML field values",
                    g.index,
                    describe(&err)
                );
                GpmState::Off
            }
        };
    }
    let gpm = match &mut g.gpm {
        GpmState::On(_) if !due.gpm && g.state.has_gpm_totals() => Some(RawGpm::NotDue),
        GpmState::On(counter) => Some(RawGpm::Read(read(
            g.calls.time(costs, Call::Gpm, || counter.update(&dev)),
        ))),
        GpmState::Untried | GpmState::Off => None,
    };
    let fields = match gpm {
        Some(RawGpm::NotDue | RawGpm::Read(Ok(_))) => None,
        _ => {
            let nvlink_due = g.links > 0 && due.nvlink;
            Some(read_fields(nvml, &dev, g, nvlink_due, reqs, costs))
        }
    };
    RawReading {
        index: g.index,
        device: Ok(RawReads {
            memory,
            utilization,
            sm_clock_mhz,
            mem_clock_mhz,
            power_mw,
            energy_mj,
            temperature_c,
            throttle_reasons,
            gpm,
            fields,
        }),
    }
}

/// Clocks, temperature and throttle reasons.
fn read_slow_fields(dev: &Device<'_>, c: &CallNames, costs: &CallCosts) -> SlowFields {
    SlowFields {
        sm_clock_mhz: read(c.time(costs, Call::SmClock, || dev.clock_info(Clock::SM))),
        mem_clock_mhz: read(c.time(costs, Call::MemClock, || dev.clock_info(Clock::Memory))),
        temperature_c: read(c.time(costs, Call::Temperature, || {
            dev.temperature(TemperatureSensor::Gpu)
        })),
        throttle_reasons: read(c.time(costs, Call::ThrottleReasons, || {
            dev.current_throttle_reasons()
        }))
        .map(|t| t.bits()),
    }
}

/// PCIe counters every time; NVLink per-link counters only when `nvlink_due`, since
/// each field costs ~135 µs.
fn read_fields(
    nvml: &Nvml,
    dev: &Device<'_>,
    g: &PerGpu,
    nvlink_due: bool,
    reqs: &mut Vec<(u32, u32)>,
    costs: &CallCosts,
) -> Result<RawFields, ReadError> {
    reqs.clear();
    reqs.push((fields::PCIE_TX_BYTES, 0));
    reqs.push((fields::PCIE_RX_BYTES, 0));
    if nvlink_due {
        for l in 0..g.links {
            reqs.push((fields::NVLINK_DATA_TX_KIB, l));
            reqs.push((fields::NVLINK_DATA_RX_KIB, l));
        }
    }
    let vals = read(
        g.calls
            .time(costs, Call::Fields, || fields::read(nvml, dev, reqs)),
    )?;
    let mut it = vals.into_iter();
    let mut next = || it.next().map_or(Err(ReadError::NotSupported), read);
    let pcie_tx = next();
    let pcie_rx = next();
    let nvlink = nvlink_due.then(|| {
        let mut links = Vec::with_capacity(g.links as usize);
        for _ in 0..g.links {
            let tx = next();
            let rx = next();
            links.push((tx, rx));
        }
        links
    });
    Ok(RawFields {
        pcie_tx,
        pcie_rx,
        nvlink,
    })
}

impl Collector for GpuCollector {
    fn name(&self) -> &'static str {
        "gpu"
    }

    fn sample(&mut self, costs: &CallCosts) -> Option<sample::Data> {
        let nvml = Arc::clone(&self.nvml);
        let tick = self.tick;
        let t_ns = now_ns();
        self.raws.clear();
        let mut newly_lost = Vec::new();
        let mut chosen = Vec::new();
        for g in &mut self.gpus {
            let burst = self.board.as_ref().is_some_and(|b| b.bursting(g.index));
            let mut due = self.schedule.due(tick, g.energy_due, burst);
            due.memory = g.mem_cadence.due(tick, burst);
            let started = Instant::now();
            let probed = g.memory.is_some();
            let raw = read_gpu(&nvml, g, due, &mut self.reqs, costs);
            if let Some(m) = g.memory.as_ref().filter(|_| !probed) {
                chosen.push((g.index, m.choice().describe(g.index)));
            }
            match &raw.device {
                Ok(r) => {
                    let mem_used = r
                        .memory
                        .as_ref()
                        .and_then(|m| m.as_ref().ok())
                        .map(|m| m.used);
                    let util_pct = r.utilization.as_ref().ok().map(|u| u.gpu);
                    let read = match (&r.memory, mem_used) {
                        (None, _) => MemoryRead::Skipped,
                        (Some(_), Some(used)) => MemoryRead::Used(used),
                        (Some(_), None) => MemoryRead::Failed,
                    };
                    if let Some(slowed) = g.mem_cadence.observe(tick, read, util_pct, burst) {
                        if let Some(b) = &self.board {
                            b.set_steady(g.index, slowed);
                        }
                        tracing::debug!(
                            "gpu {}: memory read {} (utilisation {util_pct:?} %)",
                            g.index,
                            if slowed {
                                "once a second: busy and steady"
                            } else {
                                "every tick"
                            }
                        );
                    }
                    if let Some(b) = &self.board {
                        let obs = Observation::Tick { mem_used, util_pct };
                        b.observe(g.index, t_ns, obs);
                    }
                }
                Err(why) => {
                    if !g.lost {
                        g.lost = true;
                        newly_lost.push((g.index, why.clone()));
                    }
                }
            }
            let took = started.elapsed();
            g.calls.record(costs, Call::Tick, took);
            if burst {
                g.calls.record(costs, Call::BurstTick, took);
            }
            self.raws.push(raw);
        }
        // The slow sampler's latest readings, copied straight into each GPU's reading
        // (no intermediate clone of every process list on this 100 ms path); locked
        // only after the NVML reads, so the slow sampler never waits on them.
        let slow = Arc::clone(&self.slow);
        let slow = slow.lock().unwrap_or_else(|e| e.into_inner());
        let out = self
            .raws
            .drain(..)
            .zip(&mut self.gpus)
            .map(|(raw, g)| {
                let s = slow.iter().find(|s| s.index == g.index);
                build_reading(raw, &mut g.state, s)
            })
            .collect();
        drop(slow);
        for (index, why) in newly_lost {
            self.lost(index, &why);
        }
        for (index, what) in chosen {
            self.memory_call(index, what);
        }
        self.tick += 1;
        Some(sample::Data::Gpu(GpuSample { gpus: out }))
    }
}
