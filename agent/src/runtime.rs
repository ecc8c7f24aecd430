//! Starts an agent: takes the inventory, spawns the collectors, serves gRPC and
//! /metrics. Used by the `servescope-agent` binary and in-process (demo, tests).

use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::thread::JoinHandle;

use servescope_fabric::libs;
use servescope_proto::v1::agent_server::AgentServer;
use servescope_proto::v1::Inventory;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};

use crate::auth::TokenCheck;
use crate::clock::now_ns;
use crate::collect::{self, CallCosts, Found, Producer, RunContext, Shutdown};
use crate::config::{check_metrics_exposure, AgentConfig, ConfigError};
use crate::metrics_http;
use crate::metrics_tls::{self, TlsListener};
use crate::ring::{Ring, RingLimits};
use crate::service::{Admitted, AgentService, InventorySource};

/// Largest header block a client may send before its token is checked: bounds
/// what an unauthenticated peer makes the agent buffer (h2's default is 16 MiB).
const MAX_HEADER_LIST_BYTES: u32 = 16 << 10;

/// Errors that stop the agent from starting.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr} ({what}): {source}")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Config(#[from] ConfigError),
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
    /// Live telemetry streams being served.
    pub streams: Arc<AtomicU64>,
    /// Requests admitted to the buffer-allocating handlers (probe, load shard).
    pub admitted: Arc<Admitted>,
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

/// Ring limits for `cfg`: the horizon, and a sample count that fits gpu + host +
/// rdma + self per tick over it plus a margin for events.
fn ring_limits(cfg: &AgentConfig) -> RingLimits {
    let interval_ns = interval_ns(cfg);
    let horizon_ns = u64::try_from(cfg.buffer_horizon.as_nanos()).unwrap_or(u64::MAX);
    let per_horizon = usize::try_from(horizon_ns / interval_ns).unwrap_or(usize::MAX);
    RingLimits {
        horizon_ns,
        max_samples: per_horizon.saturating_mul(4).saturating_add(4096),
        max_bytes: cfg.buffer_max_bytes,
    }
}

fn interval_ns(cfg: &AgentConfig) -> u64 {
    u64::try_from(cfg.sample_interval.as_nanos())
        .unwrap_or(u64::MAX)
        .max(1)
}

/// The inventory: this host, the agent, and what collector discovery found.
fn inventory(cfg: &AgentConfig, started: u64, horizon_ns: u64, found: Found) -> Inventory {
    let g = found.gpu;
    Inventory {
        hostname: hostname(),
        agent_version: env!("CARGO_PKG_VERSION").to_string(),
        agent_instance: instance_id(),
        agent_start_ns: started,
        sample_interval_ns: interval_ns(cfg),
        buffer_horizon_ns: horizon_ns,
        gpu: Some(g.availability),
        libfabric: Some(libs::libfabric()),
        ucx: Some(libs::ucx()),
        kernel_log: Some(found.kernel_log),
        driver_version: g.driver_version,
        cuda_driver_version: g.cuda_driver_version,
        nvml_version: g.nvml_version,
        gpus: g.gpus,
        rdma_devices: found.rdma_devices,
        topology: found.topology,
        host: found.host,
        notes: found.notes,
        ..Default::default()
    }
}

/// Starts the agent with `cfg`. Must be called inside a tokio runtime.
pub async fn start(cfg: AgentConfig) -> Result<AgentHandle, StartError> {
    start_with(cfg, Vec::new()).await
}

/// Starts the agent with `cfg` and, beside the collectors `cfg` asks for, `extra`
/// producers (benchmarks drive the agent with synthetic collectors this way).
pub async fn start_with(cfg: AgentConfig, extra: Vec<Producer>) -> Result<AgentHandle, StartError> {
    check_metrics_exposure(&cfg)?;
    // Before any thread starts, so a bad certificate leaves nothing running.
    let metrics_tls = match &cfg.tls {
        Some(t) if cfg.metrics_listen.is_some() => {
            Some(metrics_tls::server_config(t).map_err(StartError::Tls)?)
        }
        _ => None,
    };
    let started = now_ns();
    let limits = ring_limits(&cfg);
    let horizon_ns = limits.horizon_ns;
    let ring = Arc::new(Ring::new(limits));
    let ctx = RunContext {
        ring: Arc::clone(&ring),
        costs: CallCosts::default(),
        shutdown: Shutdown::default(),
    };
    let streams = Arc::new(AtomicU64::new(0));
    let registry = collect::build(&cfg, &ring, &streams);
    let threads = registry
        .producers
        .into_iter()
        .chain(extra)
        .map(|p| p.spawn(&ctx))
        .collect::<Result<Vec<_>, _>>()
        .map_err(StartError::Thread)?;
    let gpu_status = Arc::clone(&registry.found.gpu_status);
    let inventory = Arc::new(InventorySource {
        base: inventory(&cfg, started, horizon_ns, registry.found),
        gpu_status,
        ring: Arc::clone(&ring),
    });
    let (stop_tasks, stop_rx) = watch::channel(false);
    let check = TokenCheck::new(cfg.token.clone());
    let admitted = Arc::new(Admitted::default());
    let svc = AgentService {
        inventory: Arc::clone(&inventory),
        ring: Arc::clone(&ring),
        streams: Arc::clone(&streams),
        shutdown: stop_rx.clone(),
        probes: Arc::new(crate::probe::ProbeManager::new(cfg.sysfs_root.clone())),
        shards: Arc::default(),
        admitted: Arc::clone(&admitted),
        coalesce: cfg.stream_coalesce,
    };
    let (grpc_addr, grpc) = serve_grpc(&cfg, svc, check.clone(), stop_rx.clone()).await?;
    let mut tasks = vec![grpc];
    let mut metrics_addr = None;
    if let Some(addr) = cfg.metrics_listen {
        let l = bind("/metrics", addr).await?;
        metrics_addr = l.local_addr().ok();
        let (inv, ring) = (Arc::clone(&inventory), Arc::clone(&ring));
        tasks.push(match metrics_tls {
            Some(tls) => {
                let l = TlsListener::new(l, tls).map_err(|source| StartError::Bind {
                    what: "/metrics",
                    addr,
                    source,
                })?;
                metrics_http::serve(l, inv, ring, check, stop_rx)
            }
            None => metrics_http::serve(l, inv, ring, check, stop_rx),
        });
    }
    Ok(AgentHandle {
        grpc_addr,
        metrics_addr,
        ring,
        inventory,
        streams,
        admitted,
        stop_threads: ctx.shutdown,
        stop_tasks,
        threads,
        tasks,
    })
}

async fn bind(what: &'static str, addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { what, addr, source })
}

/// Serves gRPC (TLS, and mutual TLS with a client CA, when configured) until `stop`
/// turns true. The token is checked on the headers, before the message is read;
/// messages over the size limit are refused unread.
async fn serve_grpc(
    cfg: &AgentConfig,
    svc: AgentService,
    check: TokenCheck,
    mut stop: watch::Receiver<bool>,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), StartError> {
    let listener = bind("gRPC", cfg.listen).await?;
    let grpc_addr = listener.local_addr().map_err(|source| StartError::Bind {
        what: "gRPC",
        addr: cfg.listen,
        source,
    })?;
    let limits = cfg.grpc_limits;
    let server = AgentServer::new(svc).max_decoding_message_size(limits.max_message_bytes);
    let server_svc = InterceptedService::new(server, move |req| check.intercept(req));
    let mut builder = Server::builder()
        .max_concurrent_streams(limits.max_streams_per_client)
        .http2_max_header_list_size(MAX_HEADER_LIST_BYTES);
    if let Some(tls) = &cfg.tls {
        let id = Identity::from_pem(&tls.cert_pem, &tls.key_pem);
        let mut server_tls = ServerTlsConfig::new().identity(id);
        if let Some(ca) = &tls.client_ca_pem {
            server_tls = server_tls.client_ca_root(Certificate::from_pem(ca));
        }
        builder = builder
            .tls_config(server_tls)
            .map_err(|e| StartError::Tls(e.to_string()))?;
    }
    let router = builder.add_service(server_svc);
    let task = tokio::spawn(async move {
        let incoming = TcpListenerStream::new(listener);
        let r = router
            .serve_with_incoming_shutdown(incoming, async move {
                let _ = stop.wait_for(|s| *s).await;
            })
            .await;
        if let Err(e) = r {
            tracing::error!("gRPC server ended: {e}");
        }
    });
    Ok((grpc_addr, task))
}
