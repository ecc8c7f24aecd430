//! `servescope sim`: a simulated OpenAI-compatible, vLLM-flavoured LLM endpoint.
//!
//! It streams `/v1/completions` and `/v1/chat/completions` over SSE with a latency
//! model (prefill time from input tokens, a fixed per-token decode interval,
//! continuous batching with a max-concurrent-sequences limit and a waiting queue),
//! serves vLLM-named Prometheus metrics at `/metrics`, returns vLLM's per-request
//! `metrics` block in the final usage chunk, and injects faults on request (server
//! errors, stalls, truncated streams, gibberish); optionally it caches prompt prefixes
//! as vLLM's automatic prefix caching does ([`prefix`]). Everything it simulates is ground
//! truth that the load client and, later, attribution must recover. In startup mode
//! ([`start_with`], [`startup`]) it plays configured vLLM startup phases first:
//! `/health` answers 503 while it writes vLLM-format startup log lines.

pub mod config;
pub mod disagg;
pub mod engine;
mod http;
pub mod ingress;
pub mod otlp;
pub mod prefix;
pub mod prom;
pub mod startup;
pub mod text;

use std::net::SocketAddr;
use std::sync::Arc;

pub use config::{Faults, SimConfig};
pub use engine::Engine;
pub use prefix::PrefixCacheConfig;
pub use startup::StartupConfig;

/// A running simulator.
pub struct SimHandle {
    pub addr: SocketAddr,
    pub engine: Arc<Engine>,
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    /// Startup mode: the gate and the task playing the phases.
    startup: Option<(Arc<startup::Gate>, tokio::task::JoinHandle<()>)>,
}

impl SimHandle {
    /// Base URL, e.g. `http://127.0.0.1:8000`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// False while a startup (see [`start_with`]) is still playing.
    pub fn is_ready(&self) -> bool {
        self.startup.as_ref().is_none_or(|(g, _)| g.is_ready())
    }

    pub async fn shutdown(self) {
        if let Some((_, t)) = &self.startup {
            t.abort();
        }
        self.stop.send_replace(true);
        let _ = self.task.await;
    }
}

/// Errors starting the simulator.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("invalid simulator configuration: {0}")]
    Config(String),
    #[error("cannot create the startup log {path}: {source}")]
    StartupLog {
        path: String,
        source: std::io::Error,
    },
}

/// Starts the simulator on `addr` (port 0: any free port).
pub async fn start(cfg: SimConfig, addr: SocketAddr) -> Result<SimHandle, SimError> {
    start_with(cfg, addr, None).await
}

/// [`start`], optionally in startup mode: listening at once, but `/health` and the
/// OpenAI routes answer 503 while the configured phases play (see [`startup`]).
pub async fn start_with(
    cfg: SimConfig,
    addr: SocketAddr,
    startup: Option<StartupConfig>,
) -> Result<SimHandle, SimError> {
    cfg.validate().map_err(SimError::Config)?;
    let gate = match &startup {
        Some(s) => Some(Arc::new(startup::Gate::new(s).map_err(|source| {
            SimError::StartupLog {
                path: s
                    .log
                    .as_ref()
                    .map_or(String::new(), |p| p.display().to_string()),
                source,
            }
        })?)),
        None => None,
    };
    let model = cfg.model.clone();
    let engine = Arc::new(Engine::new(cfg));
    serve(engine, addr, gate.map(|g| (g, startup, model))).await
}

/// Serves `engine` on `addr`, optionally behind a startup gate.
#[allow(clippy::type_complexity)]
pub(crate) async fn serve(
    engine: Arc<Engine>,
    addr: SocketAddr,
    gate: Option<(Arc<startup::Gate>, Option<StartupConfig>, String)>,
) -> Result<SimHandle, SimError> {
    let (listener, addr) = bind(addr).await?;
    engine
        .listen_port
        .store(addr.port(), std::sync::atomic::Ordering::Relaxed);
    let mut app = http::router(Arc::clone(&engine));
    if let Some((g, _, _)) = &gate {
        app = app.layer(axum::middleware::from_fn_with_state(
            Arc::clone(g),
            startup::gate,
        ));
    }
    let startup = match gate {
        Some((g, Some(s), model)) => {
            let task = tokio::spawn(startup::drive(s, model, addr, Arc::clone(&g)));
            Some((g, task))
        }
        _ => None,
    };
    let (stop, task) = spawn_server(listener, app);
    Ok(SimHandle {
        addr,
        engine,
        stop,
        task,
        startup,
    })
}

/// Binds `addr`, returning the listener and the address it got (the port filled in).
async fn bind(addr: SocketAddr) -> Result<(tokio::net::TcpListener, SocketAddr), SimError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| SimError::Bind { addr, source })?;
    let addr = listener
        .local_addr()
        .map_err(|source| SimError::Bind { addr, source })?;
    Ok((listener, addr))
}

/// Serves `app` (with `engine` as the handle's engine) on `addr`.
pub(crate) async fn serve_router(
    engine: Engine,
    app: axum::Router,
    addr: SocketAddr,
) -> Result<SimHandle, SimError> {
    let (listener, addr) = bind(addr).await?;
    let (stop, task) = spawn_server(listener, app);
    Ok(SimHandle {
        addr,
        engine: Arc::new(engine),
        stop,
        task,
        startup: None,
    })
}

fn spawn_server(
    listener: tokio::net::TcpListener,
    app: axum::Router,
) -> (
    tokio::sync::watch::Sender<bool>,
    tokio::task::JoinHandle<()>,
) {
    let (stop, mut rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(async move {
        // Small SSE writes must not wait for the client's delayed ACK (Nagle).
        let listener =
            axum::serve::ListenerExt::tap_io(listener, |tcp: &mut tokio::net::TcpStream| {
                if let Err(e) = tcp.set_nodelay(true) {
                    tracing::warn!("TCP_NODELAY: {e}");
                }
            });
        let r = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = rx.wait_for(|s| *s).await;
            })
            .await;
        if let Err(e) = r {
            tracing::error!("sim server ended: {e}");
        }
    });
    (stop, task)
}
