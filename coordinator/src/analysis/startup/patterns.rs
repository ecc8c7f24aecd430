//! Versioned pattern tables for vLLM / Ray Serve LLM startup lines (templates in
//! the syntax of [`super::template`]).
//!
//! Wording changes by vLLM release (the same phase logged in other words from one
//! minor release to the next) are expressed as per-pattern minor-version ranges; a
//! [`Table`] is a band of releases, and a log is parsed with the patterns valid for
//! the band its engine version (or, for dev builds, the band whose specific patterns
//! match most lines) selects.

/// What a matched line says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Event {
    /// Engine start; capture 0 is the version.
    EngineConfig,
    /// "Starting to load model X"; capture 0 is the model.
    LoadStart,
    /// HF download seconds (captures: model, seconds).
    Download,
    /// Weights → GPU seconds.
    WeightsLoaded,
    /// Model load total (captures: GiB, seconds).
    ModelLoaded,
    /// Run:ai streamer total (captures: size, seconds, rate).
    StreamDone,
    /// Run:ai file list (capture: the first file).
    StreamFiles,
    /// Compile cache directory (capture: dir).
    CacheDir,
    /// Compile cache fetched by Ray's CloudDownloader (seconds).
    CacheDownload,
    StartCompile,
    Dynamo,
    Inductor,
    CacheLoad,
    CompileTotal,
    /// Profiling run seconds (0.17+ INFO, or DEBUG "Memory profiling takes").
    ProfileRun,
    /// "Available KV cache memory: X GiB": end of profiling.
    KvAvailable,
    /// "KV cache size: N tokens".
    KvSize,
    /// "Compile and warming up model for size N".
    WarmupSize,
    /// CPU model runner: "Warming up model for the compilation..." (warm-up starts).
    WarmupStart,
    /// CPU model runner: "Warming up done." (warm-up ends).
    WarmupDone,
    /// "Initializing model took N seconds": the model object built (inside the load).
    ModelInit,
    /// CUDA graphs captured (captures: secs, GiB).
    GraphDone,
    /// Init engine total (seconds, optional compile seconds).
    InitEngine,
    ApiReady,
    FirstRequest,
}

/// One template, valid for vLLM minor versions `since..=until`.
#[derive(Debug, Clone, Copy)]
pub struct Pattern {
    pub event: Event,
    pub template: &'static str,
    pub since: u32,
    pub until: u32,
    /// Confidence of the phase boundary this line gives.
    pub confidence: f32,
    /// An [`Event::ApiReady`] line printed once the HTTP server listens (not one
    /// printed while it is still being set up): requests are only taken after it.
    pub server_up: bool,
}

const ANY: u32 = 0;
const LAST: u32 = u32::MAX;

const fn p(event: Event, template: &'static str, since: u32, until: u32) -> Pattern {
    Pattern {
        event,
        template,
        since,
        until,
        confidence: 1.0,
        server_up: false,
    }
}

/// An [`Event::ApiReady`] line that says the HTTP server listens.
const fn up(template: &'static str, since: u32, until: u32) -> Pattern {
    Pattern {
        server_up: true,
        ..p(Event::ApiReady, template, since, until)
    }
}

const fn weak(event: Event, template: &'static str, confidence: f32) -> Pattern {
    Pattern {
        event,
        template,
        since: ANY,
        until: LAST,
        confidence,
        server_up: false,
    }
}

/// Every pattern, with the releases it is valid for.
#[rustfmt::skip]
pub const PATTERNS: &[Pattern] = &[
    p(Event::EngineConfig, "Initializing a V1 LLM engine (v{s}) with config", ANY, LAST),
    p(Event::EngineConfig, "Initializing an LLM engine (v{s}) with config", ANY, LAST),
    p(Event::LoadStart, "Starting to load model {s}", ANY, LAST),
    p(Event::Download, "Time spent downloading weights for {s}: {f} seconds", ANY, LAST),
    p(Event::WeightsLoaded, "Loading weights took {f} seconds", ANY, LAST),
    p(Event::ModelLoaded, "Model loading took {f} GiB and {f} seconds", ANY, 11),
    p(Event::ModelLoaded, "Model loading took {f} GiB memory and {f} seconds", 12, LAST),
    p(Event::StreamDone, "[RunAI Streamer] Overall time to stream {*} of all files: {f}s, {*}", ANY, LAST),
    p(Event::StreamFiles, "[RunAI Streamer] CPU Buffer size: {*} for files: ['{s}'", ANY, LAST),
    p(Event::CacheDir, "Using cache directory: {s} for vLLM's torch.compile", ANY, LAST),
    p(Event::CacheDownload, "CloudDownloader: Files downloaded in {f} seconds", ANY, LAST),
    p(Event::StartCompile, "Starting torch.compile", 17, LAST),
    p(Event::Dynamo, "Dynamo bytecode transform time: {f} s", ANY, LAST),
    p(Event::Inductor, "Compiling a graph for dynamic shape takes {f} s", ANY, 13),
    p(Event::Inductor, "Compiling a graph for general shape takes {f} s", ANY, 11),
    p(Event::Inductor, "Compiling a graph for shape {s} takes {f} s", ANY, 13),
    p(Event::Inductor, "Compiling a graph for compile range {*} takes {f} s", 14, LAST),
    p(Event::CacheLoad, "Directly load the compiled graph(s) for dynamic shape from the cache, took {f} s", ANY, 13),
    p(Event::CacheLoad, "Directly load the compiled graph(s) for shape {s} from the cache, took {f} s", ANY, 13),
    p(Event::CacheLoad, "Directly load the compiled graph(s) for compile range {*} from the cache, took {f} s", 14, LAST),
    p(Event::CompileTotal, "torch.compile takes {f} s in total", ANY, 19),
    p(Event::CompileTotal, "torch.compile took {f} s in total", 17, LAST),
    p(Event::ProfileRun, "Initial profiling/warmup run took {f} s", 17, LAST),
    p(Event::ProfileRun, "Memory profiling takes {f} seconds", ANY, LAST),
    p(Event::KvAvailable, "Available KV cache memory: {f} GiB", ANY, LAST),
    p(Event::KvSize, "KV cache size: {n} tokens", ANY, LAST),
    p(Event::WarmupSize, "Compile and warming up model for size {n}", ANY, LAST),
    p(Event::WarmupStart, "Warming up model for the compilation...", 20, LAST),
    p(Event::WarmupDone, "Warming up done.", 20, LAST),
    p(Event::ModelInit, "Initializing model took {f} seconds", 20, LAST),
    p(Event::GraphDone, "Graph capturing finished in {f} secs, took {f} GiB", ANY, LAST),
    p(Event::InitEngine, "init engine (profile, create kv cache, warmup model) took {f} seconds", ANY, 19),
    p(Event::InitEngine, "init engine (profile, create kv cache, warmup model) took {f} s (compilation: {f} s", 17, LAST),
    p(Event::InitEngine, "init engine (profile, create kv cache, warmup model) took {f} s", 17, LAST),
    p(Event::ApiReady, "Supported tasks:", ANY, LAST),
    up("Starting vLLM API server", ANY, 19),
    up("Starting vLLM server on", 17, LAST),
    up("Application startup complete", ANY, LAST),
    p(Event::ApiReady, "Started vLLM engine.", ANY, LAST),
    p(Event::FirstRequest, "Added request {s}", ANY, LAST),
    weak(Event::FirstRequest, "Detected the chat template content format", 0.5),
    weak(Event::FirstRequest, "Error in preprocessing prompt inputs", 0.5),
];

/// A band of vLLM releases with one wording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Table {
    pub name: &'static str,
    pub from_minor: u32,
    pub to_minor: u32,
}

/// The bands, oldest first (vLLM 0.10 → 0.33).
#[rustfmt::skip]
pub const TABLES: &[Table] = &[
    Table { name: "vllm-0.10..0.11", from_minor: 10, to_minor: 11 },
    Table { name: "vllm-0.12..0.13", from_minor: 12, to_minor: 13 },
    Table { name: "vllm-0.14..0.16", from_minor: 14, to_minor: 16 },
    Table { name: "vllm-0.17..0.19", from_minor: 17, to_minor: 19 },
    Table { name: "vllm-0.20..0.33", from_minor: 20, to_minor: 33 },
];

impl Table {
    /// Whether a pattern is valid for some release of this band.
    pub fn admits(&self, p: &Pattern) -> bool {
        p.since <= self.to_minor && p.until >= self.from_minor
    }

    /// The band of a version string like `0.11.2`, `v0.20.1rc1`; `None` for dev
    /// builds (`0.1.dev10446+g…`) and anything unparseable.
    pub fn for_version(v: &str) -> Option<&'static Table> {
        let v = v.trim_start_matches('v');
        let mut it = v.split('.');
        let major: u32 = it.next()?.parse().ok()?;
        let minor_text: String = it
            .next()?
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        let minor: u32 = minor_text.parse().ok()?;
        if major != 0 || minor < TABLES[0].from_minor {
            return None;
        }
        TABLES
            .iter()
            .find(|t| minor <= t.to_minor)
            .or(TABLES.last())
    }
}

pub use super::template::{find, Cap};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn startup_version_bands() {
        assert_eq!(
            Table::for_version("v0.11.0").map(|t| t.name),
            Some("vllm-0.10..0.11")
        );
        assert_eq!(
            Table::for_version("0.33.0").map(|t| t.name),
            Some("vllm-0.20..0.33")
        );
        assert_eq!(
            Table::for_version("0.40.1").map(|t| t.name),
            Some("vllm-0.20..0.33")
        );
        assert_eq!(
            Table::for_version("0.15.1rc2").map(|t| t.name),
            Some("vllm-0.14..0.16")
        );
        assert!(Table::for_version("0.1.dev10446+g2dcd12d35").is_none());
        assert!(Table::for_version("garbage").is_none());
    }
}
