//! `servescope sim`: run the simulated OpenAI-compatible / vLLM endpoint.

use std::net::SocketAddr;

use anyhow::Context;
use servescope_sim::ingress::{start_replicated_with, Routing};
use servescope_sim::{Faults, PrefixCacheConfig, SimConfig};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Listen address
    #[arg(long, default_value = "127.0.0.1:8000")]
    pub listen: SocketAddr,
    /// Model name it answers to and reports
    #[arg(long, default_value = "servescope-sim")]
    pub model: String,
    /// Fixed prefill time per request, ms
    #[arg(long, default_value_t = 10.0)]
    pub prefill_base_ms: f64,
    /// Prefill time per input token, µs
    #[arg(long, default_value_t = 50.0)]
    pub prefill_us_per_token: f64,
    /// Time per output token (TPOT), ms
    #[arg(long, default_value_t = 10.0)]
    pub decode_ms: f64,
    /// Sequences decoded at once; the rest wait (vLLM --max-num-seqs)
    #[arg(long, default_value_t = 64)]
    pub max_num_seqs: usize,
    /// Tokens per streamed chunk
    #[arg(long, default_value_t = 1)]
    pub tokens_per_chunk: u32,
    /// Output length when a request sets no max_tokens
    #[arg(long, default_value_t = 128)]
    pub default_max_tokens: u32,
    /// Fault: fraction of requests answered with HTTP 500
    #[arg(long, default_value_t = 0.0)]
    pub error_rate: f64,
    /// Fault: fraction of streams that stall once for --stall-s
    #[arg(long, default_value_t = 0.0)]
    pub stall_rate: f64,
    #[arg(long, default_value_t = 2.0)]
    pub stall_s: f64,
    /// Fault: fraction of streams cut halfway
    #[arg(long, default_value_t = 0.0)]
    pub truncate_rate: f64,
    /// Fault: fraction of requests that answer gibberish
    #[arg(long, default_value_t = 0.0)]
    pub gibberish_rate: f64,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Prefill–decode disaggregation: a prefill stage, a KV transfer, then decode
    #[arg(long)]
    pub pd: bool,
    /// PD: prefill-instance slots
    #[arg(long, default_value_t = 8)]
    pub pd_prefill_slots: usize,
    /// PD: KV bytes per prompt token
    #[arg(long, default_value_t = 160 * 1024)]
    pub kv_bytes_per_token: u64,
    /// PD: KV transfer bandwidth per link, GB/s
    #[arg(long, default_value_t = 10.0)]
    pub kv_gbps: f64,
    /// PD: transfers at once
    #[arg(long, default_value_t = 4)]
    pub kv_links: usize,
    /// PD: NIXL handshake on the first transfer, ms
    #[arg(long, default_value_t = 50.0)]
    pub kv_handshake_ms: f64,
    /// PD fault: fraction of transfers on a slow path (TCP instead of RDMA)
    #[arg(long, default_value_t = 0.0)]
    pub slow_kv_rate: f64,
    /// PD fault: how many times slower the slow path is
    #[arg(long, default_value_t = 100.0)]
    pub slow_kv_factor: f64,
    /// PD fault: fraction of KV transfers that fail (D recomputes; P's blocks expire)
    #[arg(long, default_value_t = 0.0)]
    pub kv_fail_rate: f64,
    /// PD: seconds P keeps KV blocks nobody read (vLLM kv_lease_duration)
    #[arg(long, default_value_t = 30.0)]
    pub kv_lease_s: f64,
    /// A disaggregated deployment: a toy-proxy-compatible proxy on --listen in front of
    /// --prefills prefill and --decodes decode instances (each with its own /metrics)
    #[arg(long, conflicts_with_all = ["pd", "startup_phases"])]
    pub pd_cluster: bool,
    /// Replicas behind one ingress on --listen (each with its own /metrics), routed by --routing
    #[arg(long, default_value_t = 1, conflicts_with_all = ["pd_cluster", "startup_phases"])]
    pub replicas: usize,
    /// How the ingress of --replicas picks a replica: round robin, or a hash of the
    /// prompt's first --affinity-blocks blocks (prompts sharing a prefix meet one cache)
    #[arg(long, value_enum, default_value_t = RoutingArg::RoundRobin)]
    pub routing: RoutingArg,
    /// Prefix-affinity routing: blocks of the prompt's head that pick the replica
    #[arg(long, default_value_t = 1)]
    pub affinity_blocks: usize,
    /// Automatic prefix caching per replica (vLLM's): cached prompt blocks skip prefill;
    /// vllm:prefix_cache_queries/hits on /metrics, cached_tokens per request
    #[arg(long, conflicts_with_all = ["pd", "pd_cluster"])]
    pub prefix_cache: bool,
    /// Prefix cache: tokens per block (vLLM --block-size)
    #[arg(long, default_value_t = 16)]
    pub block_size: u32,
    /// Prefix cache: blocks each replica keeps (least recently used evicted)
    #[arg(long, default_value_t = 4096)]
    pub prefix_cache_blocks: usize,
    /// PD cluster: prefill instances
    #[arg(long, default_value_t = 1)]
    pub prefills: usize,
    /// PD cluster: decode instances
    #[arg(long, default_value_t = 1)]
    pub decodes: usize,
    /// PD cluster fault: proxy overhead per request, ms
    #[arg(long, default_value_t = 0.0)]
    pub proxy_delay_ms: f64,
    /// PD cluster fault: the proxy flushes the stream only every this many ms (Ray
    /// Serve's stream batching is 50)
    #[arg(long, default_value_t = 0.0)]
    pub stream_batch_ms: f64,
    /// PD cluster: export llm_request spans to this OTLP/gRPC endpoint (host:port)
    #[arg(long)]
    pub otlp_traces_endpoint: Option<String>,
    /// Startup mode: phase durations in seconds, e.g.
    /// "download=2,weight_load=3,dynamo=1,compile=2,graph_capture=1" (also init, cache_load,
    /// profile, kv_cache, warmup, api); /health and completions answer 503 meanwhile
    #[arg(long, value_name = "NAME=S,...")]
    pub startup_phases: Option<String>,
    /// Startup mode: also write the vLLM-format startup log to this file (always stdout)
    #[arg(long, value_name = "PATH", requires = "startup_phases")]
    pub startup_log: Option<std::path::PathBuf>,
    /// Startup mode: millisecond timestamps (HH:MM:SS.mmm) instead of vLLM's whole seconds
    #[arg(long, requires = "startup_phases")]
    pub startup_log_millis: bool,
}

/// `--routing`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoutingArg {
    RoundRobin,
    PrefixAffinity,
}

pub async fn run(a: Args) -> anyhow::Result<()> {
    let cfg = SimConfig {
        model: a.model.clone(),
        prefill_base_s: a.prefill_base_ms / 1e3,
        prefill_s_per_token: a.prefill_us_per_token / 1e6,
        decode_s_per_token: a.decode_ms / 1e3,
        max_num_seqs: a.max_num_seqs,
        max_waiting: 100_000,
        tokens_per_chunk: a.tokens_per_chunk,
        default_max_tokens: a.default_max_tokens,
        faults: Faults {
            error_rate: a.error_rate,
            stall_rate: a.stall_rate,
            stall_s: a.stall_s,
            truncate_rate: a.truncate_rate,
            gibberish_rate: a.gibberish_rate,
        },
        seed: a.seed,
        pd: (a.pd || a.pd_cluster).then(|| servescope_sim::config::PdConfig {
            prefill_slots: a.pd_prefill_slots,
            kv_bytes_per_token: a.kv_bytes_per_token,
            kv_gbps: a.kv_gbps,
            kv_links: a.kv_links,
            handshake_s: a.kv_handshake_ms / 1e3,
            slow_kv_rate: a.slow_kv_rate,
            slow_kv_factor: a.slow_kv_factor,
            kv_fail_rate: a.kv_fail_rate,
            kv_lease_s: a.kv_lease_s,
        }),
        prefix_cache: a.prefix_cache.then_some(PrefixCacheConfig {
            block_size: a.block_size,
            capacity_blocks: a.prefix_cache_blocks,
        }),
    };
    if a.routing == RoutingArg::PrefixAffinity && a.replicas < 2 {
        anyhow::bail!("--routing prefix-affinity needs --replicas 2 or more");
    }
    if a.pd_cluster {
        return run_cluster(a, cfg).await;
    }
    if a.replicas > 1 {
        let routing = match a.routing {
            RoutingArg::RoundRobin => Routing::RoundRobin,
            RoutingArg::PrefixAffinity => Routing::PrefixAffinity {
                blocks: a.affinity_blocks.max(1),
            },
        };
        let h = start_replicated_with(cfg, a.replicas, a.listen, routing)
            .await
            .context("starting the simulator replicas")?;
        eprintln!(
            "servescope sim: {} replicas behind {} (routing {}); Ctrl-C stops",
            h.replicas.len(),
            h.url(),
            match routing {
                Routing::RoundRobin => "round robin".to_string(),
                Routing::PrefixAffinity { blocks } => format!("by the first {blocks} block(s)"),
            }
        );
        until_ctrl_c(&h.url()).await?;
        if a.prefix_cache {
            for (i, r) in h.replicas.iter().enumerate() {
                let (q, hit) = r.engine.metrics.prefix_counts();
                eprintln!(
                    "replica {i}: prefix cache hit {hit} of {q} prompt tokens ({:.1} %)",
                    100.0 * hit as f64 / q.max(1) as f64
                );
            }
        }
        h.shutdown().await;
        return Ok(());
    }
    let startup = match &a.startup_phases {
        Some(p) => Some(servescope_sim::StartupConfig {
            phases: servescope_sim::startup::parse_phases(p)
                .map_err(anyhow::Error::msg)
                .context("--startup-phases")?,
            log: a.startup_log.clone(),
            stdout: true,
            millis: a.startup_log_millis,
        }),
        None => None,
    };
    let h = servescope_sim::start_with(cfg, a.listen, startup)
        .await
        .context("starting the simulator")?;
    eprintln!(
        "servescope sim: OpenAI-compatible endpoint on {} (/v1/completions, /v1/chat/completions, /metrics); Ctrl-C stops",
        h.url()
    );
    until_ctrl_c(&h.url()).await?;
    h.shutdown().await;
    Ok(())
}

/// Prints the endpoint's URL on stdout (for scripts) and waits for Ctrl-C.
async fn until_ctrl_c(url: &str) -> anyhow::Result<()> {
    println!("{url}");
    tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")
}

fn millis(name: &str, ms: f64) -> anyhow::Result<std::time::Duration> {
    if !ms.is_finite() || ms < 0.0 {
        anyhow::bail!("{name} must be a finite number ≥ 0 (got {ms})");
    }
    Ok(std::time::Duration::from_secs_f64(ms / 1e3))
}

async fn run_cluster(a: Args, cfg: SimConfig) -> anyhow::Result<()> {
    let otlp = a.otlp_traces_endpoint.as_ref().map(|e| {
        if e.contains("://") {
            e.clone()
        } else {
            format!("http://{e}")
        }
    });
    let c = servescope_sim::disagg::ClusterConfig {
        engine: cfg,
        prefills: a.prefills,
        decodes: a.decodes,
        proxy_delay: millis("--proxy-delay-ms", a.proxy_delay_ms)?,
        stream_batch: millis("--stream-batch-ms", a.stream_batch_ms)?,
        otlp_endpoint: otlp,
    };
    let h = servescope_sim::disagg::start_cluster(c, a.listen)
        .await
        .context("starting the simulated P/D deployment")?;
    eprintln!(
        "servescope sim: P/D proxy on {} (ground truth at /servescope/truth); prefill {}; decode {}; Ctrl-C stops",
        h.proxy_url(),
        h.prefill_urls().join(" "),
        h.decode_urls().join(" ")
    );
    println!("proxy {}", h.proxy_url());
    for u in h.prefill_urls() {
        println!("prefill {u}");
    }
    for u in h.decode_urls() {
        println!("decode {u}");
    }
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    h.shutdown().await;
    Ok(())
}
