//! Agent configuration: command-line flags, optionally layered over a TOML file
//! (flags win). Validation refuses unsafe combinations (anonymous access off loopback).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use serde::Deserialize;

mod secrets;

pub use secrets::{check_metrics_exposure, read_private_token, read_token};

/// Errors in the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("cannot read token file {path}: {source}")]
    Token {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("token file {0} is empty")]
    EmptyToken(PathBuf),
    #[error(
        "no auth token: pass --token-file FILE (or token_file in the config); \
         --insecure-no-auth is allowed only when listening on loopback"
    )]
    NoToken,
    #[error("--insecure-no-auth refused: {what} listens on {addr}, which is not loopback")]
    InsecureOffLoopback {
        what: &'static str,
        addr: SocketAddr,
    },
    #[error(
        "token file {} can be read or written by every user of this host (mode {mode:04o}); \
         the agent refuses to start with it: chmod 600 {}",
        path.display(),
        path.display()
    )]
    TokenExposed { path: PathBuf, mode: u32 },
    #[error(
        "/metrics on {addr} is not loopback and would take the bearer token over plain \
         HTTP: serve it with TLS (--tls-cert and --tls-key), listen on loopback, or \
         accept that with --metrics-allow-plaintext-token"
    )]
    PlaintextTokenOffLoopback { addr: SocketAddr },
    #[error("TLS needs both --tls-cert and --tls-key")]
    TlsHalf,
    #[error("--tls-client-ca needs TLS: pass --tls-cert and --tls-key as well")]
    ClientCaWithoutTls,
    #[error("cannot read TLS file {path}: {source}")]
    TlsRead {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0} must be greater than zero")]
    Zero(&'static str),
}

/// Flags of `servescope-agent`. Every flag can also be set in the TOML file.
#[derive(Debug, Clone, Parser, Default)]
#[command(
    name = "servescope-agent",
    version,
    about = "servescope per-node agent"
)]
pub struct AgentArgs {
    /// TOML config file; flags given on the command line override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// gRPC listen address [default: 0.0.0.0:7733]
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Prometheus /metrics listen address [default: 127.0.0.1:9478]; "off" disables it
    #[arg(long)]
    pub metrics_listen: Option<String>,
    /// File holding the bearer token clients must present
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// Serve without authentication (only allowed on loopback addresses)
    #[arg(long)]
    pub insecure_no_auth: bool,
    /// TLS certificate chain (PEM); with --tls-key enables TLS
    #[arg(long)]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM)
    #[arg(long)]
    pub tls_key: Option<PathBuf>,
    /// PEM CA certificate(s): gRPC clients must present a certificate signed by
    /// one of them (mutual TLS); needs --tls-cert and --tls-key
    #[arg(long)]
    pub tls_client_ca: Option<PathBuf>,
    /// Serve /metrics over plain HTTP off loopback although a token is set (the
    /// token then crosses the network in clear); without TLS the agent refuses that
    #[arg(long)]
    pub metrics_allow_plaintext_token: bool,
    /// Largest gRPC request the agent decodes, in KiB [default: 1024]
    #[arg(long)]
    pub grpc_max_message_kib: Option<u64>,
    /// Concurrent gRPC streams one client connection may open [default: 32]
    #[arg(long)]
    pub grpc_max_streams_per_client: Option<u32>,
    /// Sampling interval of the GPU collector in ms [default: 100]
    #[arg(long)]
    pub sample_interval_ms: Option<u64>,
    /// Host collector interval in ms: CPU, load, memory, network interfaces.
    /// /proc/stat counts CPU time in 10 ms jiffies, so over 100 ms a core's usage
    /// moves in 10 % steps [default: 1000]
    #[arg(long)]
    pub host_interval_ms: Option<u64>,
    /// GPU PCIe/NVLink byte counters (GPM) interval in ms, a multiple of the sample
    /// interval; in between, samples repeat the last totals marked stale (the totals
    /// integrate GPM rates over each interval, so no bytes are lost). Each GPM read
    /// costs ~0.2 ms of CPU on an H100/H200: at 1000 ms that alone is a third of the
    /// 0.06 %-of-a-core budget per GPU, hence 2000. A GPU in a cold-start burst is
    /// read every sample [default: 2000]
    #[arg(long)]
    pub gpu_counters_interval_ms: Option<u64>,
    /// Interval of the slower counters in ms: RDMA sysfs counters, host memory and
    /// network interfaces [default: 1000]
    #[arg(long)]
    pub rdma_interval_ms: Option<u64>,
    /// GPU process list, ECC and remapped-rows interval in ms [default: 1000]
    #[arg(long)]
    pub process_interval_ms: Option<u64>,
    /// How long samples are kept in the ring buffer, in seconds [default: 600]
    #[arg(long)]
    pub buffer_horizon_s: Option<u64>,
    /// Upper bound on the ring buffer's encoded size in MiB [default: 64]
    #[arg(long)]
    pub buffer_max_mib: Option<u64>,
    /// Root of the sysfs tree [default: /sys]
    #[arg(long)]
    pub sysfs_root: Option<PathBuf>,
    /// Path of libnvidia-ml.so.1 (default: the dynamic loader's search)
    #[arg(long)]
    pub nvml_lib: Option<PathBuf>,
    /// Do not read /dev/kmsg for NVRM Xid lines
    #[arg(long)]
    pub no_kmsg: bool,
    /// Log files to follow for startup milestones, `*` in the last component
    /// (repeatable) [default: Ray's session_latest/logs/worker-*.out and .err]
    #[arg(long = "startup-log-glob")]
    pub startup_log_glob: Vec<String>,
    /// Do not watch serving processes' logs for startup milestones
    #[arg(long)]
    pub no_startup_watch: bool,
    /// A live stream waits this long after a new sample before sending, so that the
    /// samples of one tick leave together (0: send each at once) [default: 3]
    #[arg(long)]
    pub stream_coalesce_ms: Option<u64>,
}

/// Default of `--stream-coalesce-ms`.
const DEFAULT_COALESCE_MS: u64 = 3;
/// Larger values are capped (a live view should stay live).
const MAX_COALESCE_MS: u64 = 50;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    metrics_listen: Option<String>,
    token_file: Option<PathBuf>,
    insecure_no_auth: Option<bool>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    tls_client_ca: Option<PathBuf>,
    metrics_allow_plaintext_token: Option<bool>,
    grpc_max_message_kib: Option<u64>,
    grpc_max_streams_per_client: Option<u32>,
    sample_interval_ms: Option<u64>,
    host_interval_ms: Option<u64>,
    gpu_counters_interval_ms: Option<u64>,
    rdma_interval_ms: Option<u64>,
    process_interval_ms: Option<u64>,
    buffer_horizon_s: Option<u64>,
    buffer_max_mib: Option<u64>,
    sysfs_root: Option<PathBuf>,
    nvml_lib: Option<PathBuf>,
    kmsg: Option<bool>,
    startup_log_globs: Option<Vec<String>>,
    startup_watch: Option<bool>,
    stream_coalesce_ms: Option<u64>,
}

/// PEM material for TLS.
#[derive(Clone)]
pub struct TlsMaterial {
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
    /// CA certificate(s) gRPC clients' certificates must chain to (mutual TLS).
    pub client_ca_pem: Option<Vec<u8>>,
}

/// Bounds on what one gRPC client may ask of the agent.
#[derive(Debug, Clone, Copy)]
pub struct GrpcLimits {
    /// Largest request message decoded; larger ones are refused unread.
    pub max_message_bytes: usize,
    /// Concurrent HTTP/2 streams per client connection.
    pub max_streams_per_client: u32,
}

impl Default for GrpcLimits {
    fn default() -> Self {
        GrpcLimits {
            max_message_bytes: DEFAULT_MAX_MESSAGE_KIB << 10,
            max_streams_per_client: DEFAULT_MAX_STREAMS,
        }
    }
}

/// Default of `--grpc-max-message-kib`: requests are small (the largest, a load
/// shard's spec, is refused above 64 KiB anyway).
const DEFAULT_MAX_MESSAGE_KIB: usize = 1024;
/// Default of `--grpc-max-streams-per-client`: a recording uses one stream per
/// agent plus a few short calls.
const DEFAULT_MAX_STREAMS: u32 = 32;

impl std::fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsMaterial{..}")
    }
}

fn default_globs() -> Vec<String> {
    crate::collect::startup_watch::DEFAULT_GLOBS
        .iter()
        .map(|g| g.to_string())
        .collect()
}

/// The validated configuration the agent runs with.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    pub listen: SocketAddr,
    pub metrics_listen: Option<SocketAddr>,
    /// `None` only with insecure_no_auth on loopback.
    pub token: Option<String>,
    pub tls: Option<TlsMaterial>,
    /// Serve /metrics with the token over plain HTTP off loopback.
    pub metrics_allow_plaintext_token: bool,
    pub grpc_limits: GrpcLimits,
    pub sample_interval: Duration,
    pub host_interval: Duration,
    pub gpu_counters_interval: Duration,
    pub rdma_interval: Duration,
    pub process_interval: Duration,
    pub buffer_horizon: Duration,
    pub buffer_max_bytes: usize,
    pub sysfs_root: PathBuf,
    pub nvml_lib: Option<PathBuf>,
    pub kmsg: bool,
    /// Follow serving processes' logs for startup milestones ([`crate::collect::startup_watch`]).
    pub startup_watch: bool,
    pub startup_log_globs: Vec<String>,
    /// Self-telemetry interval.
    pub self_interval: Duration,
    /// How long a live stream lets one tick's samples gather before sending.
    pub stream_coalesce: Duration,
    /// Runs inside another program (the CLI's demo, tests): its self-telemetry's
    /// CPU and memory are that whole process's, and say so.
    pub embedded: bool,
}

impl AgentConfig {
    /// Defaults for an agent on loopback with the given token (tests, demo).
    pub fn loopback(token: Option<String>) -> Self {
        AgentConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            metrics_listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            token,
            tls: None,
            metrics_allow_plaintext_token: false,
            grpc_limits: GrpcLimits::default(),
            sample_interval: Duration::from_millis(100),
            host_interval: Duration::from_millis(1000),
            gpu_counters_interval: Duration::from_millis(2000),
            rdma_interval: Duration::from_millis(1000),
            process_interval: Duration::from_millis(1000),
            buffer_horizon: Duration::from_secs(600),
            buffer_max_bytes: 64 << 20,
            sysfs_root: PathBuf::from("/sys"),
            nvml_lib: None,
            kmsg: true,
            startup_watch: true,
            startup_log_globs: default_globs(),
            self_interval: Duration::from_secs(1),
            stream_coalesce: Duration::from_millis(DEFAULT_COALESCE_MS),
            embedded: true,
        }
    }

    /// Builds the configuration from flags and the optional TOML file.
    pub fn from_args(args: &AgentArgs) -> Result<Self, ConfigError> {
        let file = match &args.config {
            Some(p) => load_file(p)?,
            None => FileConfig::default(),
        };
        let listen = args
            .listen
            .or(file.listen)
            .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 7733)));
        let metrics = args
            .metrics_listen
            .clone()
            .or(file.metrics_listen)
            .unwrap_or_else(|| "127.0.0.1:9478".into());
        let metrics_listen = if metrics == "off" {
            None
        } else {
            Some(metrics.parse().map_err(|e| ConfigError::Parse {
                path: PathBuf::from("--metrics-listen"),
                message: format!("{metrics:?}: {e}"),
            })?)
        };
        let insecure = args.insecure_no_auth || file.insecure_no_auth.unwrap_or(false);
        let token = match args.token_file.clone().or(file.token_file) {
            Some(p) => Some(read_private_token(&p)?),
            None => None,
        };
        let client_ca = match args.tls_client_ca.clone().or(file.tls_client_ca) {
            Some(p) => Some(read_tls(&p)?),
            None => None,
        };
        let tls = match (
            args.tls_cert.clone().or(file.tls_cert),
            args.tls_key.clone().or(file.tls_key),
        ) {
            (Some(c), Some(k)) => Some(TlsMaterial {
                cert_pem: read_tls(&c)?,
                key_pem: read_tls(&k)?,
                client_ca_pem: client_ca,
            }),
            (None, None) if client_ca.is_some() => return Err(ConfigError::ClientCaWithoutTls),
            (None, None) => None,
            _ => return Err(ConfigError::TlsHalf),
        };
        let ms = |flag: Option<u64>, file: Option<u64>, default: u64, name: &'static str| {
            let v = flag.or(file).unwrap_or(default);
            if v == 0 {
                Err(ConfigError::Zero(name))
            } else {
                Ok(Duration::from_millis(v))
            }
        };
        let cfg = AgentConfig {
            listen,
            metrics_listen,
            token,
            tls,
            metrics_allow_plaintext_token: args.metrics_allow_plaintext_token
                || file.metrics_allow_plaintext_token.unwrap_or(false),
            grpc_limits: GrpcLimits {
                max_message_bytes: usize::try_from(
                    args.grpc_max_message_kib
                        .or(file.grpc_max_message_kib)
                        .unwrap_or(DEFAULT_MAX_MESSAGE_KIB as u64)
                        .saturating_mul(1 << 10),
                )
                .unwrap_or(usize::MAX),
                max_streams_per_client: args
                    .grpc_max_streams_per_client
                    .or(file.grpc_max_streams_per_client)
                    .unwrap_or(DEFAULT_MAX_STREAMS),
            },
            sample_interval: ms(
                args.sample_interval_ms,
                file.sample_interval_ms,
                100,
                "sample_interval_ms",
            )?,
            host_interval: ms(
                args.host_interval_ms,
                file.host_interval_ms,
                1000,
                "host_interval_ms",
            )?,
            gpu_counters_interval: ms(
                args.gpu_counters_interval_ms,
                file.gpu_counters_interval_ms,
                2000,
                "gpu_counters_interval_ms",
            )?,
            rdma_interval: ms(
                args.rdma_interval_ms,
                file.rdma_interval_ms,
                1000,
                "rdma_interval_ms",
            )?,
            process_interval: ms(
                args.process_interval_ms,
                file.process_interval_ms,
                1000,
                "process_interval_ms",
            )?,
            buffer_horizon: ms(
                args.buffer_horizon_s
                    .or(file.buffer_horizon_s)
                    .map(|s| s.saturating_mul(1000)),
                None,
                600_000,
                "buffer_horizon_s",
            )?,
            buffer_max_bytes: usize::try_from(
                args.buffer_max_mib
                    .or(file.buffer_max_mib)
                    .unwrap_or(64)
                    .saturating_mul(1 << 20),
            )
            .unwrap_or(usize::MAX),
            sysfs_root: args
                .sysfs_root
                .clone()
                .or(file.sysfs_root)
                .unwrap_or_else(|| PathBuf::from("/sys")),
            nvml_lib: args.nvml_lib.clone().or(file.nvml_lib),
            kmsg: !args.no_kmsg && file.kmsg.unwrap_or(true),
            startup_watch: !args.no_startup_watch && file.startup_watch.unwrap_or(true),
            startup_log_globs: if args.startup_log_glob.is_empty() {
                file.startup_log_globs.clone().unwrap_or_else(default_globs)
            } else {
                args.startup_log_glob.clone()
            },
            self_interval: Duration::from_secs(1),
            stream_coalesce: Duration::from_millis(
                args.stream_coalesce_ms
                    .or(file.stream_coalesce_ms)
                    .unwrap_or(DEFAULT_COALESCE_MS)
                    .min(MAX_COALESCE_MS),
            ),
            embedded: false,
        };
        cfg.validate(insecure)?;
        Ok(cfg)
    }

    /// Refuses anonymous access off loopback and a token /metrics would take in
    /// clear off loopback; with a token, auth is always on.
    pub fn validate(&self, insecure_no_auth: bool) -> Result<(), ConfigError> {
        if self.grpc_limits.max_message_bytes == 0 {
            return Err(ConfigError::Zero("grpc_max_message_kib"));
        }
        if self.grpc_limits.max_streams_per_client == 0 {
            return Err(ConfigError::Zero("grpc_max_streams_per_client"));
        }
        check_metrics_exposure(self)?;
        if self.token.is_none() {
            if !insecure_no_auth {
                return Err(ConfigError::NoToken);
            }
            if !self.listen.ip().is_loopback() {
                return Err(ConfigError::InsecureOffLoopback {
                    what: "gRPC",
                    addr: self.listen,
                });
            }
            if let Some(m) = self.metrics_listen {
                if !m.ip().is_loopback() {
                    return Err(ConfigError::InsecureOffLoopback {
                        what: "/metrics",
                        addr: m,
                    });
                }
            }
        }
        Ok(())
    }
}

fn load_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

fn read_tls(path: &Path) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path).map_err(|source| ConfigError::TlsRead {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests;
