//! Several simulator replicas behind one ingress (as Ray Serve's proxy in front of a
//! deployment's replicas): each replica is its own server with its own engine and
//! `/metrics`; the ingress forwards every OpenAI request and streams the answer back
//! unchanged. It routes round robin, or by prefix affinity: a hash of the prompt's
//! first block(s) picks the replica, so prompts sharing a prefix meet the replica
//! whose prefix cache holds it (as prefix-aware routers such as llm-d's or SGLang's
//! do; round robin spreads each prefix over every replica's cache).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use http_body_util::Full;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;

use crate::engine::Engine;
use crate::prefix::PrefixCacheConfig;
use crate::{SimConfig, SimError, SimHandle};

/// How the ingress picks a replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Routing {
    RoundRobin,
    /// The hash of the prompt's first `blocks` blocks (of the prefix cache's block
    /// size, 16 tokens without one), modulo the replicas.
    PrefixAffinity {
        blocks: usize,
    },
}

struct Ingress {
    client: Client<HttpConnector, Full<Bytes>>,
    replicas: Vec<String>,
    next: AtomicUsize,
    routing: Routing,
    block_size: u32,
}

impl Ingress {
    /// The replica for a request to `path` with `body`.
    fn pick(&self, path: &str, body: &[u8]) -> usize {
        let n = self.replicas.len().max(1);
        if let Routing::PrefixAffinity { blocks } = self.routing {
            let chat = path.ends_with("/chat/completions");
            // A body the replicas will refuse anyway goes round robin.
            if let Ok(p) = crate::http::parse(body, chat) {
                let h = crate::prefix::routing_hash(p.token_text(), self.block_size, blocks);
                return (h % n as u64) as usize;
            }
        }
        self.next.fetch_add(1, Ordering::Relaxed) % n
    }
}

/// The replicas and their ingress.
pub struct Replicated {
    pub ingress: SimHandle,
    pub replicas: Vec<SimHandle>,
}

impl Replicated {
    pub fn url(&self) -> String {
        self.ingress.url()
    }

    pub async fn shutdown(self) {
        self.ingress.shutdown().await;
        for r in self.replicas {
            r.shutdown().await;
        }
    }
}

async fn forward(
    State(i): State<Arc<Ingress>>,
    path: &'static str,
    h: HeaderMap,
    body: Bytes,
) -> Response {
    let n = i.pick(path, &body);
    let Some(base) = i.replicas.get(n) else {
        return (StatusCode::SERVICE_UNAVAILABLE, "no replica").into_response();
    };
    let mut req = hyper::Request::post(format!("{base}{path}"));
    for k in ["content-type", "x-request-id", "authorization"] {
        if let Some(v) = h.get(k) {
            req = req.header(k, v);
        }
    }
    let Ok(req) = req.body(Full::new(body)) else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "request build").into_response();
    };
    match i.client.request(req).await {
        Ok(r) => {
            let (parts, body) = r.into_parts();
            let mut out = Response::new(Body::new(body));
            *out.status_mut() = parts.status;
            for k in ["content-type", "cache-control", "x-request-id"] {
                if let Some(v) = parts.headers.get(k) {
                    out.headers_mut().insert(k, v.clone());
                }
            }
            out
        }
        Err(e) => (StatusCode::BAD_GATEWAY, format!("replica {base}: {e}")).into_response(),
    }
}

/// Starts `n` replicas of `cfg` on loopback and the ingress on `addr`, round robin.
pub async fn start_replicated(
    cfg: SimConfig,
    n: usize,
    addr: SocketAddr,
) -> Result<Replicated, SimError> {
    start_replicated_with(cfg, n, addr, Routing::RoundRobin).await
}

/// [`start_replicated`] with the given routing.
pub async fn start_replicated_with(
    cfg: SimConfig,
    n: usize,
    addr: SocketAddr,
    routing: Routing,
) -> Result<Replicated, SimError> {
    if n == 0 {
        return Err(SimError::Config("replicas must be at least 1".into()));
    }
    let mut replicas = Vec::new();
    for i in 0..n {
        let mut c = cfg.clone();
        c.seed = cfg.seed.wrapping_add(i as u64 * 7919);
        replicas.push(crate::start(c, SocketAddr::from(([127, 0, 0, 1], 0))).await?);
    }
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    let ing = Arc::new(Ingress {
        client: Client::builder(TokioExecutor::new()).build(http),
        replicas: replicas.iter().map(SimHandle::url).collect(),
        next: AtomicUsize::new(0),
        routing,
        block_size: cfg
            .prefix_cache
            .map_or(PrefixCacheConfig::default().block_size, |c| c.block_size),
    });
    // The replicas' own answer (they serve one model).
    let models = serde_json::json!({"object": "list", "data": [{"id": cfg.model, "object": "model", "owned_by": "servescope-sim"}]}).to_string();
    let app = Router::new()
        .route(
            "/v1/completions",
            post(|s, h, b| forward(s, "/v1/completions", h, b)),
        )
        .route(
            "/v1/chat/completions",
            post(|s, h, b| forward(s, "/v1/chat/completions", h, b)),
        )
        .route(
            "/v1/models",
            get(move || {
                let body = models.clone();
                async move { ([("content-type", "application/json")], body) }
            }),
        )
        .route("/health", get(|| async { "" }))
        .layer(axum::extract::DefaultBodyLimit::max(16 << 20))
        .with_state(ing);
    let mut pc = cfg;
    pc.pd = None;
    pc.prefix_cache = None;
    let ingress = crate::serve_router(Engine::new(pc), app, addr).await?;
    Ok(Replicated { ingress, replicas })
}
