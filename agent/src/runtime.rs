//! Starts an agent: takes the inventory, spawns the collectors, serves gRPC and
//! /metrics. Used by the `servescope-agent` binary and in-process (demo, tests).

use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use servescope_fabric::libs;
use servescope_proto::v1::agent_server::AgentServer;
use servescope_proto::v1::{sample, Availability, Inventory};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::{Identity, Server, ServerTlsConfig};

use crate::auth::TokenCheck;
use crate::clock::now_ns;
use crate::collector::{self, CallCosts, Collector, Shutdown};
use crate::config::AgentConfig;
use crate::host::HostCollector;
use crate::rdma::RdmaCollector;
use crate::ring::{Ring, RingLimits};
use crate::selfstats::SelfCollector;
use crate::service::{AgentService, InventorySource};
use crate::{gpu, kmsg, metrics_http, rdma};

/// Errors that stop the agent from starting.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr} ({what}): {source}")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("TLS configuration rejected: {0}")]
    Tls(String),
    #[error("cannot start a collector thread: {0}")]
    Thread(std::io::Error),
}

/// A running agent.
pub struct AgentHandle {
    /// Where gRPC is served (the real port when 0 was asked for).
    pub grpc_addr: SocketAddr,
    pub metrics_addr: Option<SocketAddr>,
    pub ring: Arc<Ring>,
    pub inventory: Arc<InventorySource>,
    stop_threads: Shutdown,
    stop_tasks: watch::Sender<bool>,
    threads: Vec<JoinHandle<()>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl AgentHandle {
    /// Stops serving and collecting, and waits for every thread.
    pub async fn shutdown(self) {
        self.stop_tasks.send_replace(true);
        self.stop_threads.trigger();
        for t in self.tasks {
            let _ = t.await;
        }
        let threads = self.threads;
        let _ = tokio::task::spawn_blocking(move || {
            for t in threads {
                let _ = t.join();
            }
        })
        .await;
    }
}

struct RdmaSampler(RdmaCollector);

impl Collector for RdmaSampler {
    fn name(&self) -> &'static str {
        "rdma"
    }
    fn sample(&mut self, _: &CallCosts) -> Option<sample::Data> {
        Some(sample::Data::Rdma(self.0.sample()))
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

fn instance_id() -> u64 {
    let mut b = [0u8; 8];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b))
        .is_ok()
    {
        return u64::from_le_bytes(b);
    }
    now_ns() ^ u64::from(std::process::id()).rotate_left(32)
}

/// Starts the agent with `cfg`. Must be called inside a tokio runtime.
pub async fn start(cfg: AgentConfig) -> Result<AgentHandle, StartError> {
    let started = now_ns();
    let interval_ns = u64::try_from(cfg.sample_interval.as_nanos())
        .unwrap_or(u64::MAX)
        .max(1);
    let horizon_ns = u64::try_from(cfg.buffer_horizon.as_nanos()).unwrap_or(u64::MAX);
    // Kinds per tick at most: gpu + host + rdma + self + a margin for events.
    let per_horizon = usize::try_from(horizon_ns / interval_ns).unwrap_or(usize::MAX);
    let ring = Arc::new(Ring::new(RingLimits {
        horizon_ns,
        max_samples: per_horizon.saturating_mul(4).saturating_add(4096),
        max_bytes: cfg.buffer_max_bytes,
    }));
    let stop = Shutdown::default();
    let costs = CallCosts::default();
    let mut threads = Vec::new();
    let mut notes = Vec::new();

    // GPU.
    let g = gpu::init(cfg.nvml_lib.as_deref());
    let gpu_status = Arc::new(Mutex::new(g.availability.clone()));
    let gpu_ids: Vec<(u32, String)> = g
        .gpus
        .iter()
        .map(|x| (x.index, x.pci_bus_id.clone()))
        .collect();
    if let Some(nvml) = &g.nvml {
        if !g.gpus.is_empty() {
            let slow = Arc::new(Mutex::new(Vec::new()));
            let indices: Vec<u32> = g.gpus.iter().map(|x| x.index).collect();
            threads.push(
                gpu::spawn_slow_sampler(
                    Arc::clone(nvml),
                    indices,
                    cfg.process_interval,
                    Arc::clone(&slow),
                    costs.clone(),
                    stop.clone(),
                )
                .map_err(StartError::Thread)?,
            );
            let c = gpu::GpuCollector::new(
                Arc::clone(nvml),
                &g.gpus,
                slow,
                Arc::clone(&ring),
                Arc::clone(&gpu_status),
            )
            .with_interval(cfg.sample_interval)
            .with_counters_interval(cfg.sample_interval, cfg.gpu_counters_interval);
            threads.push(
                collector::spawn(
                    Box::new(c),
                    cfg.sample_interval,
                    Arc::clone(&ring),
                    costs.clone(),
                    stop.clone(),
                )
                .map_err(StartError::Thread)?,
            );
            let count = u32::try_from(g.gpus.len()).unwrap_or(u32::MAX);
            match gpu::spawn_xid_watcher(Arc::clone(nvml), count, Arc::clone(&ring), stop.clone()) {
                Ok(h) => threads.push(h),
                Err(why) => notes.push(format!("gpu: {why}")),
            }
        }
    }

    // Host.
    let mut host_info = None;
    let slow_every =
        u32::try_from(cfg.rdma_interval.as_nanos() / cfg.host_interval.as_nanos().max(1))
            .unwrap_or(u32::MAX);
    match HostCollector::new(&cfg.sysfs_root, slow_every) {
        Ok(mut h) => {
            host_info = Some(h.info());
            threads.push(
                collector::spawn(
                    Box::new(h),
                    cfg.host_interval,
                    Arc::clone(&ring),
                    costs.clone(),
                    stop.clone(),
                )
                .map_err(StartError::Thread)?,
            );
        }
        Err(why) => notes.push(format!("host: {why}")),
    }

    // RDMA.
    let mut rdma_devices = Vec::new();
    match RdmaCollector::discover(&cfg.sysfs_root) {
        Ok(r) => {
            rdma_devices = r.inventory();
            notes.extend(r.notes().iter().cloned());
            if !rdma_devices.is_empty() {
                threads.push(
                    collector::spawn(
                        Box::new(RdmaSampler(r)),
                        cfg.rdma_interval,
                        Arc::clone(&ring),
                        costs.clone(),
                        stop.clone(),
                    )
                    .map_err(StartError::Thread)?,
                );
            }
        }
        Err(e) => notes.push(format!("rdma: {e}")),
    }
    let topology = rdma::topology(&cfg.sysfs_root, &gpu_ids, &rdma_devices);

    // Kernel log.
    let kernel_log = if !cfg.kmsg {
        Availability {
            available: false,
            detail: "disabled by configuration".into(),
        }
    } else {
        match kmsg::open() {
            Ok(f) => {
                threads.push(
                    kmsg::follow(f, gpu_ids.clone(), Arc::clone(&ring), stop.clone())
                        .map_err(StartError::Thread)?,
                );
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
    };

    // Startup milestones in serving processes' logs.
    if cfg.startup_watch {
        let w = crate::watch::WatchConfig::new(cfg.startup_log_globs.clone());
        threads.push(
            crate::watch::spawn(w, Arc::clone(&ring), stop.clone()).map_err(StartError::Thread)?,
        );
    }

    // Self-telemetry.
    let streams = Arc::new(AtomicU64::new(0));
    threads.push(
        collector::spawn(
            Box::new(SelfCollector {
                ring: Arc::clone(&ring),
                streams: Arc::clone(&streams),
            }),
            cfg.self_interval,
            Arc::clone(&ring),
            costs.clone(),
            stop.clone(),
        )
        .map_err(StartError::Thread)?,
    );

    let inventory = Arc::new(InventorySource {
        base: Inventory {
            hostname: hostname(),
            agent_version: env!("CARGO_PKG_VERSION").to_string(),
            agent_instance: instance_id(),
            agent_start_ns: started,
            sample_interval_ns: interval_ns,
            buffer_horizon_ns: horizon_ns,
            gpu: Some(g.availability.clone()),
            libfabric: Some(libs::libfabric()),
            ucx: Some(libs::ucx()),
            kernel_log: Some(kernel_log),
            driver_version: g.driver_version.clone(),
            cuda_driver_version: g.cuda_driver_version.clone(),
            nvml_version: g.nvml_version.clone(),
            gpus: g.gpus.clone(),
            rdma_devices,
            topology,
            host: host_info,
            notes,
            ..Default::default()
        },
        gpu_status,
        ring: Arc::clone(&ring),
    });

    let (stop_tasks, stop_rx) = watch::channel(false);
    let mut tasks = Vec::new();
    let check = TokenCheck::new(cfg.token.clone());

    // gRPC.
    let listener = TcpListener::bind(cfg.listen)
        .await
        .map_err(|source| StartError::Bind {
            what: "gRPC",
            addr: cfg.listen,
            source,
        })?;
    let grpc_addr = listener.local_addr().map_err(|source| StartError::Bind {
        what: "gRPC",
        addr: cfg.listen,
        source,
    })?;
    let svc = AgentService {
        inventory: Arc::clone(&inventory),
        ring: Arc::clone(&ring),
        streams,
        shutdown: stop_rx.clone(),
        probes: Arc::new(crate::probe::ProbeManager::new(cfg.sysfs_root.clone())),
        shards: Arc::default(),
        coalesce: cfg.stream_coalesce,
    };
    let interceptor_check = check.clone();
    let server_svc =
        AgentServer::with_interceptor(svc, move |req| interceptor_check.intercept(req));
    let mut builder = Server::builder();
    if let Some(tls) = &cfg.tls {
        let id = Identity::from_pem(&tls.cert_pem, &tls.key_pem);
        builder = builder
            .tls_config(ServerTlsConfig::new().identity(id))
            .map_err(|e| StartError::Tls(e.to_string()))?;
    }
    let mut stop_grpc = stop_rx.clone();
    let router = builder.add_service(server_svc);
    tasks.push(tokio::spawn(async move {
        let incoming = TcpListenerStream::new(listener);
        let r = router
            .serve_with_incoming_shutdown(incoming, async move {
                let _ = stop_grpc.wait_for(|s| *s).await;
            })
            .await;
        if let Err(e) = r {
            tracing::error!("gRPC server ended: {e}");
        }
    }));

    // /metrics.
    let mut metrics_addr = None;
    if let Some(addr) = cfg.metrics_listen {
        let l = TcpListener::bind(addr)
            .await
            .map_err(|source| StartError::Bind {
                what: "/metrics",
                addr,
                source,
            })?;
        metrics_addr = l.local_addr().ok();
        tasks.push(metrics_http::serve(
            l,
            Arc::clone(&inventory),
            Arc::clone(&ring),
            check,
            stop_rx,
        ));
    }

    Ok(AgentHandle {
        grpc_addr,
        metrics_addr,
        ring,
        inventory,
        stop_threads: stop,
        stop_tasks,
        threads,
        tasks,
    })
}
