//! Startup mode: the simulator listens at once but answers `/health` and the
//! OpenAI routes with 503 until configured startup phases have elapsed, and writes
//! vLLM-format log lines (0.11 wording, `(EngineCore_DP0 pid=N) INFO MM-DD HH:MM:SS
//! [file.py:N] …`) at the moments the phases end, to a file and/or stdout, flushed
//! per line. The durations it prints are the configured ones, so a log parser must
//! recover them exactly; the timestamps are the wall clock (UTC) when each line is
//! written.

use std::fs::File;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use servescope_proto::ext::civil_from_days;

/// A simulated startup phase, in the order a vLLM engine goes through them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StartupPhase {
    /// Engine config → "Starting to load model".
    Init,
    /// Hugging Face download.
    Download,
    /// Weights → GPU.
    WeightLoad,
    Dynamo,
    /// Inductor compile.
    Compile,
    /// Compiled graph loaded from the cache.
    CacheLoad,
    /// Memory profiling run.
    Profile,
    /// KV cache allocation (and the warmup before graph capture).
    KvCache,
    GraphCapture,
    Warmup,
    /// API server start after the engine is up.
    Api,
}

impl StartupPhase {
    pub const ALL: [StartupPhase; 11] = [
        StartupPhase::Init,
        StartupPhase::Download,
        StartupPhase::WeightLoad,
        StartupPhase::Dynamo,
        StartupPhase::Compile,
        StartupPhase::CacheLoad,
        StartupPhase::Profile,
        StartupPhase::KvCache,
        StartupPhase::GraphCapture,
        StartupPhase::Warmup,
        StartupPhase::Api,
    ];

    pub fn name(self) -> &'static str {
        match self {
            StartupPhase::Init => "init",
            StartupPhase::Download => "download",
            StartupPhase::WeightLoad => "weight_load",
            StartupPhase::Dynamo => "dynamo",
            StartupPhase::Compile => "compile",
            StartupPhase::CacheLoad => "cache_load",
            StartupPhase::Profile => "profile",
            StartupPhase::KvCache => "kv_cache",
            StartupPhase::GraphCapture => "graph_capture",
            StartupPhase::Warmup => "warmup",
            StartupPhase::Api => "api",
        }
    }
}

/// Startup mode settings.
#[derive(Debug, Clone, PartialEq)]
pub struct StartupConfig {
    /// Seconds per phase; phases not listed take no time and print no line of their own.
    pub phases: Vec<(StartupPhase, f64)>,
    /// Log file (created or truncated at start).
    pub log: Option<PathBuf>,
    /// Also write the lines to stdout.
    pub stdout: bool,
    /// `HH:MM:SS.mmm` instead of vLLM's whole seconds.
    pub millis: bool,
}

/// Parses `download=2,weight_load=3.5,…` (seconds, any order, each name once).
pub fn parse_phases(s: &str) -> Result<Vec<(StartupPhase, f64)>, String> {
    let names: Vec<&str> = StartupPhase::ALL.iter().map(|p| p.name()).collect();
    let mut out: Vec<(StartupPhase, f64)> = Vec::new();
    for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (name, secs) = item
            .split_once('=')
            .ok_or_else(|| format!("startup phase {item:?}: expected NAME=SECONDS"))?;
        let phase = StartupPhase::ALL
            .into_iter()
            .find(|p| p.name() == name.trim())
            .ok_or_else(|| {
                format!(
                    "unknown startup phase {:?} (known: {})",
                    name.trim(),
                    names.join(", ")
                )
            })?;
        let v: f64 = secs
            .trim()
            .parse()
            .map_err(|_| format!("startup phase {item:?}: {secs:?} is not a number"))?;
        if !v.is_finite() || !(0.0..=86_400.0).contains(&v) {
            return Err(format!("startup phase {item:?}: seconds must be 0..86400"));
        }
        if out.iter().any(|(p, _)| *p == phase) {
            return Err(format!("startup phase {:?} given twice", phase.name()));
        }
        out.push((phase, v));
    }
    if out.is_empty() {
        return Err("no startup phases given".into());
    }
    out.sort_by_key(|(p, _)| *p);
    Ok(out)
}

impl StartupConfig {
    fn secs(&self, p: StartupPhase) -> Option<f64> {
        self.phases.iter().find(|(q, _)| *q == p).map(|(_, s)| *s)
    }

    /// Seconds from start to ready.
    pub fn total_s(&self) -> f64 {
        self.phases.iter().map(|(_, s)| s).sum()
    }
}

/// `MM-DD HH:MM:SS[.mmm]` (UTC) of a wall-clock time.
pub fn stamp(t: SystemTime, millis: bool) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let secs = d.as_secs() as i64;
    let (_, m, day) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    let base = format!(
        "{m:02}-{day:02} {:02}:{:02}:{:02}",
        s / 3600,
        s / 60 % 60,
        s % 60
    );
    if millis {
        format!("{base}.{:03}", d.subsec_millis())
    } else {
        base
    }
}

#[derive(Debug, Clone, Copy)]
enum Who {
    Api,
    Engine,
}

struct Sink {
    file: Option<File>,
    stdout: bool,
    millis: bool,
    api_pid: u32,
}

impl Sink {
    fn write(&mut self, who: Who, src: &str, msg: &str, stamped: bool) {
        let prefix = match who {
            Who::Api => format!("(APIServer pid={})", self.api_pid),
            Who::Engine => format!("(EngineCore_DP0 pid={})", self.api_pid + 1),
        };
        let line = if stamped {
            let ts = stamp(SystemTime::now(), self.millis);
            format!("{prefix} INFO {ts} [{src}] {msg}\n")
        } else {
            format!("{prefix} INFO:     {msg}\n")
        };
        if let Some(f) = self.file.as_mut() {
            if let Err(e) = f.write_all(line.as_bytes()).and_then(|()| f.flush()) {
                tracing::warn!("startup log: {e}");
            }
        }
        if self.stdout {
            let mut o = std::io::stdout().lock();
            let _ = o.write_all(line.as_bytes()).and_then(|()| o.flush());
        }
    }
}

/// Readiness and the log sink, shared by the driver and the request gate.
pub(crate) struct Gate {
    ready: AtomicBool,
    first_request: AtomicBool,
    sink: Mutex<Sink>,
}

impl Gate {
    pub(crate) fn new(cfg: &StartupConfig) -> std::io::Result<Gate> {
        let file = cfg.log.as_ref().map(File::create).transpose()?;
        Ok(Gate {
            ready: AtomicBool::new(false),
            first_request: AtomicBool::new(false),
            sink: Mutex::new(Sink {
                file,
                stdout: cfg.stdout,
                millis: cfg.millis,
                api_pid: std::process::id(),
            }),
        })
    }

    pub(crate) fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    fn log(&self, who: Who, src: &str, msg: &str) {
        if let Ok(mut s) = self.sink.lock() {
            s.write(who, src, msg, true);
        }
    }

    fn log_plain(&self, who: Who, msg: &str) {
        if let Ok(mut s) = self.sink.lock() {
            s.write(who, "", msg, false);
        }
    }
}

/// Plays the startup: waits out each phase and writes its lines, then opens the gate.
pub(crate) async fn drive(cfg: StartupConfig, model: String, addr: SocketAddr, gate: Arc<Gate>) {
    use StartupPhase as P;
    let t0 = tokio::time::Instant::now();
    let mut at = 0.0f64;
    let g = &gate;
    let wait = |p: P, at: &mut f64| {
        *at += cfg.secs(p).unwrap_or(0.0);
        tokio::time::sleep_until(t0 + Duration::from_secs_f64(*at))
    };
    let has = |p: P| cfg.secs(p).is_some();
    let e = Who::Engine;
    g.log(
        Who::Api,
        "api_server.py:1839",
        "vLLM API server version 0.11.0",
    );
    g.log(e, "core.py:93", &format!("Initializing a V1 LLM engine (v0.11.0) with config: model='{model}', dtype=torch.bfloat16, tensor_parallel_size=1, enforce_eager=False"));
    wait(P::Init, &mut at).await;
    g.log(
        e,
        "gpu_model_runner.py:2602",
        &format!("Starting to load model {model}..."),
    );
    wait(P::Download, &mut at).await;
    let d = cfg.secs(P::Download).unwrap_or(0.0);
    if has(P::Download) {
        let msg = format!("Time spent downloading weights for {model}: {d:.6} seconds");
        g.log(e, "weight_utils.py:392", &msg);
    }
    wait(P::WeightLoad, &mut at).await;
    let w = cfg.secs(P::WeightLoad).unwrap_or(0.0);
    if has(P::WeightLoad) {
        g.log(
            e,
            "default_loader.py:267",
            &format!("Loading weights took {w:.2} seconds"),
        );
    }
    let msg = format!("Model loading took 14.9596 GiB and {:.6} seconds", d + w);
    g.log(e, "gpu_model_runner.py:2653", &msg);
    let compile = [P::Dynamo, P::Compile, P::CacheLoad];
    if compile.iter().any(|p| has(*p)) {
        g.log(e, "backends.py:548", "Using cache directory: /tmp/servescope-sim/torch_compile_cache/5f1c0de0a1/rank_0_0/backbone for vLLM's torch.compile");
    }
    for p in compile {
        wait(p, &mut at).await;
        let v = cfg.secs(p).unwrap_or(0.0);
        let (src, msg) = match p {
            P::Dynamo => ("backends.py:559", format!("Dynamo bytecode transform time: {v:.2} s")),
            P::Compile => ("backends.py:197", format!("Compiling a graph for dynamic shape takes {v:.2} s")),
            _ => ("backends.py:164", format!("Directly load the compiled graph(s) for dynamic shape from the cache, took {v:.3} s")),
        };
        if has(p) {
            g.log(e, src, &msg);
        }
    }
    if compile.iter().any(|p| has(*p)) {
        let total: f64 = compile.iter().filter_map(|p| cfg.secs(*p)).sum();
        let msg = format!("torch.compile takes {total:.2} s in total");
        g.log(e, "monitor.py:34", &msg);
    }
    wait(P::Profile, &mut at).await;
    g.log(
        e,
        "gpu_worker.py:298",
        "Available KV cache memory: 20.00 GiB",
    );
    g.log(
        e,
        "kv_cache_utils.py:1087",
        "GPU KV cache size: 163,840 tokens",
    );
    g.log(
        e,
        "kv_cache_utils.py:1091",
        "Maximum concurrency for 8,192 tokens per request: 20.00x",
    );
    wait(P::KvCache, &mut at).await;
    wait(P::GraphCapture, &mut at).await;
    if let Some(v) = cfg.secs(P::GraphCapture) {
        // vLLM prints whole seconds here (`%.0f`).
        let msg = format!("Graph capturing finished in {v:.0} secs, took 0.50 GiB");
        g.log(e, "gpu_model_runner.py:3480", &msg);
    }
    wait(P::Warmup, &mut at).await;
    let init: f64 = [
        P::Dynamo,
        P::Compile,
        P::CacheLoad,
        P::Profile,
        P::KvCache,
        P::GraphCapture,
        P::Warmup,
    ]
    .iter()
    .filter_map(|p| cfg.secs(*p))
    .sum();
    let msg =
        format!("init engine (profile, create kv cache, warmup model) took {init:.2} seconds");
    g.log(e, "core.py:210", &msg);
    wait(P::Api, &mut at).await;
    let a = Who::Api;
    g.log(a, "api_server.py:1634", "Supported tasks: ['generate']");
    let msg = format!("Starting vLLM API server 0 on http://{addr}");
    g.log(a, "api_server.py:1912", &msg);
    g.log(a, "launcher.py:34", "Available routes are:");
    gate.ready.store(true, Ordering::Release);
    g.log_plain(a, "Application startup complete.");
}

/// Axum middleware: 503 until ready (`/metrics` excepted); logs the first request.
pub(crate) async fn gate(State(g): State<Arc<Gate>>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if path == "/metrics" {
        return next.run(req).await;
    }
    if !g.is_ready() {
        if path == "/health" {
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
        let body = serde_json::json!({"object": "error", "message": "the engine is starting up", "type": "ServiceUnavailableError", "param": null, "code": 503});
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [("content-type", "application/json")],
            body.to_string(),
        )
            .into_response();
    }
    let generate = matches!(path, "/v1/completions" | "/v1/chat/completions");
    if generate && !g.first_request.swap(true, Ordering::AcqRel) {
        g.log(Who::Api, "async_llm.py:323", "Added request cmpl-sim-0.");
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn startup_phase_list() {
        let v = parse_phases("weight_load=3, download=2,graph_capture=0.5").unwrap();
        assert_eq!(
            v,
            vec![
                (StartupPhase::Download, 2.0),
                (StartupPhase::WeightLoad, 3.0),
                (StartupPhase::GraphCapture, 0.5)
            ]
        );
        for bad in [
            "",
            "x=1",
            "download",
            "download=-1",
            "download=a",
            "init=1,init=2",
        ] {
            assert!(parse_phases(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn startup_stamp_format() {
        let t = UNIX_EPOCH + Duration::from_millis(1_764_542_096_250);
        assert_eq!(stamp(t, false), "11-30 22:34:56");
        assert_eq!(stamp(t, true), "11-30 22:34:56.250");
    }
}
