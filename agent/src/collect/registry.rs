//! The configuration → the list of producers the agent runs, and what discovery
//! found on the way (for the inventory). One function per area, in the order the
//! producers start.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use servescope_proto::v1::{Availability, GpuTopology, HostInfo, RdmaDeviceInfo};

use super::gpu::burst::Policy;
use super::gpu::{self, BurstBoard, GpuCollector, GpuInit, SlowSampler, XidSource};
use super::host::HostCollector;
use super::kmsg::{self, KmsgSource};
use super::rdma::{self, RdmaCollector, RdmaSampler, DEVICE_COUNTERS_EVERY};
use super::selfstats::SelfCollector;
use super::startup_watch::{StartupWatch, WatchConfig};
use super::{spawn, spawn_source, Collector, EventSource, RunContext};
use crate::config::AgentConfig;
use crate::ring::Ring;

/// One producer and how it runs.
pub enum Producer {
    /// Read every `interval` on the shared tick grid.
    Periodic {
        collector: Box<dyn Collector>,
        interval: Duration,
    },
    /// Runs its own loop and pushes.
    Source(Box<dyn EventSource>),
}

impl Producer {
    pub fn periodic(collector: impl Collector, interval: Duration) -> Self {
        Producer::Periodic {
            collector: Box::new(collector),
            interval,
        }
    }

    fn source(source: impl EventSource) -> Self {
        Producer::Source(Box::new(source))
    }

    /// Starts it on its own thread.
    pub fn spawn(self, ctx: &RunContext) -> std::io::Result<JoinHandle<()>> {
        match self {
            Producer::Periodic {
                collector,
                interval,
            } => spawn(
                collector,
                interval,
                Arc::clone(&ctx.ring),
                ctx.costs.clone(),
                ctx.shutdown.clone(),
            ),
            Producer::Source(s) => spawn_source(s, ctx.clone()),
        }
    }
}

/// What discovery found, for the inventory.
pub struct Found {
    pub gpu: GpuInit,
    /// GPU availability as the fast sampler last saw it.
    pub gpu_status: Arc<Mutex<Availability>>,
    pub host: Option<HostInfo>,
    pub rdma_devices: Vec<RdmaDeviceInfo>,
    pub topology: Vec<GpuTopology>,
    pub kernel_log: Availability,
    /// What could not be set up, for a person.
    pub notes: Vec<String>,
}

/// The producers to start, in order, and what was found.
pub struct Registry {
    pub producers: Vec<Producer>,
    pub found: Found,
}

/// Builds the producers `cfg` asks for. `ring` is where samples and events go;
/// `streams` counts the live telemetry streams (reported in self-telemetry).
pub fn build(cfg: &AgentConfig, ring: &Arc<Ring>, streams: &Arc<AtomicU64>) -> Registry {
    let mut producers = Vec::new();
    let mut notes = Vec::new();
    let (gpu, gpu_status, board) = gpus(cfg, ring, &mut producers, &mut notes);
    let host = host(cfg, &mut producers, &mut notes);
    let rdma_devices = rdma(cfg, &mut producers, &mut notes);
    let gpu_ids: Vec<(u32, String)> = gpu
        .gpus
        .iter()
        .map(|x| (x.index, x.pci_bus_id.clone()))
        .collect();
    let topology = rdma::topology(&cfg.sysfs_root, &gpu_ids, &rdma_devices);
    let kernel_log = kernel_log(cfg, gpu_ids, &mut producers);
    if cfg.startup_watch {
        let w = WatchConfig::new(cfg.startup_log_globs.clone());
        let mut watch = StartupWatch::new(w);
        if let Some(b) = board {
            // A serving process found through /proc starts a burst before its
            // first CUDA call.
            watch = watch.on_new_serving(move |pid| b.serving(pid));
        }
        producers.push(Producer::source(watch));
    }
    producers.push(Producer::periodic(
        SelfCollector {
            ring: Arc::clone(ring),
            streams: Arc::clone(streams),
            shares_process: cfg.embedded,
        },
        cfg.self_interval,
    ));
    Registry {
        producers,
        found: Found {
            gpu,
            gpu_status,
            host,
            rdma_devices,
            topology,
            kernel_log,
            notes,
        },
    }
}

/// NVML: the slow sampler, the fast sampler and the XID waiter, when there are
/// GPUs, sharing the GPUs' burst states (returned for the `/proc` discovery).
fn gpus(
    cfg: &AgentConfig,
    ring: &Arc<Ring>,
    producers: &mut Vec<Producer>,
    notes: &mut Vec<String>,
) -> (GpuInit, Arc<Mutex<Availability>>, Option<Arc<BurstBoard>>) {
    let g = gpu::init(cfg.nvml_lib.as_deref());
    let status = Arc::new(Mutex::new(g.availability.clone()));
    let Some(nvml) = g.nvml.as_ref().filter(|_| !g.gpus.is_empty()) else {
        return (g, status, None);
    };
    let slow = Arc::new(Mutex::new(Vec::new()));
    let indices: Vec<u32> = g.gpus.iter().map(|x| x.index).collect();
    let board = BurstBoard::new(&indices, Policy::default(), Arc::clone(ring));
    producers.push(Producer::source(
        SlowSampler::new(
            Arc::clone(nvml),
            &indices,
            cfg.process_interval,
            Arc::clone(&slow),
        )
        .with_burst(Arc::clone(&board)),
    ));
    let fast = GpuCollector::new(
        Arc::clone(nvml),
        &g.gpus,
        slow,
        Arc::clone(ring),
        Arc::clone(&status),
    )
    .with_interval(cfg.sample_interval)
    .with_counters_interval(cfg.sample_interval, cfg.gpu_counters_interval)
    .with_burst(Arc::clone(&board));
    producers.push(Producer::periodic(fast, cfg.sample_interval));
    let count = u32::try_from(g.gpus.len()).unwrap_or(u32::MAX);
    match XidSource::new(Arc::clone(nvml), count) {
        Ok(x) => producers.push(Producer::source(x)),
        Err(why) => notes.push(format!("gpu: {why}")),
    }
    (g, status, Some(board))
}

/// Host CPU, memory and network; memory and network at the RDMA cadence.
fn host(
    cfg: &AgentConfig,
    producers: &mut Vec<Producer>,
    notes: &mut Vec<String>,
) -> Option<HostInfo> {
    let slow_every =
        u32::try_from(cfg.rdma_interval.as_nanos() / cfg.host_interval.as_nanos().max(1))
            .unwrap_or(u32::MAX);
    match HostCollector::new(&cfg.sysfs_root, slow_every) {
        Ok(mut h) => {
            let info = h.info();
            producers.push(Producer::periodic(h, cfg.host_interval));
            Some(info)
        }
        Err(why) => {
            notes.push(format!("host: {why}"));
            None
        }
    }
}

/// RDMA counters, when discovery finds devices.
fn rdma(
    cfg: &AgentConfig,
    producers: &mut Vec<Producer>,
    notes: &mut Vec<String>,
) -> Vec<RdmaDeviceInfo> {
    match RdmaCollector::discover(&cfg.sysfs_root) {
        Ok(r) => {
            let devices = r.inventory();
            notes.extend(r.notes().iter().cloned());
            if !devices.is_empty() {
                let r = r.with_device_counters_every(DEVICE_COUNTERS_EVERY);
                producers.push(Producer::periodic(RdmaSampler(r), cfg.rdma_interval));
            }
            devices
        }
        Err(e) => {
            notes.push(format!("rdma: {e}"));
            Vec::new()
        }
    }
}

/// Xid lines from /dev/kmsg, when enabled and readable.
fn kernel_log(
    cfg: &AgentConfig,
    gpu_ids: Vec<(u32, String)>,
    producers: &mut Vec<Producer>,
) -> Availability {
    if !cfg.kmsg {
        return Availability {
            available: false,
            detail: "disabled by configuration".into(),
        };
    }
    match kmsg::open() {
        Ok(f) => {
            producers.push(Producer::source(KmsgSource::new(f, gpu_ids)));
            Availability {
                available: true,
                detail: "/dev/kmsg (NVRM Xid lines)".into(),
            }
        }
        Err(e) => Availability {
            available: false,
            detail: format!("/dev/kmsg not readable: {e}"),
        },
    }
}
