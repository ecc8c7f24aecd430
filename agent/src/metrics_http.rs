//! Prometheus text exposition over HTTP or HTTPS (`GET /metrics`), on its own port.
//! Same bearer-token rule as gRPC (Prometheus: `authorization: {credentials_file: …}`).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::serve::Listener;
use axum::Router;
use tokio::sync::watch;

use crate::auth::TokenCheck;
use crate::exposition;
use crate::ring::Ring;
use crate::service::InventorySource;

#[derive(Clone)]
struct Ctx {
    inventory: Arc<InventorySource>,
    ring: Arc<Ring>,
    check: TokenCheck,
}

async fn metrics(State(ctx): State<Ctx>, headers: HeaderMap) -> Response {
    let auth = headers.get(header::AUTHORIZATION).map(|v| v.as_bytes());
    if let Err(r) = ctx.check.check_header(auth) {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            r.message(),
        )
            .into_response();
    }
    let inv = ctx.inventory.snapshot();
    let latest = ctx.ring.latest();
    let refs: Vec<_> = latest.iter().map(|s| s.as_ref()).collect();
    let body = exposition::render(&inv, &refs, &ctx.ring.xid_counts());
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

async fn healthz() -> &'static str {
    "ok\n"
}

/// Serves /metrics on `listener` (plain TCP, or [`crate::metrics_tls::TlsListener`])
/// until `stop` turns true.
pub fn serve<L>(
    listener: L,
    inventory: Arc<InventorySource>,
    ring: Arc<Ring>,
    check: TokenCheck,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()>
where
    L: Listener<Addr = std::net::SocketAddr>,
{
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .with_state(Ctx {
            inventory,
            ring,
            check,
        });
    tokio::spawn(async move {
        let r = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stop.wait_for(|s| *s).await;
            })
            .await;
        if let Err(e) = r {
            tracing::error!("/metrics server ended: {e}");
        }
    })
}
