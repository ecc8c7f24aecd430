//! Startup phase watcher: finds serving processes on this node
//! (/proc/*/cmdline through [`crate::probe::preflight::is_serving`]), resolves their
//! log files (stdout/stderr when they are regular files, plus configured globs such as
//! Ray's `session_latest/logs/worker-*.out`), tails them from their end and pushes
//! the lines that look like startup milestones as `Event { kind: "startup_log" }`.
//!
//! Bounded everywhere: lines over 64 KiB are dropped, messages are cut at 4 KiB, at
//! most 256 files are followed and each file sends at most 100 events a second.

mod find;
mod tail;

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use servescope_proto::v1::{sample, Event};

use crate::clock::now_ns;
use crate::collect::{spawn_source, CallCosts, EventSource, RunContext, Shutdown};
use crate::ring::Ring;

pub use find::{expand_glob, glob_match, serving_logs, serving_logs_cached, ProcCache};
use tail::Tail;

/// Globs followed when the configuration names none.
pub const DEFAULT_GLOBS: &[&str] = &[
    "/tmp/ray/session_latest/logs/worker-*.out",
    "/tmp/ray/session_latest/logs/worker-*.err",
];
/// Longest line looked at; longer ones are skipped whole.
pub const MAX_LINE: usize = 64 * 1024;
/// Longest message sent.
pub const MAX_MESSAGE: usize = 4096;
/// Most files followed at once.
pub const MAX_FILES: usize = 256;
/// Most events one file sends per second (a busy server logs every request).
const MAX_EVENTS_PER_S: u32 = 100;
/// Most bytes read from one file per poll, so one busy file cannot starve the rest.
const MAX_READ_PER_POLL: usize = 4 << 20;
/// Most /proc entries or directory entries looked at per discovery.
const MAX_DIR_ENTRIES: usize = 65_536;

/// Substrings of the lines the coordinator's startup log parser recognises: the
/// milestones of the brief plus the other anchors of its pattern tables (engine
/// version, load start, cache directory, ranks, readiness wordings).
const MARKS: &[&str] = &[
    "Loading weights took",
    "Model loading took",
    "torch.compile",
    "Dynamo bytecode",
    "Compiling a graph",
    "Directly load the compiled",
    "Graph capturing finished",
    "init engine",
    "KV cache",
    "Available KV cache memory",
    "Starting vLLM",
    "Application startup complete",
    "Time spent downloading",
    "Overall time to stream",
    "Added request",
    "Memory profiling takes",
    // Further anchors of the coordinator's pattern tables.
    "LLM engine (v",
    "Starting to load model",
    "CloudDownloader",
    "Initial profiling/warmup run",
    "Compile and warming up model",
    "Supported tasks:",
    "Started vLLM engine",
    "RunAI Streamer",
    "chat template content format",
    "Error in preprocessing prompt",
    " in world size ",
];

/// Whether a line looks like a startup milestone (cheap substring prefilter).
pub fn is_milestone(line: &str) -> bool {
    MARKS.iter().any(|m| line.contains(m))
}

/// What the watcher follows.
#[derive(Debug, Clone)]
pub struct WatchConfig {
    /// Root of procfs (tests may point elsewhere).
    pub proc_root: PathBuf,
    /// Globs with `*` in their last component only.
    pub globs: Vec<String>,
    /// How often processes and globs are looked for again.
    pub discover_every: Duration,
    /// How often followed files are read.
    pub poll_every: Duration,
}

impl WatchConfig {
    pub fn new(globs: Vec<String>) -> WatchConfig {
        WatchConfig {
            proc_root: PathBuf::from("/proc"),
            globs,
            discover_every: Duration::from_secs(1),
            poll_every: Duration::from_millis(250),
        }
    }
}

/// The follower: discovery plus the set of tails.
pub struct Watcher {
    cfg: WatchConfig,
    tails: BTreeMap<PathBuf, Tail>,
    procs: ProcCache,
    /// Files born after this are read from their start (a process that started
    /// after the agent: its first lines are the startup).
    started: std::time::SystemTime,
}

impl Watcher {
    pub fn new(cfg: WatchConfig) -> Watcher {
        Watcher {
            cfg,
            tails: BTreeMap::new(),
            procs: ProcCache::default(),
            started: std::time::SystemTime::now(),
        }
    }

    /// Whether any file is followed now.
    pub fn following(&self) -> bool {
        !self.tails.is_empty()
    }

    /// Files followed now.
    pub fn files(&self) -> Vec<PathBuf> {
        self.tails.keys().cloned().collect()
    }

    /// Serving processes the last discovery found for the first time (none on the
    /// first discovery: those were running before the watcher).
    pub fn new_serving(&self) -> &[u32] {
        &self.procs.new_serving
    }

    /// Looks for serving processes and glob matches; starts following new files
    /// at their end (at their start when born after the watcher) and forgets files
    /// no longer found.
    pub fn discover(&mut self) {
        let mut found = serving_logs_cached(&self.cfg.proc_root, &mut self.procs);
        for g in &self.cfg.globs {
            found.extend(expand_glob(g));
        }
        for t in self.tails.values_mut() {
            t.seen = false;
        }
        for p in found {
            if let Some(t) = self.tails.get_mut(&p) {
                t.seen = true;
                continue;
            }
            // One file under two names (Ray's session_latest link, a worker's fd/1
            // and the glob) is followed once.
            let Ok(md) = std::fs::metadata(&p) else {
                continue;
            };
            let id = (md.dev(), md.ino());
            if let Some(t) = self.tails.values_mut().find(|t| t.dev_ino == id) {
                t.seen = true;
            } else if self.tails.len() < MAX_FILES {
                let born_since = md.created().is_ok_and(|c| c >= self.started);
                if let Ok(t) = Tail::open(&p, born_since) {
                    self.tails.insert(p, t);
                }
            }
        }
    }

    /// Reads every followed file; calls `emit(path, line)` for each line to send.
    /// Files no longer found are dropped after a last read; a path that vanished
    /// is kept a few seconds, so that a rotated log is read from its start.
    pub fn poll(&mut self, emit: &mut dyn FnMut(&Path, &str)) {
        self.tails.retain(|path, t| {
            let ok = t.poll(path, &mut |l| emit(path, l)).is_ok();
            let grace = t
                .missing_since
                .is_some_and(|m| m.elapsed() < Duration::from_secs(5));
            ok && (t.seen || grace)
        });
    }
}

/// Told of each serving process the discovery finds after its first round.
type OnServing = Box<dyn Fn(u32) + Send>;

/// The watcher as a producer: pushes `startup_log` events into the ring.
pub struct StartupWatch {
    cfg: WatchConfig,
    on_serving: Option<OnServing>,
}

impl StartupWatch {
    pub fn new(cfg: WatchConfig) -> Self {
        StartupWatch {
            cfg,
            on_serving: None,
        }
    }

    /// Calls `f` with each serving process found after the first discovery.
    pub fn on_new_serving(mut self, f: impl Fn(u32) + Send + 'static) -> Self {
        self.on_serving = Some(Box::new(f));
        self
    }
}

impl EventSource for StartupWatch {
    fn name(&self) -> &'static str {
        "startup-watch"
    }

    fn run(self: Box<Self>, ctx: RunContext) {
        let StartupWatch { cfg, on_serving } = *self;
        let discover_every = cfg.discover_every;
        let poll_every = cfg.poll_every;
        let mut w = Watcher::new(cfg);
        let mut last = None::<Instant>;
        loop {
            if last.is_none_or(|l| l.elapsed() >= discover_every) {
                w.discover();
                if let Some(f) = &on_serving {
                    w.new_serving().iter().for_each(|&pid| f(pid));
                }
                last = Some(Instant::now());
            }
            w.poll(&mut |path, line| {
                ctx.ring.push(
                    now_ns(),
                    0,
                    sample::Data::Event(Event {
                        kind: "startup_log".into(),
                        source: path.display().to_string(),
                        gpu_index: None,
                        pci_bus_id: String::new(),
                        xid: None,
                        message: line.to_string(),
                    }),
                );
            });
            // With no file to follow, nothing is due before the next discovery.
            let nap = if w.following() {
                poll_every
            } else {
                discover_every.saturating_sub(last.map_or(Duration::ZERO, |l| l.elapsed()))
            };
            if ctx.shutdown.sleep(nap.max(Duration::from_millis(1))) {
                break;
            }
        }
    }
}

/// Starts the watcher on its own thread, pushing `startup_log` events into `ring`.
pub fn spawn(
    cfg: WatchConfig,
    ring: Arc<Ring>,
    shutdown: Shutdown,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let ctx = RunContext {
        ring,
        costs: CallCosts::default(),
        shutdown,
    };
    spawn_source(Box::new(StartupWatch::new(cfg)), ctx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn milestones() {
        assert!(is_milestone(
            "(EngineCore_DP0 pid=1) INFO 11-06 10:00:01 [default_loader.py:267] Loading weights took 12.5 seconds"
        ));
        assert!(!is_milestone(
            "INFO: 127.0.0.1:5000 - \"GET /health HTTP/1.1\" 200 OK"
        ));
    }
}
