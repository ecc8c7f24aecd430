//! A P/D proxy that behaves as vLLM's `toy_proxy_server.py`: for each request it
//! calls a prefill instance (round robin) with `max_tokens=1`, `stream=false` and
//! `kv_transfer_params.do_remote_decode=true`, puts P's returned `kv_transfer_params`
//! into the original body and streams the decode instance's answer back, both legs
//! with the same `X-Request-Id`. Faults: a fixed overhead before the prefill call
//! (slow ingress), and stream batching (Ray Serve's 50 ms output batching), which
//! flushes D's stream only every interval.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::truth::TruthBook;
use servescope_proto::now_ns;

/// Largest prefill answer read.
const MAX_P_BODY: usize = 16 << 20;

pub struct Proxy {
    client: Client<HttpConnector, Full<Bytes>>,
    pub prefills: Vec<String>,
    pub decodes: Vec<String>,
    next_p: AtomicUsize,
    next_d: AtomicUsize,
    next_id: AtomicUsize,
    pub delay: Duration,
    pub batch: Duration,
    pub truth: Arc<TruthBook>,
}

impl Proxy {
    pub fn new(
        prefills: Vec<String>,
        decodes: Vec<String>,
        delay: Duration,
        batch: Duration,
        truth: Arc<TruthBook>,
    ) -> Proxy {
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        Proxy {
            client: Client::builder(TokioExecutor::new()).build(http),
            prefills,
            decodes,
            next_p: AtomicUsize::new(0),
            next_d: AtomicUsize::new(0),
            next_id: AtomicUsize::new(0),
            delay,
            batch,
            truth,
        }
    }
}

pub fn router(p: Arc<Proxy>) -> Router {
    Router::new()
        .route("/v1/completions", post(completions))
        .route("/v1/chat/completions", post(chat))
        .route("/servescope/truth", get(truth))
        .route("/healthcheck", get(health))
        .route("/health", get(|| async { "" }))
        .layer(axum::extract::DefaultBodyLimit::max(16 << 20))
        .with_state(p)
}

fn error(status: StatusCode, msg: impl Into<String>) -> Response {
    let body = json!({"object": "error", "message": msg.into(), "type": "ProxyError", "code": status.as_u16()});
    (
        status,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

async fn truth(State(p): State<Arc<Proxy>>) -> Response {
    let v = serde_json::to_string(&p.truth.all()).unwrap_or_else(|_| "[]".into());
    ([("content-type", "application/json")], v).into_response()
}

async fn health(State(p): State<Arc<Proxy>>) -> Response {
    let v = json!({"status": "ok", "prefill_instances": p.prefills.len(), "decode_instances": p.decodes.len()});
    ([("content-type", "application/json")], v.to_string()).into_response()
}

async fn completions(State(p): State<Arc<Proxy>>, h: HeaderMap, body: Bytes) -> Response {
    forward(p, h, body, "/v1/completions").await
}

async fn chat(State(p): State<Arc<Proxy>>, h: HeaderMap, body: Bytes) -> Response {
    forward(p, h, body, "/v1/chat/completions").await
}

fn pick(v: &[String], n: &AtomicUsize) -> Option<String> {
    (!v.is_empty()).then(|| v[n.fetch_add(1, Ordering::Relaxed) % v.len()].clone())
}

fn post_json(url: &str, rid: &str, body: &Value) -> Result<hyper::Request<Full<Bytes>>, String> {
    hyper::Request::post(url)
        .header("content-type", "application/json")
        .header("x-request-id", rid)
        .body(Full::new(Bytes::from(body.to_string())))
        .map_err(|e| format!("building the request to {url}: {e}"))
}

async fn forward(p: Arc<Proxy>, h: HeaderMap, body: Bytes, path: &str) -> Response {
    let in_ns = now_ns();
    let rid = h
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .unwrap_or_else(|| format!("proxy-{}", p.next_id.fetch_add(1, Ordering::Relaxed)));
    let (delay_ms, batch_ms) = (p.delay.as_secs_f64() * 1e3, p.batch.as_secs_f64() * 1e3);
    p.truth.update(&rid, |t| {
        t.proxy_in_ns = Some(in_ns);
        t.proxy_delay_ms = delay_ms;
        t.stream_batch_ms = batch_ms;
    });
    let Ok(mut orig) = serde_json::from_slice::<Value>(&body) else {
        return error(StatusCode::BAD_REQUEST, "request body is not valid JSON");
    };
    if !p.delay.is_zero() {
        tokio::time::sleep(p.delay).await;
    }
    let (Some(pu), Some(du)) = (pick(&p.prefills, &p.next_p), pick(&p.decodes, &p.next_d)) else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "no prefill or decode instance",
        );
    };
    let mut pre = orig.clone();
    pre["kv_transfer_params"] = json!({"do_remote_decode": true, "do_remote_prefill": false,
        "remote_engine_id": null, "remote_block_ids": null, "remote_host": null, "remote_port": null});
    pre["stream"] = json!(false);
    pre["max_tokens"] = json!(1);
    if pre.get("max_completion_tokens").is_some() {
        pre["max_completion_tokens"] = json!(1);
    }
    if let Some(o) = pre.as_object_mut() {
        o.remove("stream_options");
    }
    let p_resp = match post_json(&format!("{pu}{path}"), &rid, &pre) {
        Ok(r) => p.client.request(r).await,
        Err(m) => return error(StatusCode::INTERNAL_SERVER_ERROR, m),
    };
    let p_resp = match p_resp {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_GATEWAY, format!("prefill {pu}: {e}")),
    };
    let status = p_resp.status();
    let p_body = match Limited::new(p_resp.into_body(), MAX_P_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return error(StatusCode::BAD_GATEWAY, format!("prefill {pu} body: {e}")),
    };
    if !status.is_success() {
        return (status, [("content-type", "application/json")], p_body).into_response();
    }
    let kv = serde_json::from_slice::<Value>(&p_body)
        .ok()
        .and_then(|v| v.get("kv_transfer_params").cloned());
    let Some(kv) = kv else {
        return error(
            StatusCode::BAD_GATEWAY,
            format!("prefill {pu} returned no kv_transfer_params"),
        );
    };
    orig["kv_transfer_params"] = kv;
    let d_resp = match post_json(&format!("{du}{path}"), &rid, &orig) {
        Ok(r) => p.client.request(r).await,
        Err(m) => return error(StatusCode::INTERNAL_SERVER_ERROR, m),
    };
    let d_resp = match d_resp {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_GATEWAY, format!("decode {du}: {e}")),
    };
    let (parts, body) = d_resp.into_parts();
    let body = if p.batch.is_zero() {
        Body::new(body)
    } else {
        batched(body, p.batch)
    };
    let mut r = Response::new(body);
    *r.status_mut() = parts.status;
    for k in ["content-type", "cache-control", "x-request-id"] {
        if let Some(v) = parts.headers.get(k) {
            r.headers_mut().insert(k, v.clone());
        }
    }
    r
}

/// D's stream, released only at multiples of `every` (what arrived meanwhile goes
/// out in one write).
fn batched(mut body: hyper::body::Incoming, every: Duration) -> Body {
    let (tx, rx) = mpsc::channel::<Result<Bytes, String>>(1024);
    tokio::spawn(async move {
        while let Some(f) = body.frame().await {
            let item = match f {
                Ok(f) => match f.into_data() {
                    Ok(d) => Ok(d),
                    Err(_) => continue,
                },
                Err(e) => Err(e.to_string()),
            };
            let stop = item.is_err();
            if tx.send(item).await.is_err() || stop {
                return;
            }
        }
    });
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let stream =
        futures_util::stream::unfold((rx, tick, false), |(mut rx, mut tick, done)| async move {
            if done {
                return None;
            }
            let mut out = Vec::new();
            loop {
                tick.tick().await;
                loop {
                    match rx.try_recv() {
                        Ok(Ok(b)) => out.extend_from_slice(&b),
                        Ok(Err(e)) => {
                            return Some((Err(std::io::Error::other(e)), (rx, tick, true)))
                        }
                        Err(mpsc::error::TryRecvError::Empty) if out.is_empty() => break,
                        Err(mpsc::error::TryRecvError::Empty) => {
                            return Some((Ok(Bytes::from(out)), (rx, tick, false)))
                        }
                        Err(mpsc::error::TryRecvError::Disconnected) if out.is_empty() => {
                            return None
                        }
                        Err(mpsc::error::TryRecvError::Disconnected) => {
                            return Some((Ok(Bytes::from(out)), (rx, tick, true)))
                        }
                    }
                }
            }
        });
    Body::from_stream(stream)
}
