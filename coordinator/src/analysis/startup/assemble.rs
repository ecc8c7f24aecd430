//! Hits → phases. Per event the process that finished last supplies the phase
//! ([`super::ranks`]). A duration the engine printed wins over a difference of
//! timestamps; boundaries vLLM does not log are inferred from the neighbouring
//! lines with a lower confidence, and what no line explains is left to the
//! unattributed gaps.

use super::cpu_runner::{self, add_fact};
use super::hits::{Found, Hit};
use super::patterns::{Event, PATTERNS};
use super::phase::{s_to_ns, Phase, PhaseKind, Source, Timeline};
use super::ranks::{figures, fmt_s, from_figs};

/// Attribute of the API-ready phase: when the engine's log says the HTTP server
/// listens (ns), where that differs from the first API-ready line.
pub const SERVER_UP_NS: &str = "server_up_ns";

fn instant(kind: PhaseKind, hits: &[Hit]) -> Option<Phase> {
    let h = hits.iter().filter(|h| h.ts_ns.is_some()).min_by_key(|h| {
        (
            h.ts_ns,
            std::cmp::Reverse((PATTERNS[h.pattern].confidence * 100.0) as i32),
        )
    })?;
    let mut p = Phase::new(kind, Source::Log, PATTERNS[h.pattern].confidence);
    p.start_ns = h.ts_ns;
    p.end_ns = h.ts_ns;
    p.lines = vec![h.line];
    p.process = h.proc.as_ref().map(|p| p.describe());
    let evidence = PATTERNS[h.pattern].template.replace("{s}", "…");
    p.attrs.insert("evidence".into(), evidence);
    Some(p)
}

/// A phase between two known instants (only when it has positive length).
fn between(
    kind: PhaseKind,
    start: Option<i64>,
    end: Option<i64>,
    conf: f32,
    note: &str,
) -> Option<Phase> {
    let (s, e) = (start?, end?);
    if e <= s {
        return None;
    }
    let mut p = Phase::new(kind, Source::Log, conf).span(s, e);
    p.attrs.insert("boundaries".into(), note.to_string());
    Some(p)
}

/// The model, from the download / load / streamer lines.
pub(super) fn model_name(hits: &[Hit]) -> Option<String> {
    let text = |e: Event| {
        hits.iter()
            .find(|h| h.event == e)
            .and_then(|h| h.texts.first().cloned())
    };
    let streamed = hits
        .iter()
        .find(|h| h.event == Event::StreamFiles)
        .and_then(|h| h.texts.get(1).cloned())
        .and_then(|f| {
            let mut parts: Vec<&str> = f.trim_end_matches(['\'', ',']).split('/').collect();
            parts.pop();
            parts.pop().map(str::to_string)
        });
    let loaded = text(Event::Download).or_else(|| text(Event::LoadStart));
    let m = match loaded {
        Some(m) if !m.contains("model_streamer") => Some(m),
        _ => streamed,
    }?;
    let m = m.trim_end_matches('.');
    let m = m.rsplit('/').next().unwrap_or(m);
    // A pre-sharded copy (`save_sharded_state.py`) is the same model.
    Some(m.trim_end_matches("-sharded").to_string())
}

pub(super) fn build(p: &Found<'_>) -> Timeline {
    let hits = p.hits;
    let ranks = p.ranks;
    let mut t = Timeline::new(p.opts.host.clone());
    let figs = |e: Event| figures(hits, e);
    let one = |k: PhaseKind, e: Event| from_figs(k, &figs(e), ranks);
    let of = |e: Event| {
        hits.iter()
            .filter(|h| h.event == e)
            .cloned()
            .collect::<Vec<_>>()
    };

    let first = p.first.map(|(ts, _)| ts);
    let actor = p
        .actor
        .map(|(ts, _)| ts)
        .filter(|a| first.is_some_and(|f| *a > f));
    if let (Some(f), Some(a)) = (first, actor) {
        let mut ph = Phase::new(PhaseKind::ActorStart, Source::Log, 0.9).span(f, a);
        ph.lines = [p.first, p.actor]
            .iter()
            .flatten()
            .map(|(_, l)| *l)
            .collect();
        ph.attrs.insert(
            "boundaries".into(),
            "first line → first line of the LLMServer replica".into(),
        );
        t.phases.push(ph);
    }

    let model = one(PhaseKind::ModelLoad, Event::ModelLoaded).map(|mut ph| {
        if let Some(g) = figs(Event::ModelLoaded)
            .first()
            .and_then(|f| f.nums.first().copied())
        {
            ph.attrs.insert("gib".into(), fmt_s(g));
        }
        ph
    });
    let model = model
        .or_else(|| cpu_runner::model_load(hits))
        .map(|mut ph| {
            add_fact(&mut ph, hits, Event::ModelInit, "model_init_s");
            ph
        });
    let load_start = figs(Event::LoadStart).first().and_then(|f| f.end);
    let init_from = actor.or(first);
    let fixed_end = load_start.or(model.as_ref().and_then(|m| m.start_ns));
    let note = if load_start.is_some() {
        "→ \"Starting to load model\""
    } else {
        "→ start of model loading"
    };
    if let Some(mut ph) = between(PhaseKind::FixedInit, init_from, fixed_end, 0.9, note) {
        ph.lines = p.actor.or(p.first).map(|(_, l)| l).into_iter().collect();
        ph.lines.extend(
            figs(Event::LoadStart)
                .first()
                .and_then(|f| f.lines.first().copied()),
        );
        t.phases.push(ph);
    }
    let model_end = model.as_ref().and_then(|m| m.end_ns);
    t.phases.extend(model);
    t.phases
        .extend(one(PhaseKind::WeightDownload, Event::Download));
    t.phases
        .extend(one(PhaseKind::WeightLoad, Event::WeightsLoaded));
    if let Some(mut ph) = one(PhaseKind::WeightStreaming, Event::StreamDone) {
        if let Some(f) = figs(Event::StreamDone).first() {
            if let Some(size) = f.texts.first() {
                ph.attrs.insert("size".into(), size.clone());
            }
            if let Some(rate) = f.texts.get(1) {
                ph.attrs
                    .insert("rate".into(), rate.trim_end_matches(',').to_string());
            }
        }
        if of(Event::StreamFiles)
            .iter()
            .any(|h| h.texts.iter().any(|x| x.contains("model-rank-")))
        {
            ph.attrs.insert("sharded".into(), "true".into());
        }
        t.phases.push(ph);
    }
    t.phases
        .extend(one(PhaseKind::CompileCacheDownload, Event::CacheDownload));

    let init = one(PhaseKind::InitEngine, Event::InitEngine).map(|mut ph| {
        if let Some(c) = figs(Event::InitEngine)
            .first()
            .and_then(|f| f.nums.get(1).copied())
        {
            ph.attrs.insert("compilation_s".into(), fmt_s(c));
        }
        add_fact(&mut ph, hits, Event::ProfileRun, "profile_run_s");
        ph
    });
    let init_end = init.as_ref().and_then(|i| i.end_ns);
    t.phases.extend(init);

    let parts: Vec<Phase> = [
        (PhaseKind::DynamoTransform, Event::Dynamo),
        (PhaseKind::InductorCompile, Event::Inductor),
        (PhaseKind::CompileCacheLoad, Event::CacheLoad),
    ]
    .into_iter()
    .filter_map(|(k, e)| one(k, e))
    .collect();
    let compile = one(PhaseKind::TorchCompile, Event::CompileTotal).map(|mut ph| {
        // The total is printed after the profile run, not when compiling ends: anchor
        // it at "Starting torch.compile", else at the start of its first part.
        let started = figs(Event::StartCompile).first().and_then(|f| f.end);
        let first_part = parts.iter().filter_map(|q| q.start_ns).min();
        let last_part = parts.iter().filter_map(|q| q.end_ns).max();
        if let (Some(s), Some(d)) = (started.or(first_part), ph.duration_s) {
            ph.start_ns = Some(s);
            // Parts may come from another rank that finished later.
            ph.end_ns = Some(
                s.saturating_add(s_to_ns(d))
                    .max(last_part.unwrap_or(i64::MIN)),
            );
            let from = if started.is_some() {
                "\"Starting torch.compile\""
            } else {
                "start of Dynamo / compile"
            };
            ph.attrs
                .insert("anchor".into(), format!("{from} + printed total"));
        }
        ph
    });
    let dir = cache_dir(hits);
    t.phases.extend(compile.clone().map(|mut c| {
        if let Some(d) = dir {
            c.attrs.insert("cache_dir".into(), d);
        }
        c
    }));
    t.phases.extend(parts);

    let kv_avail = figs(Event::KvAvailable).first().and_then(|f| f.end);
    let profile_from = compile.as_ref().and_then(|c| c.end_ns).or(model_end);
    if let Some(mut ph) = between(
        PhaseKind::MemoryProfiling,
        profile_from,
        kv_avail,
        0.7,
        "end of torch.compile (or model load) → \"Available KV cache memory\"",
    ) {
        ph.lines = figs(Event::KvAvailable)
            .first()
            .map(|f| f.lines.clone())
            .unwrap_or_default();
        t.phases.push(ph);
    }
    let graph = one(PhaseKind::CudaGraphCapture, Event::GraphDone).map(|mut ph| {
        if let Some(g) = figs(Event::GraphDone)
            .first()
            .and_then(|f| f.nums.get(1).copied())
        {
            ph.attrs.insert("gib".into(), fmt_s(g));
        }
        ph
    });
    // The engine core states the KV cache size, then allocates it.
    let kv_size = figs(Event::KvSize).first().and_then(|f| f.end);
    let kv_from = kv_size.map(|k| k.max(kv_avail.unwrap_or(k)));
    // The CPU runner warms up (and compiles) before sizing the KV cache, and
    // captures nothing: its KV cache is allocated by the end of init engine.
    let cpu_warmup = cpu_runner::warmup(hits);
    let cpu_kv_end = cpu_warmup
        .as_ref()
        .and_then(|w| w.end_ns)
        .filter(|w| graph.is_none() && kv_from.is_some_and(|k| *w <= k))
        .and(init_end);
    // Otherwise, without a capture line nothing bounds it (eager mode, or the line
    // is lost): that time stays unattributed rather than guessed.
    let (kv_end, kv_note) = match graph.as_ref().and_then(|g| g.start_ns) {
        Some(g) => (
            Some(g),
            "\"KV cache size\" → start of CUDA graph capture (includes pre-capture warmup)",
        ),
        None => (
            cpu_kv_end,
            "\"KV cache size\" → end of init engine (CPU runner: warm-up came first, no capture)",
        ),
    };
    if let Some(mut ph) = between(PhaseKind::KvCacheAllocation, kv_from, kv_end, 0.5, kv_note) {
        if let Some(f) = figs(Event::KvSize).first() {
            if let Some(n) = f.nums.first() {
                ph.attrs.insert("kv_tokens".into(), format!("{n}"));
            }
            ph.lines = f.lines.clone();
        }
        if let Some(g) = figs(Event::KvAvailable)
            .first()
            .and_then(|f| f.nums.first().copied())
        {
            ph.attrs.insert("kv_gib".into(), fmt_s(g));
        }
        t.phases.push(ph);
    }
    // KV size and init end in one second (1 s timestamps): no KV phase, the size
    // stays a fact of init engine.
    if t.get(PhaseKind::KvCacheAllocation).is_none() {
        let tokens = figs(Event::KvSize)
            .first()
            .and_then(|f| f.nums.first().copied());
        if let (Some(n), Some(i)) = (
            tokens,
            t.phases
                .iter_mut()
                .find(|p| p.kind == PhaseKind::InitEngine),
        ) {
            i.attrs.insert("kv_tokens".into(), format!("{n}"));
        }
    }
    let graph_end = graph.as_ref().and_then(|g| g.end_ns);
    t.phases.extend(graph);
    if let (Some(g), Some(i)) = (graph_end, init_end) {
        if i.saturating_sub(g) >= s_to_ns(p.opts.min_gap_s) {
            t.phases.extend(between(
                PhaseKind::Warmup,
                Some(g),
                Some(i),
                0.5,
                "end of CUDA graph capture → end of init engine",
            ));
        }
    }
    if t.get(PhaseKind::Warmup).is_none() {
        t.phases.extend(cpu_warmup);
    }
    let ready = of(Event::ApiReady);
    t.phases
        .extend(instant(PhaseKind::ApiReady, &ready).map(|mut p| {
            // When the HTTP server listens (vLLM prints "Supported tasks" before it).
            let up = ready
                .iter()
                .filter(|h| PATTERNS[h.pattern].server_up && !h.ts_inferred)
                .filter_map(|h| Some((h.line, h.ts_ns?)))
                .min();
            if let Some((line, ns)) = up {
                p.attrs.insert(SERVER_UP_NS.into(), ns.to_string());
                p.attrs.insert("server_up_line".into(), line.to_string());
            }
            p
        }));
    t.phases.extend(instant(
        PhaseKind::FirstRequest,
        &requests_after_server_up(&ready, of(Event::FirstRequest)),
    ));
    t.fill_gaps(p.opts.min_gap_s);
    t
}

/// Request lines printed after the server listens: the first line that says so
/// (else the first API-ready line). A log without either keeps them all. vLLM
/// prints some of these wordings while it is still starting (0.32 detects the chat
/// template format before "Starting vLLM server on"), which is no request.
fn requests_after_server_up(ready: &[Hit], requests: Vec<Hit>) -> Vec<Hit> {
    let up = ready
        .iter()
        .filter(|h| PATTERNS[h.pattern].server_up)
        .map(|h| h.line)
        .min()
        .or_else(|| ready.iter().map(|h| h.line).min());
    match up {
        Some(line) => requests.into_iter().filter(|h| h.line > line).collect(),
        None => requests,
    }
}

fn cache_dir(hits: &[Hit]) -> Option<String> {
    let d = hits
        .iter()
        .find(|h| h.event == Event::CacheDir)?
        .texts
        .first()?;
    // `…/torch_compile_cache/<hash>/rank_0_0/backbone` → up to the hash.
    Some(match d.find("/rank_") {
        Some(i) => d[..i].to_string(),
        None => d.clone(),
    })
}
