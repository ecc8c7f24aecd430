//! A real vLLM 0.32 (PyPI's CPU build, a tiny random Llama) for the conformance
//! tests, installed and started by the shared `setup.sh` through `serve.sh` beside
//! this file. The folder of `setup.sh` is `SERVESCOPE_VLLM_CPU_DIR`, by default
//! `shared/vllm-cpu` beside the repository. Without it the tests skip, saying why;
//! under CI (`CI=true`) or `SERVESCOPE_REQUIRE_VLLM=1` they fail instead.
#![allow(dead_code)]

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The served model name (setup.sh's `--served-model-name`).
pub const MODEL: &str = "tiny-llama";

/// Where setup.sh lives, or why the tests skip (a panic where vLLM is required).
pub fn setup_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("SERVESCOPE_VLLM_CPU_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/vllm-cpu"));
    if dir.join("setup.sh").is_file() {
        return Some(dir);
    }
    let why = format!(
        "no {}/setup.sh (set SERVESCOPE_VLLM_CPU_DIR to the folder of the vLLM CPU setup script)",
        dir.display()
    );
    let required = std::env::var("CI").is_ok_and(|v| v == "true")
        || std::env::var("SERVESCOPE_REQUIRE_VLLM").is_ok_and(|v| v == "1");
    assert!(
        !required,
        "vLLM is required here but cannot be installed: {why}"
    );
    eprintln!("skipped: real-vLLM conformance: {why}");
    None
}

/// `$VLLM_HOME` as setup.sh computes it: the venv, the model and the server logs.
pub fn vllm_home() -> PathBuf {
    if let Some(h) = std::env::var_os("VLLM_HOME") {
        return PathBuf::from(h);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache"));
    cache.join("servescope-vllm-cpu")
}

/// A loopback port: from `SERVESCOPE_VLLM_PORT_BASE` (+ `offset`) where set, else
/// one the OS has free.
pub fn port(offset: u16) -> u16 {
    if let Some(base) = std::env::var("SERVESCOPE_VLLM_PORT_BASE")
        .ok()
        .and_then(|b| b.parse::<u16>().ok())
    {
        return base + offset;
    }
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The start command of one engine on `port` (for `startup run --start-cmd`, or
/// [`Engine::start`]): it stops the engine when it is stopped itself.
pub fn serve_cmd(dir: &Path, port: u16, extra: &str) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vllm/serve.sh");
    format!(
        "SERVESCOPE_VLLM_CPU_DIR='{}' VLLM_EXTRA='{extra}' OTEL_EXPORTER_OTLP_TRACES_INSECURE=true exec bash '{}' {port} {}",
        dir.display(),
        script.display(),
        std::process::id()
    )
}

/// A running engine; dropped (or the test process gone), it is stopped.
pub struct Engine {
    pub port: u16,
    pub url: String,
    /// Its log (setup.sh writes `$VLLM_HOME/serve-PORT.log`).
    pub log: PathBuf,
    /// When the start command ran (ns since the Unix epoch).
    pub started_ns: u128,
    child: Child,
}

impl Engine {
    /// Starts the engine (installing vLLM first if needed) and waits until it is
    /// healthy; panics with setup.sh's output when it cannot start.
    pub fn start(dir: &Path, port: u16, extra: &str) -> Engine {
        let started_ns = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(serve_cmd(dir, port, extra))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap();
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        let t = Instant::now();
        std::io::BufRead::read_line(&mut out, &mut line).unwrap();
        assert!(
            line.starts_with("ready"),
            "vLLM could not be started on port {port} (see the output above; log {})",
            vllm_home().join(format!("serve-{port}.log")).display()
        );
        eprintln!(
            "vLLM on port {port} ready after {:.1} s",
            t.elapsed().as_secs_f64()
        );
        Engine {
            port,
            url: format!("http://127.0.0.1:{port}"),
            log: vllm_home().join(format!("serve-{port}.log")),
            started_ns,
            child,
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", "--", &format!("-{}", self.child.id())])
            .status();
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(20) {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One check at a time (the machine's cores are the engine's).
pub fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// `curl` output (GET, or POST of a JSON body).
pub fn curl(url: &str, post: Option<&str>) -> String {
    let mut c = Command::new("curl");
    c.args(["-s", "--max-time", "120"]);
    if let Some(body) = post {
        c.args(["-H", "content-type: application/json", "-d", body]);
    }
    let out = c.arg(url).output().expect("curl");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The sum over label sets of a Prometheus counter in a `/metrics` text.
pub fn counter(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// (kind, start s, end s) of a timeline's phases that have both ends.
pub fn phase_rows(t: &Value) -> Vec<(String, f64, f64)> {
    t["phases"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|ph| {
            Some((
                ph["kind"].as_str()?.to_string(),
                ph["start_ns"].as_f64()? / 1e9,
                ph["end_ns"].as_f64()? / 1e9,
            ))
        })
        .collect()
}

/// Every `… took X s` / `… took X seconds` duration the engine printed.
pub fn printed_durations(log: &str) -> Vec<(String, f64)> {
    let mut out = Vec::new();
    for line in log.lines() {
        let Some(at) = line.find(" took ") else {
            continue;
        };
        let rest = &line[at + 6..];
        let mut words = rest.split_whitespace();
        let (Some(n), Some(unit)) = (words.next(), words.next()) else {
            continue;
        };
        let unit = unit.trim_end_matches(['.', ',']);
        if let (Ok(v), true) = (n.parse::<f64>(), matches!(unit, "s" | "seconds" | "secs")) {
            let what = line[..at]
                .rsplit("] ")
                .next()
                .unwrap_or("")
                .trim()
                .to_string();
            out.push((what, v));
        }
    }
    out
}

/// Phase kinds drawn inside another (their parent), as the waterfall nests them.
fn parent(kind: &str) -> Option<&'static str> {
    match kind {
        "weight_download" | "weight_streaming" | "weight_load" => Some("model_load"),
        "dynamo_transform" | "inductor_compile" | "compile_cache_load" => Some("torch_compile"),
        "torch_compile"
        | "memory_profiling"
        | "kv_cache_allocation"
        | "cuda_graph_capture"
        | "warmup" => Some("init_engine"),
        _ => None,
    }
}

/// What a timeline (of `startup parse` or `startup run`) gets wrong against the log
/// it was read from: a duration the engine printed that no phase has, rows of the
/// waterfall that overlap. Prints the engine's figure beside ours.
pub fn check_timeline(log: &str, timeline: &Value) -> Vec<String> {
    let mut failures = Vec::new();
    // A printed duration appears as a phase's length, or as a fact a phase keeps
    // (an `…_s` attribute: the model's init time, the profiling run).
    let phases = timeline["phases"].as_array().unwrap();
    let durations: Vec<f64> = phases
        .iter()
        .filter_map(|p| p["duration_s"].as_f64())
        .chain(phases.iter().flat_map(|p| {
            p["attrs"]
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(k, _)| k.ends_with("_s"))
                .filter_map(|(_, v)| v.as_str()?.parse::<f64>().ok())
        }))
        .collect();
    for (what, took) in printed_durations(log) {
        let ours: Vec<f64> = durations
            .iter()
            .copied()
            .filter(|d| (d - took).abs() <= 0.005 + took * 0.001)
            .collect();
        println!(
            "engine printed {what:?} took {took} s; our phases/facts of that duration: {ours:?}"
        );
        if ours.is_empty() {
            failures.push(format!(
                "{what} took {took} s: no phase or fact of that duration"
            ));
        }
    }
    // The rows a waterfall draws: phases without a parent, a parent replaced by its
    // children where it has any; milestones are instants.
    let rows = phase_rows(timeline);
    let kinds: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    let drawn: Vec<&(String, f64, f64)> = rows
        .iter()
        .filter(|r| r.2 > r.1)
        .filter(|r| match parent(&r.0) {
            Some(p) => kinds.contains(&p) || parent(p).is_none(),
            None => !kinds.iter().any(|k| parent(k) == Some(r.0.as_str())),
        })
        .collect();
    for (i, a) in drawn.iter().enumerate() {
        for b in &drawn[i + 1..] {
            // Log timestamps are whole seconds: 1 s is rounding, not overlap.
            let overlap = a.2.min(b.2) - a.1.max(b.1);
            if overlap > 1.0 {
                println!("rows {} and {} overlap by {overlap:.2} s", a.0, b.0);
                failures.push(format!("{} and {} overlap by {overlap:.1} s", a.0, b.0));
            }
        }
    }
    failures
}
