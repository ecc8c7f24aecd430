//! OpenAI-compatible HTTP surface: `/v1/completions`, `/v1/chat/completions`
//! (streaming SSE or one JSON answer), `/v1/models`, `/metrics`, `/health`.

use servescope_proto::now_ns;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};

use crate::disagg::prefill::PrefillDone;
use crate::engine::{Engine, GenRequest, Out, Refusal, RemoteKv, Role};
use crate::text;

mod parse;

pub(crate) use parse::parse;

/// Largest request body accepted.
const MAX_BODY: usize = 16 << 20;

pub fn router(engine: Arc<Engine>) -> Router {
    Router::new()
        .route("/v1/completions", post(completions))
        .route("/v1/chat/completions", post(chat))
        .route("/v1/models", get(models))
        .route("/metrics", get(metrics))
        .route("/health", get(|| async { "" }))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(engine)
}

fn error(status: StatusCode, kind: &str, msg: impl Into<String>) -> Response {
    let body = json!({"object": "error", "message": msg.into(), "type": kind, "param": null, "code": status.as_u16()});
    (
        status,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

async fn models(State(e): State<Arc<Engine>>) -> Response {
    let body = json!({"object": "list", "data": [{"id": e.cfg.model, "object": "model", "owned_by": "servescope-sim"}]});
    ([("content-type", "application/json")], body.to_string()).into_response()
}

async fn metrics(State(e): State<Arc<Engine>>) -> Response {
    (
        [("content-type", "text/plain; version=0.0.4; charset=utf-8")],
        e.render_metrics(),
    )
        .into_response()
}

async fn completions(State(e): State<Arc<Engine>>, headers: HeaderMap, body: Bytes) -> Response {
    handle(e, headers, body, false).await
}

async fn chat(State(e): State<Arc<Engine>>, headers: HeaderMap, body: Bytes) -> Response {
    handle(e, headers, body, true).await
}

/// The `usage` object; with a prefix cache, `prompt_tokens_details.cached_tokens` as
/// vLLM reports it.
fn usage(prompt_tokens: u32, completion_tokens: u32, cached: Option<u32>) -> Value {
    let mut u = json!({"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens + completion_tokens,
                       "completion_tokens": completion_tokens});
    if let Some(c) = cached {
        u["prompt_tokens_details"] = json!({"cached_tokens": c});
    }
    u
}

fn created() -> u64 {
    now_ns() / 1_000_000_000
}

async fn handle(e: Arc<Engine>, headers: HeaderMap, body: Bytes, chat: bool) -> Response {
    let in_ns = now_ns();
    let p = match parse(&body, chat) {
        Ok(p) => p,
        Err(m) => return error(StatusCode::BAD_REQUEST, "BadRequestError", m),
    };
    match e.admit() {
        Ok(()) => {}
        Err(Refusal::Injected) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServerError",
                "injected fault: server error",
            )
        }
        Err(Refusal::Overloaded) => {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailableError",
                "waiting queue is full",
            )
        }
    }
    let rid = headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .unwrap_or_else(|| format!("{}", e.next_id()));
    let id = if chat {
        format!("chatcmpl-{rid}")
    } else {
        format!("cmpl-{rid}")
    };
    let flag = |k: &str| {
        p.kv.as_ref()
            .and_then(|v| v.get(k))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    };
    let prompt_tokens = text::count_tokens(&p.prompt);
    if e.role == Role::Prefill && flag("do_remote_decode") {
        let done = e.prefill_only(&id, &rid, prompt_tokens).await;
        let mut resp = prefill_response(&e, done, &id, chat);
        if let Ok(v) = rid.parse() {
            resp.headers_mut().insert("x-request-id", v);
        }
        return resp;
    }
    let remote = if e.role == Role::Decode && flag("do_remote_prefill") {
        match remote_kv(p.kv.as_ref(), prompt_tokens) {
            Ok(r) => Some(r),
            Err(m) => return error(StatusCode::BAD_REQUEST, "BadRequestError", m),
        }
    } else {
        None
    };
    let req = GenRequest {
        id: id.clone(),
        prompt_tokens,
        max_tokens: p.max_tokens.unwrap_or(e.cfg.default_max_tokens),
        counting: text::counting_start(&p.prompt),
        remote,
        client_id: rid.clone(),
        prefix_blocks: e.prefix_blocks(p.token_text()),
    };
    let model = e.cfg.model.clone();
    let rx = e.run(req);
    let mut resp = if p.stream {
        stream_response(rx, id, model, chat, p.include_usage, in_ns)
    } else {
        collect_response(rx, id, model, chat).await
    };
    if let Ok(v) = rid.parse() {
        resp.headers_mut().insert("x-request-id", v);
    }
    resp
}

/// The KV cache a decode request must pull, from P's `kv_transfer_params`.
fn remote_kv(kv: Option<&Value>, prompt_tokens: u32) -> Result<RemoteKv, String> {
    let kv = kv.ok_or("kv_transfer_params missing")?;
    let engine_id = kv
        .get("remote_engine_id")
        .and_then(Value::as_str)
        .ok_or("kv_transfer_params.remote_engine_id must be a string")?;
    let tokens = kv
        .get("remote_num_tokens")
        .and_then(Value::as_u64)
        .and_then(|n| u32::try_from(n).ok())
        .unwrap_or(prompt_tokens);
    Ok(RemoteKv {
        engine_id: engine_id.to_string(),
        request_id: kv
            .get("remote_request_id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        tokens,
    })
}

/// P's answer to a `do_remote_decode` request: one token, and the parameters D
/// needs to pull the KV cache (vLLM 0.33 `request_finished` field names).
fn prefill_response(e: &Engine, done: PrefillDone, id: &str, chat: bool) -> Response {
    let tok = text::token(0, None);
    let choice = if chat {
        json!({"index": 0, "message": {"role": "assistant", "content": tok}, "finish_reason": "length"})
    } else {
        json!({"index": 0, "text": tok, "finish_reason": "length"})
    };
    let port = e.listen_port.load(std::sync::atomic::Ordering::Relaxed);
    let v = json!({"id": id, "object": if chat { "chat.completion" } else { "text_completion" },
    "created": created(), "model": e.cfg.model, "choices": [choice],
    "usage": {"prompt_tokens": done.prompt_tokens, "total_tokens": done.prompt_tokens + 1, "completion_tokens": 1},
    "metrics": done.metrics,
    "kv_transfer_params": {
        "do_remote_prefill": true, "do_remote_decode": false,
        "remote_block_ids": [[]], "remote_engine_id": e.name, "remote_request_id": id,
        "remote_host": "127.0.0.1", "remote_port": port, "remote_num_tokens": done.prompt_tokens,
        "tp_size": 1,
    }});
    ([("content-type", "application/json")], v.to_string()).into_response()
}

/// The constant head of a stream's token events (`data: {"id":…,"choices":[{"index":0,`).
fn event_prefix(id: &str, object: &str, created: u64, model: &str) -> Vec<u8> {
    let q = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into());
    format!(
        "data: {{\"id\":{},\"object\":{},\"created\":{created},\"model\":{},\"choices\":[{{\"index\":0,",
        q(id),
        q(object),
        q(model)
    )
    .into_bytes()
}

/// One token event, written straight into `out` after the stream's `prefix` (the
/// same JSON as building a `Value` and serialising it, without the per-token map:
/// the simulator must stay cheaper per token than the clients it serves).
fn token_event(out: &mut Vec<u8>, prefix: &[u8], chat: bool, text: &str) {
    out.extend_from_slice(prefix);
    out.extend_from_slice(if chat {
        b"\"delta\":{\"content\":"
    } else {
        b"\"text\":"
    });
    // Writing a str into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, text);
    out.extend_from_slice(if chat {
        b"},\"logprobs\":null,\"finish_reason\":null}]}\n\n"
    } else {
        b",\"logprobs\":null,\"finish_reason\":null,\"stop_reason\":null}]}\n\n"
    });
}

fn sse(v: &Value) -> Bytes {
    Bytes::from(format!("data: {v}\n\n"))
}

/// When the request reached the handler and when its first token's bytes went to
/// the HTTP server for writing (ns since the epoch), reported in the final metrics as
/// `servescope_wire` (not a vLLM field): what the client measures beyond these two
/// is the client's own, the loopback's and the HTTP layers' time, without the
/// engine's.
#[derive(Clone, Copy)]
struct Wire {
    request_in_ns: u64,
    first_token_out_ns: Option<u64>,
}

impl Wire {
    /// Marks the first token going out now (if none went before).
    fn token_out(&mut self) {
        if self.first_token_out_ns.is_none() {
            self.first_token_out_ns = Some(now_ns());
        }
    }

    fn add_to(&self, metrics: &mut Value) {
        if let Some(m) = metrics.as_object_mut() {
            m.insert(
                "servescope_wire".into(),
                json!({"request_in_unix_ns": self.request_in_ns,
                       "first_token_out_unix_ns": self.first_token_out_ns}),
            );
        }
    }
}

fn stream_response(
    rx: tokio::sync::mpsc::Receiver<Out>,
    id: String,
    model: String,
    chat: bool,
    include_usage: bool,
    request_in_ns: u64,
) -> Response {
    let created = created();
    let object = if chat {
        "chat.completion.chunk"
    } else {
        "text_completion"
    };
    let first = chat.then(|| {
        sse(&json!({"id": id, "object": object, "created": created, "model": model,
            "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": null, "finish_reason": null}]}))
    });
    let prefix: std::sync::Arc<[u8]> = event_prefix(&id, object, created, &model).into();
    let wire = Wire {
        request_in_ns,
        first_token_out_ns: None,
    };
    let state = (rx, first, false, false, wire);
    let stream = futures_util::stream::unfold(
        state,
        move |(mut rx, mut first, done, cut, mut wire)| {
            let (id, model, prefix) = (id.clone(), model.clone(), std::sync::Arc::clone(&prefix));
            async move {
                if let Some(b) = first.take() {
                    return Some((
                        Ok::<Bytes, std::io::Error>(b),
                        (rx, None, false, false, wire),
                    ));
                }
                if done {
                    return None;
                }
                let choice = |text: &str, finish: Value| {
                    if chat {
                        json!({"index": 0, "delta": {"content": text}, "logprobs": null, "finish_reason": finish})
                    } else {
                        json!({"index": 0, "text": text, "logprobs": null, "finish_reason": finish, "stop_reason": null})
                    }
                };
                if cut {
                    return Some((
                        Err(std::io::Error::other("injected fault: stream truncated")),
                        (rx, None, true, false, wire),
                    ));
                }
                // Everything already queued goes out in one write: with zero decode time a
                // whole answer is one frame, as a busy server's socket would coalesce it.
                let mut out: Vec<u8> = Vec::new();
                let mut next = rx.recv().await;
                loop {
                    match next {
                        Some(Out::Chunks(texts)) => {
                            for text in &texts {
                                token_event(&mut out, &prefix, chat, text);
                            }
                            if !texts.is_empty() {
                                wire.token_out();
                            }
                        }
                        Some(Out::Done {
                            prompt_tokens,
                            completion_tokens,
                            cached_tokens,
                            mut metrics,
                        }) => {
                            wire.add_to(&mut metrics);
                            let fin = json!({"id": id, "object": object, "created": created, "model": model,
                            "choices": [choice("", json!("length"))]});
                            out.extend_from_slice(&sse(&fin));
                            if include_usage {
                                let u = json!({"id": id, "object": object, "created": created, "model": model, "choices": [],
                                "usage": usage(prompt_tokens, completion_tokens, cached_tokens),
                                "metrics": metrics});
                                out.extend_from_slice(&sse(&u));
                            }
                            out.extend_from_slice(b"data: [DONE]\n\n");
                            return Some((Ok(Bytes::from(out)), (rx, None, true, false, wire)));
                        }
                        Some(Out::Cut) => {
                            if out.is_empty() {
                                return Some((
                                    Err(std::io::Error::other("injected fault: stream truncated")),
                                    (rx, None, true, false, wire),
                                ));
                            }
                            return Some((Ok(Bytes::from(out)), (rx, None, false, true, wire)));
                        }
                        None => {
                            return (!out.is_empty())
                                .then(|| (Ok(Bytes::from(out)), (rx, None, true, false, wire)));
                        }
                    }
                    match rx.try_recv() {
                        Ok(o) => next = Some(o),
                        Err(_) => {
                            return Some((Ok(Bytes::from(out)), (rx, None, false, false, wire)))
                        }
                    }
                }
            }
        },
    );
    Response::builder()
        .header("content-type", "text/event-stream")
        .header("cache-control", "no-cache")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| {
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServerError",
                "response build",
            )
        })
}

async fn collect_response(
    mut rx: tokio::sync::mpsc::Receiver<Out>,
    id: String,
    model: String,
    chat: bool,
) -> Response {
    let mut text = String::new();
    while let Some(o) = rx.recv().await {
        match o {
            Out::Chunks(ts) => ts.iter().for_each(|t| text.push_str(t)),
            Out::Cut => {
                return error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "InternalServerError",
                    "injected fault: truncated",
                );
            }
            Out::Done {
                prompt_tokens,
                completion_tokens,
                cached_tokens,
                metrics,
            } => {
                let choice = if chat {
                    json!({"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "length"})
                } else {
                    json!({"index": 0, "text": text, "finish_reason": "length"})
                };
                let v = json!({"id": id, "object": if chat { "chat.completion" } else { "text_completion" },
                    "created": created(), "model": model, "choices": [choice],
                    "usage": usage(prompt_tokens, completion_tokens, cached_tokens),
                    "metrics": metrics});
                return ([("content-type", "application/json")], v.to_string()).into_response();
            }
        }
    }
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "InternalServerError",
        "generation ended early",
    )
}

#[cfg(test)]
mod tests;
