//! The phase model shared by every startup source (engine logs, OTLP spans, NVML
//! inference, the client): a [`Timeline`] of [`Phase`]s on one clock (ns since the
//! Unix epoch, host clock plus the host's offset), with gaps between known phases
//! kept as [`PhaseKind::Unattributed`] phases rather than hidden.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What a phase is. The order of the variants is the order of a replica startup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PhaseKind {
    /// From the first line of the run (driver / `serve.run`) to the first line of the
    /// serving actor (Ray Serve `LLMServer` replica): controller, scheduling, actor spawn.
    ActorStart,
    /// Fixed Ray/vLLM initialisation: imports, engine config, placement group, worker
    /// spawn, NCCL init, up to "Starting to load model".
    FixedInit,
    /// torch.compile cache fetched from remote storage (Ray `CloudDownloader`).
    CompileCacheDownload,
    /// "Model loading took … seconds": the whole model load (download or stream + copy).
    ModelLoad,
    /// Hugging Face download ("Time spent downloading weights"); inside [`Self::ModelLoad`].
    WeightDownload,
    /// Run:ai Model Streamer ("Overall time to stream"); inside [`Self::ModelLoad`].
    WeightStreaming,
    /// Weights to GPU ("Loading weights took"); inside [`Self::ModelLoad`].
    WeightLoad,
    /// "init engine (profile, create kv cache, warmup model)": contains the compile,
    /// memory profiling, KV cache, CUDA graph and warmup phases.
    InitEngine,
    /// "torch.compile takes … in total": Dynamo plus Inductor compile or cache load.
    TorchCompile,
    /// "Dynamo bytecode transform time"; inside [`Self::TorchCompile`].
    DynamoTransform,
    /// "Compiling a graph for … takes"; inside [`Self::TorchCompile`].
    InductorCompile,
    /// "Directly load the compiled graph(s) … from the cache"; inside [`Self::TorchCompile`].
    CompileCacheLoad,
    /// Profile run after compile, up to "Available KV cache memory".
    MemoryProfiling,
    /// KV cache sizing and allocation (vLLM logs no boundary before the warmup that
    /// precedes graph capture; that time is included).
    KvCacheAllocation,
    /// "Graph capturing finished in … secs".
    CudaGraphCapture,
    /// Warmup after capture, up to the end of engine init.
    Warmup,
    /// The API server answers ("Supported tasks", "Starting vLLM server on", …). Instant.
    ApiReady,
    /// The first request reached the engine. Instant.
    FirstRequest,
    /// The first token of the first request. Instant (client or OTLP source).
    FirstToken,
    /// CUDA context created: the process first holds GPU memory (NVML source).
    CudaContext,
    /// Sustained GPU work after startup: first kernels / serving (NVML source).
    GpuBusy,
    /// Time between known phases that no source explains.
    Unattributed,
}

impl PhaseKind {
    /// Every kind, in startup order.
    pub const ALL: [PhaseKind; 22] = [
        PhaseKind::ActorStart,
        PhaseKind::FixedInit,
        PhaseKind::CompileCacheDownload,
        PhaseKind::ModelLoad,
        PhaseKind::WeightDownload,
        PhaseKind::WeightStreaming,
        PhaseKind::WeightLoad,
        PhaseKind::InitEngine,
        PhaseKind::TorchCompile,
        PhaseKind::DynamoTransform,
        PhaseKind::InductorCompile,
        PhaseKind::CompileCacheLoad,
        PhaseKind::MemoryProfiling,
        PhaseKind::KvCacheAllocation,
        PhaseKind::CudaGraphCapture,
        PhaseKind::Warmup,
        PhaseKind::ApiReady,
        PhaseKind::FirstRequest,
        PhaseKind::FirstToken,
        PhaseKind::CudaContext,
        PhaseKind::GpuBusy,
        PhaseKind::Unattributed,
    ];

    /// snake_case name, as serialised.
    pub fn name(self) -> &'static str {
        match self {
            PhaseKind::ActorStart => "actor_start",
            PhaseKind::FixedInit => "fixed_init",
            PhaseKind::CompileCacheDownload => "compile_cache_download",
            PhaseKind::ModelLoad => "model_load",
            PhaseKind::WeightDownload => "weight_download",
            PhaseKind::WeightStreaming => "weight_streaming",
            PhaseKind::WeightLoad => "weight_load",
            PhaseKind::InitEngine => "init_engine",
            PhaseKind::TorchCompile => "torch_compile",
            PhaseKind::DynamoTransform => "dynamo_transform",
            PhaseKind::InductorCompile => "inductor_compile",
            PhaseKind::CompileCacheLoad => "compile_cache_load",
            PhaseKind::MemoryProfiling => "memory_profiling",
            PhaseKind::KvCacheAllocation => "kv_cache_allocation",
            PhaseKind::CudaGraphCapture => "cuda_graph_capture",
            PhaseKind::Warmup => "warmup",
            PhaseKind::ApiReady => "api_ready",
            PhaseKind::FirstRequest => "first_request",
            PhaseKind::FirstToken => "first_token",
            PhaseKind::CudaContext => "cuda_context",
            PhaseKind::GpuBusy => "gpu_busy",
            PhaseKind::Unattributed => "unattributed",
        }
    }

    /// Human label for tables and legends.
    pub fn label(self) -> &'static str {
        match self {
            PhaseKind::ActorStart => "Node/actor start",
            PhaseKind::FixedInit => "Fixed Ray/vLLM init",
            PhaseKind::CompileCacheDownload => "Compile cache download",
            PhaseKind::ModelLoad => "Model loading",
            PhaseKind::WeightDownload => "Weight download",
            PhaseKind::WeightStreaming => "Weight streaming",
            PhaseKind::WeightLoad => "Weight load",
            PhaseKind::InitEngine => "Init engine",
            PhaseKind::TorchCompile => "Torch compile",
            PhaseKind::DynamoTransform => "Dynamo transform",
            PhaseKind::InductorCompile => "Inductor compile",
            PhaseKind::CompileCacheLoad => "Compile cache load",
            PhaseKind::MemoryProfiling => "Memory profiling",
            PhaseKind::KvCacheAllocation => "KV cache allocation",
            PhaseKind::CudaGraphCapture => "CUDA graph capture",
            PhaseKind::Warmup => "Warmup",
            PhaseKind::ApiReady => "API ready",
            PhaseKind::FirstRequest => "First request",
            PhaseKind::FirstToken => "First token",
            PhaseKind::CudaContext => "CUDA context",
            PhaseKind::GpuBusy => "GPU busy (first kernels)",
            PhaseKind::Unattributed => "Unattributed",
        }
    }

    /// The phase that contains this one, if any.
    pub fn parent(self) -> Option<PhaseKind> {
        use PhaseKind::*;
        match self {
            WeightDownload | WeightStreaming | WeightLoad => Some(ModelLoad),
            DynamoTransform | InductorCompile | CompileCacheLoad => Some(TorchCompile),
            TorchCompile | MemoryProfiling | KvCacheAllocation | CudaGraphCapture | Warmup => {
                Some(InitEngine)
            }
            _ => None,
        }
    }

    /// Instants (no duration).
    pub fn is_milestone(self) -> bool {
        matches!(
            self,
            PhaseKind::ApiReady | PhaseKind::FirstRequest | PhaseKind::FirstToken
        )
    }

    /// A phase whose parts are waterfall rows: when a timeline has none of its
    /// parts, the container itself is the row ([`Timeline::is_row`]).
    pub fn is_container(self) -> bool {
        self == PhaseKind::InitEngine
    }

    /// The non-overlapping phases a waterfall or stacked bar is made of: the top
    /// level with [`Self::InitEngine`] replaced by its parts (or, in a timeline
    /// without any of them, by itself: [`Timeline::is_row`]).
    pub fn in_waterfall(self) -> bool {
        use PhaseKind::*;
        matches!(
            self,
            ActorStart
                | FixedInit
                | CompileCacheDownload
                | ModelLoad
                | TorchCompile
                | MemoryProfiling
                | KvCacheAllocation
                | CudaGraphCapture
                | Warmup
                | Unattributed
        )
    }
}

/// Where a phase came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Log,
    Otlp,
    Nvml,
    Client,
    /// Computed from other phases (gaps).
    Derived,
}

/// One phase of a startup.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Phase {
    pub kind: PhaseKind,
    pub start_ns: Option<i64>,
    pub end_ns: Option<i64>,
    /// Duration in seconds: the engine's own figure when it printed one, else end − start.
    pub duration_s: Option<f64>,
    pub source: Source,
    /// 0–1: 1 for a duration the engine printed, less for boundaries inferred from
    /// neighbouring lines.
    pub confidence: f32,
    /// Rank of the worker the figure is taken from (the one that finished last).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rank: Option<String>,
    /// Process the figure is taken from, e.g. `RayWorkerWrapper pid=126782`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<String>,
    /// 1-based line numbers of the evidence in the source (log sources).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lines: Vec<usize>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attrs: BTreeMap<String, String>,
}

impl Phase {
    /// A phase with nothing but its kind, source and confidence.
    pub fn new(kind: PhaseKind, source: Source, confidence: f32) -> Phase {
        Phase {
            kind,
            start_ns: None,
            end_ns: None,
            duration_s: None,
            source,
            confidence,
            rank: None,
            process: None,
            lines: Vec::new(),
            attrs: BTreeMap::new(),
        }
    }

    /// Sets start and end; the duration follows unless one was already given.
    pub fn span(mut self, start_ns: i64, end_ns: i64) -> Phase {
        self.start_ns = Some(start_ns);
        self.end_ns = Some(end_ns);
        if self.duration_s.is_none() {
            self.duration_s = Some(ns_to_s(end_ns.saturating_sub(start_ns)));
        }
        self
    }

    /// Seconds: the stated duration, else end − start.
    pub fn seconds(&self) -> Option<f64> {
        self.duration_s.or(match (self.start_ns, self.end_ns) {
            (Some(s), Some(e)) => Some(ns_to_s(e.saturating_sub(s))),
            _ => None,
        })
    }
}

/// ns → s.
pub fn ns_to_s(ns: i64) -> f64 {
    ns as f64 / 1e9
}

/// s → ns (saturating, NaN → 0).
pub fn s_to_ns(s: f64) -> i64 {
    let v = (s * 1e9).round();
    if v.is_nan() {
        0
    } else {
        v.clamp(i64::MIN as f64, i64::MAX as f64) as i64
    }
}

/// A replica startup: phases on one clock.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timeline {
    /// Host whose clock the timestamps were read on, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Offset added to that host's clock to reach the reference clock (ns).
    #[serde(default)]
    pub clock_offset_ns: i64,
    pub phases: Vec<Phase>,
}

impl Timeline {
    pub fn new(host: Option<String>) -> Timeline {
        Timeline {
            host,
            clock_offset_ns: 0,
            phases: Vec::new(),
        }
    }

    /// The first phase of a kind.
    pub fn get(&self, kind: PhaseKind) -> Option<&Phase> {
        self.phases.iter().find(|p| p.kind == kind)
    }

    /// Seconds of a kind (summed for `Unattributed`).
    pub fn seconds(&self, kind: PhaseKind) -> Option<f64> {
        if kind == PhaseKind::Unattributed {
            let v: Vec<f64> = self.of(kind).filter_map(Phase::seconds).collect();
            return (!v.is_empty()).then(|| v.iter().sum());
        }
        self.get(kind).and_then(Phase::seconds)
    }

    /// All phases of a kind.
    pub fn of(&self, kind: PhaseKind) -> impl Iterator<Item = &Phase> {
        self.phases.iter().filter(move |p| p.kind == kind)
    }

    /// Earliest start (or instant) of any phase.
    pub fn first_ns(&self) -> Option<i64> {
        self.phases
            .iter()
            .filter_map(|p| p.start_ns.or(p.end_ns))
            .min()
    }

    /// Latest end (or instant) of any phase.
    pub fn last_ns(&self) -> Option<i64> {
        self.phases
            .iter()
            .filter_map(|p| p.end_ns.or(p.start_ns))
            .max()
    }

    /// Seconds from the first known instant to `kind` (its end), e.g. to `ApiReady`.
    pub fn until(&self, kind: PhaseKind) -> Option<f64> {
        let end = self.get(kind)?.end_ns?;
        Some(ns_to_s(end.saturating_sub(self.first_ns()?)))
    }

    /// Seconds from the first to the last known instant.
    pub fn total_s(&self) -> Option<f64> {
        Some(ns_to_s(self.last_ns()?.saturating_sub(self.first_ns()?)))
    }

    /// Orders phases by start (instants by their time), then by kind.
    pub fn sort(&mut self) {
        self.phases
            .sort_by_key(|p| (p.start_ns.or(p.end_ns).unwrap_or(i64::MAX), p.kind));
    }

    /// Whether a phase is a waterfall row of this timeline: a kind that is always
    /// one ([`PhaseKind::in_waterfall`]), or a container (`Init engine`) none of
    /// whose parts is present, which then stands for itself. Rows do not overlap.
    pub fn is_row(&self, p: &Phase) -> bool {
        p.kind.in_waterfall() || (p.kind.is_container() && !self.has_parts(p.kind))
    }

    /// Whether some waterfall phase of the timeline lies inside `kind`.
    pub fn has_parts(&self, kind: PhaseKind) -> bool {
        self.phases
            .iter()
            .any(|q| q.kind.in_waterfall() && q.kind.parent() == Some(kind))
    }

    /// The waterfall rows ([`Self::is_row`]), in the timeline's order.
    pub fn rows(&self) -> impl Iterator<Item = &Phase> {
        self.phases.iter().filter(|p| self.is_row(p))
    }

    /// Replaces existing `Unattributed` phases by the gaps (≥ `min_gap_s`) between the
    /// waterfall rows and instants, from the first known instant to the last.
    pub fn fill_gaps(&mut self, min_gap_s: f64) {
        self.phases.retain(|p| p.kind != PhaseKind::Unattributed);
        let mut spans: Vec<(i64, i64)> = self
            .phases
            .iter()
            .filter(|p| self.is_row(p) || p.kind.is_milestone())
            .filter_map(|p| match (p.start_ns, p.end_ns) {
                (Some(s), Some(e)) if e >= s => Some((s, e)),
                (Some(t), None) | (None, Some(t)) if p.kind.is_milestone() => Some((t, t)),
                _ => None,
            })
            .collect();
        spans.sort_unstable();
        let min_gap = s_to_ns(min_gap_s).max(1);
        let mut gaps = Vec::new();
        let mut covered: Option<i64> = None;
        for (s, e) in spans {
            if let Some(c) = covered {
                if s.saturating_sub(c) >= min_gap {
                    gaps.push((c, s));
                }
            }
            covered = Some(covered.map_or(e, |c| c.max(e)));
        }
        for (s, e) in gaps {
            self.phases
                .push(Phase::new(PhaseKind::Unattributed, Source::Derived, 1.0).span(s, e));
        }
        self.sort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(kind: PhaseKind, s: i64, e: i64) -> Phase {
        Phase::new(kind, Source::Log, 1.0).span(s * 1_000_000_000, e * 1_000_000_000)
    }

    /// API ready at `s` seconds.
    fn ready_at(s: i64) -> Phase {
        let mut ready = Phase::new(PhaseKind::ApiReady, Source::Log, 1.0);
        ready.start_ns = Some(s * 1_000_000_000);
        ready.end_ns = ready.start_ns;
        ready
    }

    /// The Unattributed rows as whole seconds.
    fn gaps_s(t: &Timeline) -> Vec<(i64, i64)> {
        t.of(PhaseKind::Unattributed)
            .map(|p| {
                (
                    p.start_ns.unwrap() / 1_000_000_000,
                    p.end_ns.unwrap() / 1_000_000_000,
                )
            })
            .collect()
    }

    #[test]
    fn startup_fill_gaps() {
        let mut t = Timeline::new(Some("node-1".into()));
        t.phases.push(span(PhaseKind::FixedInit, 0, 10));
        t.phases.push(span(PhaseKind::ModelLoad, 12, 20));
        // Children and containers do not close gaps; overlaps do not open them.
        t.phases.push(span(PhaseKind::WeightLoad, 20, 30));
        t.phases.push(span(PhaseKind::InitEngine, 20, 40));
        t.phases.push(span(PhaseKind::TorchCompile, 25, 30));
        t.phases.push(span(PhaseKind::MemoryProfiling, 29, 31));
        t.phases.push(ready_at(45));
        t.fill_gaps(1.0);
        assert_eq!(gaps_s(&t), vec![(10, 12), (20, 25), (31, 45)]);
        assert_eq!(t.seconds(PhaseKind::Unattributed), Some(21.0));
        assert_eq!(t.until(PhaseKind::ApiReady), Some(45.0));
        // Idempotent; a larger threshold drops the short gaps.
        t.fill_gaps(1.0);
        assert_eq!(t.of(PhaseKind::Unattributed).count(), 3);
        t.fill_gaps(5.0);
        assert_eq!(t.of(PhaseKind::Unattributed).count(), 2);
        let json = serde_json::to_string(&t).unwrap();
        assert!(json.contains("\"kind\":\"unattributed\""), "{json}");
        assert_eq!(serde_json::from_str::<Timeline>(&json).unwrap(), t);
    }

    #[test]
    fn startup_init_engine_without_parts_is_a_row() {
        // CPU / eager logs: "init engine … took" and no compile, profile, KV or capture line.
        let mut t = Timeline::new(None);
        t.phases.push(span(PhaseKind::FixedInit, 0, 10));
        t.phases.push(span(PhaseKind::ModelLoad, 10, 12));
        t.phases.push(span(PhaseKind::InitEngine, 12, 25));
        t.phases.push(ready_at(27));
        t.fill_gaps(1.0);
        assert_eq!(gaps_s(&t), vec![(25, 27)]);
        let rows: Vec<PhaseKind> = t.rows().map(|p| p.kind).collect();
        assert!(rows.contains(&PhaseKind::InitEngine), "{rows:?}");
        // With a part present, the container is no row and its uncovered time is a gap.
        t.phases.push(span(PhaseKind::Warmup, 20, 25));
        t.fill_gaps(1.0);
        assert!(!t.rows().any(|p| p.kind == PhaseKind::InitEngine));
        assert_eq!(t.seconds(PhaseKind::Unattributed), Some(10.0));
    }
}
