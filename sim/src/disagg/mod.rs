//! A disaggregated (prefill–decode) deployment on loopback: N prefill instances, M
//! decode instances (each its own HTTP server with its own vLLM-named `/metrics`,
//! including `vllm:nixl_*` on the decode side as vLLM's pull mode has them) and a
//! proxy in front that speaks vLLM's toy-proxy protocol (`kv_transfer_params`).
//! Every stage is recorded in a [`TruthBook`] served at the proxy's
//! `/servescope/truth`; with an OTLP endpoint each instance exports `llm_request`
//! spans like `vllm serve --otlp-traces-endpoint`.

pub mod prefill;
pub mod proxy;
pub mod truth;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::engine::{Engine, Role};
use crate::otlp::SpanSink;
use crate::{SimConfig, SimError, SimHandle};
pub use truth::{Truth, TruthBook};

/// The deployment.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// The engine model; `pd` must be set (prefill slots, KV link, faults).
    pub engine: SimConfig,
    pub prefills: usize,
    pub decodes: usize,
    /// Fault: proxy overhead before calling P.
    pub proxy_delay: Duration,
    /// Fault: the proxy releases D's stream only every this often (0: off).
    pub stream_batch: Duration,
    /// `http://host:port` of an OTLP/gRPC trace receiver.
    pub otlp_endpoint: Option<String>,
}

impl ClusterConfig {
    /// One prefill and one decode instance of `engine`, no faults, no OTLP export.
    pub fn clean(engine: SimConfig) -> Self {
        ClusterConfig {
            engine,
            prefills: 1,
            decodes: 1,
            proxy_delay: Duration::ZERO,
            stream_batch: Duration::ZERO,
            otlp_endpoint: None,
        }
    }
}

/// A running deployment.
pub struct ClusterHandle {
    pub proxy: SimHandle,
    pub prefill: Vec<SimHandle>,
    pub decode: Vec<SimHandle>,
    pub truth: Arc<TruthBook>,
    sinks: Vec<SpanSink>,
    expiry: tokio::task::JoinHandle<()>,
}

impl ClusterHandle {
    pub fn proxy_url(&self) -> String {
        self.proxy.url()
    }

    pub fn prefill_urls(&self) -> Vec<String> {
        self.prefill.iter().map(SimHandle::url).collect()
    }

    pub fn decode_urls(&self) -> Vec<String> {
        self.decode.iter().map(SimHandle::url).collect()
    }

    /// Waits until every span finished so far has been exported.
    pub async fn flush_spans(&self) {
        for s in &self.sinks {
            s.flush().await;
        }
    }

    pub async fn shutdown(self) {
        self.expiry.abort();
        self.flush_spans().await;
        self.proxy.shutdown().await;
        for h in self.prefill.into_iter().chain(self.decode) {
            h.shutdown().await;
        }
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// Starts the instances on loopback (any free ports) and the proxy on `proxy_addr`.
pub async fn start_cluster(
    cfg: ClusterConfig,
    proxy_addr: SocketAddr,
) -> Result<ClusterHandle, SimError> {
    cfg.engine.validate().map_err(SimError::Config)?;
    let Some(pd) = cfg.engine.pd.clone() else {
        return Err(SimError::Config(
            "a P/D cluster needs the pd settings".into(),
        ));
    };
    if cfg.prefills == 0 || cfg.decodes == 0 {
        return Err(SimError::Config(
            "a P/D cluster needs at least one prefill and one decode instance".into(),
        ));
    }
    let truth = Arc::new(TruthBook::default());
    let host = hostname();
    let mut sinks = Vec::new();
    let mut sink = |service: String| -> Result<Option<SpanSink>, SimError> {
        match &cfg.otlp_endpoint {
            None => Ok(None),
            Some(ep) => {
                let s =
                    SpanSink::start(ep.clone(), service, host.clone()).map_err(SimError::Config)?;
                sinks.push(s.clone());
                Ok(Some(s))
            }
        }
    };
    let any: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 0));
    let mut p_engines = Vec::new();
    let mut prefill = Vec::new();
    for i in 0..cfg.prefills {
        let mut c = cfg.engine.clone();
        c.max_num_seqs = pd.prefill_slots;
        c.seed = cfg.engine.seed.wrapping_add(i as u64 * 7919);
        let name = format!("sim-prefill-{i}");
        let e = Arc::new(Engine::disaggregated(
            c,
            Role::Prefill,
            name.clone(),
            Arc::clone(&truth),
            sink(name)?,
        ));
        p_engines.push(Arc::clone(&e));
        prefill.push(crate::serve(e, any, None).await?);
    }
    let mut decode = Vec::new();
    for i in 0..cfg.decodes {
        let mut c = cfg.engine.clone();
        c.seed = cfg.engine.seed.wrapping_add(1_000_003 + i as u64 * 7919);
        let name = format!("sim-decode-{i}");
        let e = Arc::new(Engine::disaggregated(
            c,
            Role::Decode,
            name.clone(),
            Arc::clone(&truth),
            sink(name)?,
        ));
        let _ = e.prefills.set(p_engines.clone());
        decode.push(crate::serve(e, any, None).await?);
    }
    let p = Arc::new(proxy::Proxy::new(
        prefill.iter().map(SimHandle::url).collect(),
        decode.iter().map(SimHandle::url).collect(),
        cfg.proxy_delay,
        cfg.stream_batch,
        Arc::clone(&truth),
    ));
    let mut pc = cfg.engine.clone();
    pc.pd = None;
    let proxy = crate::serve_router(Engine::new(pc), proxy::router(p), proxy_addr).await?;
    let expiry = tokio::spawn(async move {
        let mut t = tokio::time::interval(Duration::from_millis(250));
        loop {
            t.tick().await;
            let now = tokio::time::Instant::now();
            for e in &p_engines {
                e.expire(now);
            }
        }
    });
    Ok(ClusterHandle {
        proxy,
        prefill,
        decode,
        truth,
        sinks,
        expiry,
    })
}
