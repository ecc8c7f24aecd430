//! GPU collector through NVML (nvml-wrapper, loaded at run time).
//!
//! Three threads: the fast sampler (memory, utilization, clocks, power, energy,
//! temperature, throttle reasons, PCIe/NVLink byte counters — cheap calls, every
//! sample interval), the slow sampler (per-process memory, ECC, remapped rows —
//! calls that take up to ~150 ms with a CUDA process present, on their own cadence
//! so the fast signals keep their rate), and the XID event waiter (blocking).
//! No NVML, no driver or no GPU: [`init`] says why and the agent runs on.

mod events;
pub mod fields;
pub mod gpm;
mod slow;

use std::path::Path;
use std::sync::{Arc, Mutex};

use nvml_wrapper::enum_wrappers::device::{Clock, TemperatureSensor};
use nvml_wrapper::error::NvmlError;
use nvml_wrapper::Nvml;
use servescope_proto::v1::{
    sample, Availability, Event, FieldError, GpuInfo, GpuReading, GpuSample,
};

use crate::clock::now_ns;
use crate::collector::{CallCosts, Collector};
use crate::ring::Ring;
use fields::WrapCounter;

pub use events::spawn_xid_watcher;
pub use slow::{spawn_slow_sampler, SlowState};

/// What NVML initialisation found.
pub struct GpuInit {
    pub availability: Availability,
    pub gpus: Vec<GpuInfo>,
    pub driver_version: String,
    pub cuda_driver_version: String,
    pub nvml_version: String,
    pub nvml: Option<Arc<Nvml>>,
}

/// Describes an NVML error for a person.
pub fn describe(e: &NvmlError) -> String {
    match e {
        NvmlError::LibloadingError(l) => format!("libnvidia-ml.so.1 could not be loaded: {l}"),
        NvmlError::DriverNotLoaded => "the NVIDIA driver is not loaded".into(),
        NvmlError::NoPermission => "no permission to talk to the NVIDIA driver".into(),
        NvmlError::GpuLost => "the GPU has fallen off the bus (GPU lost)".into(),
        NvmlError::LibraryNotFound => "NVML shared library not found".into(),
        other => other.to_string(),
    }
}

/// Loads NVML (from `lib` if given) and takes the GPU inventory.
pub fn init(lib: Option<&Path>) -> GpuInit {
    let res = match lib {
        Some(p) => Nvml::builder().lib_path(p.as_os_str()).init(),
        None => Nvml::init(),
    };
    let nvml = match res {
        Ok(n) => n,
        Err(e) => return unavailable(describe(&e)),
    };
    let count = match nvml.device_count() {
        Ok(c) => c,
        Err(e) => {
            return unavailable(format!(
                "NVML loaded but cannot count GPUs: {}",
                describe(&e)
            ))
        }
    };
    let mut gpus = Vec::new();
    let mut problems = Vec::new();
    for i in 0..count {
        match nvml.device_by_index(i) {
            Ok(d) => {
                let mem = d.memory_info().map(|m| m.total).unwrap_or(0);
                let links = fields::read(&nvml, &d, &[(fields::NVLINK_LINK_COUNT, 0)])
                    .ok()
                    .and_then(|v| v.into_iter().next())
                    .and_then(|r| r.ok())
                    .map(|v| u32::try_from(v.value).unwrap_or(0))
                    .unwrap_or(0);
                gpus.push(GpuInfo {
                    index: i,
                    name: d.name().unwrap_or_default(),
                    uuid: d.uuid().unwrap_or_default(),
                    pci_bus_id: d
                        .pci_info()
                        .map(|p| p.bus_id.to_ascii_lowercase())
                        .unwrap_or_default(),
                    numa_node: d.numa_node_id().ok().and_then(|n| i32::try_from(n).ok()),
                    memory_total_bytes: mem,
                    nvlink_links: links,
                    architecture: d.architecture().map(|a| a.to_string()).unwrap_or_default(),
                });
            }
            Err(e) => problems.push(format!("GPU {i}: {}", describe(&e))),
        }
    }
    let detail = if count == 0 {
        "NVML loaded, but it reports 0 GPUs".to_string()
    } else {
        let mut d = format!("{} GPU(s) via NVML", gpus.len());
        if !problems.is_empty() {
            d.push_str(&format!("; {}", problems.join("; ")));
        }
        d
    };
    GpuInit {
        availability: Availability {
            available: !gpus.is_empty(),
            detail,
        },
        gpus,
        driver_version: nvml.sys_driver_version().unwrap_or_default(),
        cuda_driver_version: nvml
            .sys_cuda_driver_version()
            .map(|v| format!("{}.{}", v / 1000, (v % 1000) / 10))
            .unwrap_or_default(),
        nvml_version: nvml.sys_nvml_version().unwrap_or_default(),
        nvml: Some(Arc::new(nvml)),
    }
}

fn unavailable(reason: String) -> GpuInit {
    GpuInit {
        availability: Availability {
            available: false,
            detail: reason,
        },
        gpus: Vec::new(),
        driver_version: String::new(),
        cuda_driver_version: String::new(),
        nvml_version: String::new(),
        nvml: None,
    }
}

enum GpmState {
    Untried,
    On(Box<gpm::GpmCounter>),
    Off,
}

struct PerGpu {
    index: u32,
    links: u32,
    pcie_tx: WrapCounter,
    pcie_rx: WrapCounter,
    nvlink_tx: WrapCounter,
    nvlink_rx: WrapCounter,
    lost: bool,
    gpm: GpmState,
    /// Field-value path: the last NVLink totals (tx, rx), carried between reads.
    nvlink_last: Option<(u64, u64)>,
    /// GPM path: the last totals, carried between reads.
    gpm_last: Option<gpm::GpmTotals>,
    /// Last energy reading and the tick it is due again.
    energy: Option<u64>,
    energy_due: u64,
}

/// How often the cumulative energy counter is read: `nvmlDeviceGetTotalEnergyConsumption`
/// costs ~4 ms of CPU per call on Hopper (measured on an H200, driver 580), which at
/// 100 ms sampling alone would be 4 % of a core.
pub const ENERGY_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);
/// How often per-link NVLink field values are read on GPUs without GPM.
pub const NVLINK_FIELDS_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// The fast sampler.
pub struct GpuCollector {
    nvml: Arc<Nvml>,
    gpus: Vec<PerGpu>,
    slow: Arc<Mutex<Vec<SlowState>>>,
    ring: Arc<Ring>,
    status: Arc<Mutex<Availability>>,
    reqs: Vec<(u32, u32)>,
    tick: u64,
    energy_every: u64,
    nvlink_every: u64,
    /// GPM (PCIe/NVLink bytes) is read every this many ticks.
    counters_every: u64,
}

impl GpuCollector {
    /// Tells the collector its sample interval, so that the energy counter is read
    /// every [`ENERGY_INTERVAL`] rather than every tick.
    pub fn with_interval(mut self, interval: std::time::Duration) -> Self {
        let i = interval.as_nanos().max(1);
        self.energy_every = u64::try_from(ENERGY_INTERVAL.as_nanos().div_ceil(i))
            .unwrap_or(1)
            .max(1);
        self.nvlink_every = u64::try_from(NVLINK_FIELDS_INTERVAL.as_nanos().div_ceil(i))
            .unwrap_or(1)
            .max(1);
        self
    }

    /// Reads GPM byte counters every `counters` (rounded up to whole ticks of
    /// `interval`); samples in between repeat the last totals, marked stale. Only
    /// GPM: the 32-bit field-value counters of older GPUs are read every tick, since
    /// they wrap.
    pub fn with_counters_interval(
        mut self,
        interval: std::time::Duration,
        counters: std::time::Duration,
    ) -> Self {
        let i = interval.as_nanos().max(1);
        self.counters_every = u64::try_from(counters.as_nanos().div_ceil(i))
            .unwrap_or(1)
            .max(1);
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
                    links: g.nvlink_links,
                    pcie_tx: WrapCounter::default(),
                    pcie_rx: WrapCounter::default(),
                    nvlink_tx: WrapCounter::default(),
                    nvlink_rx: WrapCounter::default(),
                    lost: false,
                    energy: None,
                    energy_due: 0,
                    gpm: GpmState::Untried,
                    nvlink_last: None,
                    gpm_last: None,
                })
                .collect(),
            slow,
            ring,
            status,
            reqs: Vec::new(),
            tick: 0,
            energy_every: 1,
            nvlink_every: 1,
            counters_every: 1,
        }
    }
}

/// The field-value path (GPUs without GPM): PCIe counters every tick (32-bit,
/// widened by [`WrapCounter`]; safe while a link moves < 4 GiB per interval, i.e.
/// PCIe Gen4 at 100 ms), NVLink per-link counters (64-bit, KiB) only when
/// `nvlink_due`, since each field costs ~135 µs; between reads the last NVLink
/// totals are carried.
fn read_fields(
    nvml: &Nvml,
    dev: &nvml_wrapper::Device<'_>,
    g: &mut PerGpu,
    reqs: &mut Vec<(u32, u32)>,
    nvlink_due: bool,
    r: &mut GpuReading,
    costs: &CallCosts,
) {
    reqs.clear();
    reqs.push((fields::PCIE_TX_BYTES, 0));
    reqs.push((fields::PCIE_RX_BYTES, 0));
    if nvlink_due {
        for l in 0..g.links {
            reqs.push((fields::NVLINK_DATA_TX_KIB, l));
            reqs.push((fields::NVLINK_DATA_RX_KIB, l));
        }
    }
    let e = &mut r.errors;
    match costs.time("gpu.fields", || fields::read(nvml, dev, reqs)) {
        Ok(vals) => {
            let mut it = vals.into_iter();
            let mut next = || it.next().unwrap_or(Err(NvmlError::NotSupported));
            if let Some(v) = note(e, "pcie_tx_bytes", next()) {
                r.pcie_tx_bytes = Some(g.pcie_tx.update(v));
            }
            if let Some(v) = note(e, "pcie_rx_bytes", next()) {
                r.pcie_rx_bytes = Some(g.pcie_rx.update(v));
            }
            if nvlink_due {
                let (mut tx, mut rx, mut ok) = (0u64, 0u64, false);
                for _ in 0..g.links {
                    if let (Ok(t), Ok(x)) = (next(), next()) {
                        tx = tx.saturating_add(t.value);
                        rx = rx.saturating_add(x.value);
                        ok = true;
                    }
                }
                if ok {
                    let kib = |v: u64| fields::FieldValue {
                        value: v.saturating_mul(1024),
                        is_u32: false,
                    };
                    g.nvlink_last =
                        Some((g.nvlink_tx.update(kib(tx)), g.nvlink_rx.update(kib(rx))));
                }
            }
        }
        Err(err) => e.push(FieldError {
            field: "field_values".into(),
            error: describe(&err),
        }),
    }
    if let Some((tx, rx)) = g.nvlink_last {
        r.nvlink_tx_bytes = Some(tx);
        r.nvlink_rx_bytes = Some(rx);
    }
}

fn note<T>(errors: &mut Vec<FieldError>, field: &str, r: Result<T, NvmlError>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(NvmlError::NotSupported) => None,
        Err(e) => {
            errors.push(FieldError {
                field: field.to_string(),
                error: describe(&e),
            });
            None
        }
    }
}

impl Collector for GpuCollector {
    fn name(&self) -> &'static str {
        "gpu"
    }

    fn sample(&mut self, costs: &CallCosts) -> Option<sample::Data> {
        let nvml = Arc::clone(&self.nvml);
        // The slow sampler's latest readings, copied straight into each GPU's reading
        // (no intermediate clone of every process list on this 100 ms path).
        let slow = Arc::clone(&self.slow);
        let slow = slow.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = Vec::with_capacity(self.gpus.len());
        for g in &mut self.gpus {
            let mut r = GpuReading {
                index: g.index,
                ..Default::default()
            };
            let dev = match nvml.device_by_index(g.index) {
                Ok(d) => d,
                Err(e) => {
                    let why = describe(&e);
                    if !g.lost {
                        g.lost = true;
                        self.ring.push(
                            now_ns(),
                            0,
                            sample::Data::Event(Event {
                                kind: "gpu_lost".into(),
                                source: "nvml".into(),
                                gpu_index: Some(g.index),
                                message: why.clone(),
                                ..Default::default()
                            }),
                        );
                        if let Ok(mut st) = self.status.lock() {
                            st.available = false;
                            st.detail = format!("GPU {}: {why}", g.index);
                        }
                    }
                    r.errors.push(FieldError {
                        field: "device".into(),
                        error: why,
                    });
                    out.push(r);
                    continue;
                }
            };
            let e = &mut r.errors;
            if let Some(m) = note(e, "memory", costs.time("gpu.memory", || dev.memory_info())) {
                r.memory_used_bytes = Some(m.used);
                r.memory_reserved_bytes = Some(m.reserved);
                r.memory_free_bytes = Some(m.free);
            }
            if let Some(u) = note(
                e,
                "utilization",
                costs.time("gpu.utilization", || dev.utilization_rates()),
            ) {
                r.util_gpu_pct = Some(u.gpu);
                r.util_memory_pct = Some(u.memory);
            }
            r.sm_clock_mhz = note(
                e,
                "sm_clock",
                costs.time("gpu.clocks", || dev.clock_info(Clock::SM)),
            );
            r.mem_clock_mhz = note(e, "mem_clock", dev.clock_info(Clock::Memory));
            r.power_mw = note(e, "power", costs.time("gpu.power", || dev.power_usage()));
            if self.tick >= g.energy_due {
                g.energy_due = self.tick + self.energy_every;
                g.energy = note(
                    e,
                    "energy",
                    costs.time("gpu.energy", || dev.total_energy_consumption()),
                );
                r.energy_mj = g.energy;
            } else {
                r.energy_mj = g.energy;
                r.energy_stale = g.energy.is_some();
            }
            r.temperature_c = note(e, "temperature", dev.temperature(TemperatureSensor::Gpu));
            r.throttle_reasons =
                note(e, "throttle_reasons", dev.current_throttle_reasons()).map(|t| t.bits());

            // PCIe/NVLink bytes: GPM where the GPU has it (no wrap, ~32 µs), else
            // NVML field values (32-bit PCIe counters, ~135 µs per field).
            if matches!(g.gpm, GpmState::Untried) {
                g.gpm = match gpm::GpmCounter::new(Arc::clone(&nvml), &dev) {
                    Ok(c) => GpmState::On(Box::new(c)),
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
            let mut need_fields = true;
            let gpm_due = self.tick.is_multiple_of(self.counters_every);
            if let (GpmState::On(_), false, Some(t)) = (&g.gpm, gpm_due, g.gpm_last) {
                r.pcie_tx_bytes = t.pcie_tx;
                r.pcie_rx_bytes = t.pcie_rx;
                r.nvlink_tx_bytes = t.nvlink_tx;
                r.nvlink_rx_bytes = t.nvlink_rx;
                r.counters_stale = true;
                need_fields = false;
            } else if let GpmState::On(c) = &mut g.gpm {
                match costs.time("gpu.gpm", || c.update(&dev)) {
                    Ok(t) => {
                        r.pcie_tx_bytes = t.pcie_tx;
                        r.pcie_rx_bytes = t.pcie_rx;
                        r.nvlink_tx_bytes = t.nvlink_tx;
                        r.nvlink_rx_bytes = t.nvlink_rx;
                        g.gpm_last = Some(t);
                        need_fields = false;
                    }
                    Err(err) => e.push(FieldError {
                        field: "gpm".into(),
                        error: describe(&err),
                    }),
                }
            }
            if need_fields {
                let nvlink_due = g.links > 0 && self.tick.is_multiple_of(self.nvlink_every);
                read_fields(&nvml, &dev, g, &mut self.reqs, nvlink_due, &mut r, costs);
            }
            if let Some(s) = slow.iter().find(|s| s.index == g.index) {
                s.apply(&mut r);
            }
            out.push(r);
        }
        self.tick += 1;
        Some(sample::Data::Gpu(GpuSample { gpus: out }))
    }
}
