//! The OTLP receiver against the real OpenTelemetry Python SDK: `opentelemetry-sdk`
//! with `BatchSpanProcessor(OTLPSpanExporter(insecure=True))` (PyPI, pinned by
//! `scripts/otel_venv.sh`) exports vLLM-shaped spans over gRPC to a [`Receiver`] on
//! loopback, through `tests/otlp_python/send_spans.py`; what was collected is
//! checked field by field against what the script was told to send.
//!
//! Needs `SERVESCOPE_OTEL_PYTHON` (the venv's python; `scripts/test.sh` sets it).
//! Without it the tests say they skipped, unless `SERVESCOPE_REQUIRE_OTEL=1`, where
//! they fail.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};
use servescope_coordinator::analysis::otlp::RequestSpan;
use servescope_coordinator::analysis::startup::{PhaseKind as K, Source};
use servescope_coordinator::orchestration::otlp_receiver::{Limits, Receiver};

const S: i64 = 1_000_000_000;
/// 2026-01-01T00:00:00Z, in ns.
const T0: i64 = 1_767_225_600 * S;
const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/otlp_python/send_spans.py"
);

/// The venv's python, or `None` (test skipped) when not configured.
fn python() -> Option<PathBuf> {
    match std::env::var_os("SERVESCOPE_OTEL_PYTHON").filter(|v| !v.is_empty()) {
        Some(p) => {
            let p = PathBuf::from(p);
            assert!(
                p.exists(),
                "SERVESCOPE_OTEL_PYTHON={} does not exist (run scripts/otel_venv.sh)",
                p.display()
            );
            Some(p)
        }
        None => {
            assert!(
                std::env::var("SERVESCOPE_REQUIRE_OTEL").as_deref() != Ok("1"),
                "SERVESCOPE_REQUIRE_OTEL=1 but SERVESCOPE_OTEL_PYTHON is not set: \
                 run scripts/otel_venv.sh and set SERVESCOPE_OTEL_PYTHON to the python it prints"
            );
            println!("skipped: SERVESCOPE_OTEL_PYTHON not set (run scripts/otel_venv.sh)");
            None
        }
    }
}

async fn start(limits: Limits) -> Receiver {
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    Receiver::start(addr, limits)
        .await
        .expect("receiver starts")
}

/// What the script reported.
struct Sent {
    ok: bool,
    report: Value,
    stderr: String,
}

impl Sent {
    /// Export results, in the order they finished.
    fn exports(&self) -> Vec<(u64, String)> {
        self.report["exports"]
            .as_array()
            .expect("exports")
            .iter()
            .map(|e| {
                (
                    e["spans"].as_u64().unwrap(),
                    e["result"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    /// (trace id, span id) of the spec's span `i`, as the SDK generated them.
    fn ids(&self, i: usize) -> (String, String) {
        let s = &self.report["spans"][i];
        assert_eq!(s["index"].as_u64(), Some(i as u64));
        (
            s["trace_id"].as_str().unwrap().to_string(),
            s["span_id"].as_str().unwrap().to_string(),
        )
    }
}

/// Runs `send_spans.py` against `addr` with `spec` on stdin (off the runtime, which
/// keeps serving the receiver meanwhile).
async fn send(py: PathBuf, addr: SocketAddr, spec: Value, timeout_s: f64) -> Sent {
    let run = tokio::task::spawn_blocking(move || {
        let mut child = Command::new(&py)
            .arg(SCRIPT)
            .arg(addr.to_string())
            .arg("--timeout")
            .arg(timeout_s.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("running {}: {e}", py.display()));
        child
            .stdin
            .take()
            .unwrap()
            .write_all(spec.to_string().as_bytes())
            .expect("spec to the script");
        child.wait_with_output().expect("script output")
    });
    let out = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("send_spans.py finishes within 120 s")
        .expect("join");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let report = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!("send_spans.py printed no report ({e}); stdout: {stdout}\nstderr: {stderr}")
    });
    Sent {
        ok: out.status.success(),
        report,
        stderr,
    }
}

/// One `llm_request` span as vLLM's `do_tracing` sets it (ints for token counts,
/// floats for latencies), and the record the receiver should make of it.
struct Req {
    id: String,
    start_ns: i64,
    end_ns: i64,
    prompt: u64,
    completion: u64,
    queue: f64,
    ttft: f64,
    e2e: f64,
    prefill: f64,
    decode: f64,
    error: Option<&'static str>,
    remote_parent: Option<(&'static str, &'static str)>,
}

impl Req {
    fn new(i: i64) -> Req {
        let f = i as f64;
        // Arrival times with odd nanoseconds: they must come back exactly.
        let start_ns = T0 + (200 + i) * S + 123_456_789 + i;
        let e2e = 0.75 + f * 0.125;
        Req {
            id: format!("chatcmpl-{i:03}"),
            start_ns,
            end_ns: start_ns + (e2e * 1e9) as i64,
            prompt: 100 + 7 * i as u64,
            completion: 16 + i as u64,
            queue: 0.001_5 * (f + 1.0),
            ttft: 0.031_25 + f / 100.0,
            e2e,
            prefill: 0.02 + f / 1000.0,
            decode: 0.5 + f / 10.0,
            error: None,
            remote_parent: None,
        }
    }

    fn spec(&self) -> Value {
        let mut s = json!({
            "name": "llm_request",
            "kind": "server",
            "start_ns": self.start_ns,
            "end_ns": self.end_ns,
            "attributes": {
                "gen_ai.response.model": "Qwen/Qwen3-0.6B",
                "gen_ai.request.id": self.id,
                "gen_ai.request.temperature": 0.7,
                "gen_ai.request.top_p": 0.95,
                "gen_ai.request.max_tokens": 64,
                "gen_ai.request.n": 1,
                "gen_ai.usage.prompt_tokens": self.prompt,
                "gen_ai.usage.completion_tokens": self.completion,
                "gen_ai.latency.time_in_queue": self.queue,
                "gen_ai.latency.time_to_first_token": self.ttft,
                "gen_ai.latency.e2e": self.e2e,
                "gen_ai.latency.time_in_model_prefill": self.prefill,
                "gen_ai.latency.time_in_model_decode": self.decode,
            },
        });
        if let Some(msg) = self.error {
            s["error"] = json!(msg);
        }
        if let Some((trace_id, span_id)) = self.remote_parent {
            s["remote_parent"] = json!({"trace_id": trace_id, "span_id": span_id});
        }
        s
    }
}

fn close(got: Option<f64>, want: f64, what: &str) {
    let g = got.unwrap_or_else(|| panic!("{what}: missing (want {want})"));
    assert!((g - want).abs() < 1e-9, "{what}: got {g}, want {want}");
}

fn resource() -> Value {
    json!({
        "service.name": "vllm",
        "host.name": "gpu-node-7",
        "vllm.process_name": "EngineCore",
        "vllm.process_id": "4242",
    })
}

const TRACEPARENT: (&str, &str) = ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_spans_are_received() {
    let Some(py) = python() else { return };
    let r = start(Limits::default()).await;

    // vLLM startup spans (nested the way vLLM's `@instrument` scopes nest), then
    // requests once it serves.
    let sec = |x: i64| T0 + x * S;
    let startup = vec![
        json!({"name": "Loading (GPU)", "start_ns": sec(10), "end_ns": sec(100)}),
        json!({"name": "Load weights", "start_ns": sec(20), "end_ns": sec(90) + 5,
               "parent": 0, "attributes": {"code.function": "load_weights"}}),
        json!({"name": "Allocate KV cache", "start_ns": sec(100), "end_ns": sec(105)}),
        json!({"name": "Warmup (GPU)", "start_ns": sec(105), "end_ns": sec(130)}),
        json!({"name": "Capture model", "start_ns": sec(110), "end_ns": sec(125), "parent": 3}),
    ];
    let n_startup = startup.len();
    let mut reqs: Vec<Req> = (0..6).map(Req::new).collect();
    reqs[2].error = Some("request aborted");
    reqs[4].remote_parent = Some(TRACEPARENT);
    let spans: Vec<Value> = startup
        .into_iter()
        .chain(reqs.iter().map(Req::spec))
        .collect();
    let total = spans.len() as u64;
    let spec = json!({"resource": resource(), "spans": spans});

    let sent = send(py, r.local_addr(), spec, 10.0).await;
    assert!(sent.ok, "send_spans.py failed:\n{}", sent.stderr);
    let exports = sent.exports();
    assert!(!exports.is_empty());
    assert!(
        exports.iter().all(|(_, res)| res == "SUCCESS"),
        "{exports:?}"
    );
    assert_eq!(exports.iter().map(|(n, _)| n).sum::<u64>(), total);

    let got = r.shutdown().await.expect("shutdown");
    let st = got.stats;
    assert_eq!(st.exports, exports.len() as u64, "{st:?}");
    assert_eq!(st.spans, total, "{st:?}");
    assert_eq!(st.request_spans, reqs.len() as u64, "{st:?}");
    assert_eq!(st.startup_spans, n_startup as u64, "{st:?}");
    assert_eq!((st.dropped, st.invalid), (0, 0), "{st:?}");

    // Request spans, field by field.
    assert_eq!(got.requests.len(), reqs.len());
    let by_id: BTreeMap<&str, &RequestSpan> = got
        .requests
        .iter()
        .map(|r| (r.request_id.as_deref().expect("request id"), r))
        .collect();
    assert_eq!(by_id.len(), reqs.len(), "request ids are unique");
    for (i, want) in reqs.iter().enumerate() {
        let g = by_id
            .get(want.id.as_str())
            .unwrap_or_else(|| panic!("{} not received", want.id));
        let what = |f: &str| format!("{} {f}", want.id);
        assert_eq!(g.service, "vllm");
        assert_eq!(g.host.as_deref(), Some("gpu-node-7"));
        assert_eq!(g.process.as_deref(), Some("EngineCore pid=4242"));
        assert_eq!(g.model.as_deref(), Some("Qwen/Qwen3-0.6B"));
        assert_eq!(g.start_ns, Some(want.start_ns), "{}", what("start_ns"));
        assert_eq!(g.end_ns, Some(want.end_ns), "{}", what("end_ns"));
        assert_eq!(g.prompt_tokens, Some(want.prompt), "{}", what("prompt"));
        assert_eq!(
            g.completion_tokens,
            Some(want.completion),
            "{}",
            what("completion")
        );
        assert_eq!(g.max_tokens, Some(64));
        assert_eq!(g.n, Some(1));
        assert_eq!(g.cached_tokens, None);
        close(g.temperature, 0.7, &what("temperature"));
        close(g.top_p, 0.95, &what("top_p"));
        close(g.queue_s, want.queue, &what("queue"));
        close(g.ttft_s, want.ttft, &what("ttft"));
        close(g.e2e_s, want.e2e, &what("e2e"));
        close(g.prefill_s, want.prefill, &what("prefill"));
        close(g.decode_s, want.decode, &what("decode"));
        assert_eq!(g.scheduler_s, None);
        assert_eq!(g.error, want.error.is_some(), "{}", what("error"));
        // Every attribute the script set is a typed field.
        assert!(g.attrs.is_empty(), "{}: {:?}", want.id, g.attrs);
        // Ids as the SDK generated them; a remote parent (traceparent) is kept.
        let (trace_id, span_id) = sent.ids(n_startup + i);
        assert_eq!(g.span_id.as_deref(), Some(span_id.as_str()));
        assert_eq!(g.trace_id.as_deref(), Some(trace_id.as_str()));
        match want.remote_parent {
            Some((t, p)) => {
                assert_eq!(trace_id, t);
                assert_eq!(g.parent_span_id.as_deref(), Some(p));
            }
            None => assert_eq!(g.parent_span_id, None),
        }
    }
    assert_eq!(got.requests.iter().filter(|r| r.error).count(), 1);

    // Startup spans → one timeline for service/host, with the SDK's times.
    assert_eq!(got.startups.len(), 1, "{:?}", got.startups);
    let s = &got.startups[0];
    assert_eq!(s.service, "vllm");
    assert!(s.other_spans.is_empty(), "{:?}", s.other_spans);
    let t = &s.timeline;
    assert_eq!(t.host.as_deref(), Some("gpu-node-7"));
    let span_of = |k: K| {
        let p = t.get(k).unwrap_or_else(|| panic!("no {k:?} phase: {t:?}"));
        assert_eq!(p.source, Source::Otlp, "{p:?}");
        assert_eq!(p.process.as_deref(), Some("EngineCore pid=4242"), "{p:?}");
        (p.start_ns.unwrap(), p.end_ns.unwrap())
    };
    assert_eq!(span_of(K::ModelLoad), (sec(10), sec(100)));
    assert_eq!(span_of(K::WeightLoad), (sec(20), sec(90) + 5));
    assert_eq!(span_of(K::KvCacheAllocation), (sec(100), sec(105)));
    assert_eq!(span_of(K::CudaGraphCapture), (sec(110), sec(125)));
    // `Warmup (GPU)` contains the capture: the phase starts where the capture ends.
    assert_eq!(span_of(K::Warmup), (sec(125), sec(130)));
    let wl = t.get(K::WeightLoad).unwrap();
    assert_eq!(wl.attrs["otlp.span"], "Load weights");
    assert_eq!(wl.attrs["code.function"], "load_weights");
    // The first request and its first token, from the earliest llm_request span.
    let fr = t.get(K::FirstRequest).expect("first request");
    assert_eq!(fr.start_ns, Some(reqs[0].start_ns));
    assert_eq!(fr.attrs["request_id"], reqs[0].id);
    let ft = t.get(K::FirstToken).expect("first token").start_ns.unwrap();
    assert!((ft - reqs[0].start_ns - (reqs[0].ttft * 1e9) as i64).abs() <= 1);
}

/// Over the receiver's span limit: the rest is dropped and counted, the receiver
/// answers OK with `partial_success` (which the Python SDK does not act on), so
/// the SDK's exports succeed; nothing panics and the receiver keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_over_span_limit_is_dropped_and_counted() {
    let Some(py) = python() else { return };
    let limits = Limits {
        max_spans: 3,
        ..Limits::default()
    };
    let r = start(limits).await;
    let reqs: Vec<Req> = (0..10).map(Req::new).collect();
    let spec = json!({
        "resource": resource(),
        "max_export_batch_size": 4,
        "spans": reqs.iter().map(Req::spec).collect::<Vec<_>>(),
    });
    let sent = send(py.clone(), r.local_addr(), spec, 10.0).await;
    assert!(sent.ok, "send_spans.py failed:\n{}", sent.stderr);
    let exports = sent.exports();
    assert!(
        exports.iter().all(|(_, res)| res == "SUCCESS"),
        "{exports:?}"
    );
    assert!(exports.iter().all(|(n, _)| *n <= 4), "{exports:?}");
    assert_eq!(exports.iter().map(|(n, _)| n).sum::<u64>(), 10);

    let st = r.stats();
    assert_eq!(st.exports, exports.len() as u64, "{st:?}");
    assert_eq!(st.spans, 10, "{st:?}");
    assert_eq!(st.request_spans, 3, "{st:?}");
    assert_eq!(st.dropped, 7, "{st:?}");
    assert_eq!(st.invalid, 0, "{st:?}");

    // Still serving: another export is received, and dropped too (the limit holds).
    let more = json!({"resource": resource(), "spans": [Req::new(42).spec()]});
    let again = send(py, r.local_addr(), more, 10.0).await;
    assert!(again.ok, "second send failed:\n{}", again.stderr);

    let got = r.shutdown().await.expect("shutdown");
    assert_eq!(got.stats.spans, 11);
    assert_eq!(got.stats.dropped, 8);
    assert_eq!(got.requests.len(), 3);
    let sent_ids: Vec<&str> = reqs.iter().map(|q| q.id.as_str()).collect();
    for g in &got.requests {
        let id = g.request_id.as_deref().unwrap();
        assert!(sent_ids.contains(&id), "{id}");
        let want = &reqs[sent_ids.iter().position(|x| *x == id).unwrap()];
        assert_eq!(
            (g.start_ns, g.end_ns),
            (Some(want.start_ns), Some(want.end_ns))
        );
        assert_eq!(g.prompt_tokens, Some(want.prompt));
    }
}

/// A message over the receiver's size limit is refused (`OUT_OF_RANGE`): the SDK's
/// export fails and the script says so (exit status), the receiver counts nothing
/// and keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_export_refused_is_visible() {
    let Some(py) = python() else { return };
    let limits = Limits {
        max_message_bytes: 256,
        ..Limits::default()
    };
    let r = start(limits).await;
    let spans: Vec<Value> = (0..20).map(|i| Req::new(i).spec()).collect();
    let spec = json!({"resource": resource(), "spans": spans});
    // A short export timeout: the SDK retries OUT_OF_RANGE until its deadline.
    let sent = send(py, r.local_addr(), spec, 2.0).await;
    assert!(!sent.ok, "an oversized export should fail: {}", sent.report);
    assert!(
        sent.exports().iter().any(|(_, res)| res == "FAILURE"),
        "{}",
        sent.report
    );
    assert!(sent.stderr.contains("failed"), "{}", sent.stderr);
    let got = r.shutdown().await.expect("shutdown");
    assert_eq!(got.stats.spans, 0);
    assert!(got.requests.is_empty());
}
