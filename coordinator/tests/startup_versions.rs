//! The pattern tables beyond the fixtures' vLLM build: a `vllm serve` log in 0.33
//! wording (no Ray; multiprocessing workers `Worker_TP<N>`), the same lines from a
//! dev build (table chosen by the wording), and old wording inside a new log
//! (ignored: not valid for the table).

use servescope_coordinator::analysis::startup::{
    parse_str, LogParse, ParseOptions, PhaseKind as K,
};

const V033: &str = "\
(APIServer pid=100) INFO 03-02 10:00:00 [api_server.py:1] vLLM API server version 0.33.0
(EngineCore_DP0 pid=200) INFO 03-02 10:00:05 [core.py:140] Initializing a V1 LLM engine (v0.33.0) with config: model='Qwen/Qwen3-8B'
(Worker_TP0 pid=300) INFO 03-02 10:00:12 [gpu_model_runner.py:1] Starting to load model Qwen/Qwen3-8B...
(Worker_TP1 pid=301) INFO 03-02 10:00:12 [gpu_model_runner.py:1] Starting to load model Qwen/Qwen3-8B...
(Worker_TP0 pid=300) INFO 03-02 10:00:40 [weight_utils.py:1] Time spent downloading weights for Qwen/Qwen3-8B: 25.500000 seconds
(Worker_TP0 pid=300) INFO 03-02 10:00:45 [default_loader.py:1] Loading weights took 4.50 seconds
(Worker_TP1 pid=301) INFO 03-02 10:00:46 [default_loader.py:1] Loading weights took 5.10 seconds
(Worker_TP0 pid=300) INFO 03-02 10:00:45 [gpu_model_runner.py:1] Model loading took 8.1 GiB memory and 32.500000 seconds
(Worker_TP1 pid=301) INFO 03-02 10:00:46 [gpu_model_runner.py:1] Model loading took 8.1 GiB memory and 33.700000 seconds
(Worker_TP0 pid=300) INFO 03-02 10:00:47 [backends.py:1] Starting torch.compile
(Worker_TP0 pid=300) INFO 03-02 10:00:47 [backends.py:1] Using cache directory: /root/.cache/vllm/torch_compile_cache/abcdef1234/rank_0_0/backbone for vLLM's torch.compile
(Worker_TP0 pid=300) INFO 03-02 10:00:55 [backends.py:1] [backbone] Dynamo bytecode transform time: 8.00 s
(Worker_TP1 pid=301) INFO 03-02 10:00:56 [backends.py:1] [backbone] Dynamo bytecode transform time: 8.40 s
(Worker_TP0 pid=300) INFO 03-02 10:01:10 [backends.py:1] [backbone] Compiling a graph for compile range (1, 8192) takes 14.20 s
(Worker_TP1 pid=301) INFO 03-02 10:01:11 [backends.py:1] [backbone] Compiling a graph for compile range (1, 8192) takes 14.60 s
(Worker_TP0 pid=300) INFO 03-02 10:01:12 [monitor.py:1] torch.compile took 24.10 s in total
(Worker_TP1 pid=301) INFO 03-02 10:01:12 [monitor.py:1] torch.compile took 24.50 s in total
(Worker_TP2 pid=302) INFO 03-02 10:01:12 [monitor.py:1] torch.compile takes 99.00 s in total
(Worker_TP0 pid=300) INFO 03-02 10:01:15 [monitor.py:1] Initial profiling/warmup run took 2.10 s
(Worker_TP0 pid=300) INFO 03-02 10:01:16 [gpu_worker.py:1] Available KV cache memory: 50.25 GiB
(EngineCore_DP0 pid=200) INFO 03-02 10:01:17 [kv_cache_utils.py:1] GPU KV cache size: 400,000 tokens, Maximum concurrency for 8,192 tokens per request: 48.83x
(Worker_TP0 pid=300) INFO 03-02 10:01:30 [gpu_model_runner.py:1] Graph capturing finished in 10 secs, took 0.50 GiB
(EngineCore_DP0 pid=200) INFO 03-02 10:01:33 [core.py:1] init engine (profile, create kv cache, warmup model) took 48.20 s (compilation: 24.50 s)
(APIServer pid=100) INFO 03-02 10:01:36 [launcher.py:1] Starting vLLM server on http://0.0.0.0:8000
(APIServer pid=100) INFO 03-02 10:01:40 [async_llm.py:1] Added request cmpl-1.
";

fn parse(text: &str) -> LogParse {
    parse_str(text, "v033", ParseOptions::new(2026))
}

fn secs(r: &LogParse, k: K) -> f64 {
    r.timeline
        .get(k)
        .and_then(|p| p.seconds())
        .unwrap_or_else(|| panic!("no {k:?}"))
}

#[test]
fn startup_v033_wording() {
    let r = parse(V033);
    assert_eq!(r.table, "vllm-0.20..0.33");
    assert_eq!(r.table_reason, "engine version 0.33.0");
    assert_eq!(r.model.as_deref(), Some("Qwen3-8B"));
    assert!((secs(&r, K::ModelLoad) - 33.7).abs() < 1e-9);
    let load = r.timeline.get(K::ModelLoad).unwrap();
    assert_eq!(load.rank.as_deref(), Some("1"), "Worker_TP1 finished last");
    assert_eq!(load.attrs["min_s"], "32.5");
    assert!((secs(&r, K::WeightDownload) - 25.5).abs() < 1e-9);
    assert!((secs(&r, K::WeightLoad) - 5.1).abs() < 1e-9);
    assert!((secs(&r, K::DynamoTransform) - 8.4).abs() < 1e-9);
    assert!((secs(&r, K::InductorCompile) - 14.6).abs() < 1e-9);
    // "took", not the old "takes" line of another worker (not valid for 0.33).
    assert!((secs(&r, K::TorchCompile) - 24.5).abs() < 1e-9);
    let tc = r.timeline.get(K::TorchCompile).unwrap();
    assert_eq!(tc.attrs["max_s"], "24.5");
    assert!(tc.attrs["anchor"].contains("Starting torch.compile"));
    assert!((secs(&r, K::CudaGraphCapture) - 10.0).abs() < 1e-9);
    let init = r.timeline.get(K::InitEngine).unwrap();
    assert!((init.duration_s.unwrap() - 48.2).abs() < 1e-9);
    assert_eq!(init.attrs["compilation_s"], "24.5");
    let kv = r.timeline.get(K::KvCacheAllocation).unwrap();
    assert_eq!(kv.attrs["kv_tokens"], "400000");
    assert!((kv.seconds().unwrap() - 3.0).abs() < 1e-9);
    assert!((secs(&r, K::Warmup) - 3.0).abs() < 1e-9);
    // No Ray: no actor phase; fixed init runs from the first line.
    assert!(r.timeline.get(K::ActorStart).is_none());
    assert!((secs(&r, K::FixedInit) - 12.0).abs() < 1e-9);
    assert!((r.timeline.until(K::ApiReady).unwrap() - 96.0).abs() < 1e-9);
    assert!((r.timeline.until(K::FirstRequest).unwrap() - 100.0).abs() < 1e-9);
    assert_eq!(r.duplicates_dropped, 0);
}

#[test]
fn startup_dev_build_picks_table_by_wording() {
    // (Without the stray old-wording line, which would make 0.17–0.19, the band
    // with both wordings, the better match.)
    let dev: String = V033
        .replace("(v0.33.0)", "(v0.1.dev20001+gabcdef)")
        .lines()
        .filter(|l| !l.contains("takes 99.00"))
        .map(|l| format!("{l}\n"))
        .collect();
    let r = parse(&dev);
    assert_eq!(r.table, "vllm-0.20..0.33", "{}", r.table_reason);
    assert!(
        r.table_reason.contains("version-specific"),
        "{}",
        r.table_reason
    );
    assert!((secs(&r, K::TorchCompile) - 24.5).abs() < 1e-9);

    // An 0.11 log: the old wording only.
    let old = "\
(EngineCore_DP0 pid=2) INFO 01-05 08:00:00 [core.py:97] Initializing a V1 LLM engine (v0.11.0) with config: model='m'
(VllmWorker rank=0 pid=3) INFO 01-05 08:00:30 [gpu_model_runner.py:1] Model loading took 10.0000 GiB and 20.500000 seconds
(VllmWorker rank=0 pid=3) INFO 01-05 08:00:50 [monitor.py:33] torch.compile takes 15.00 s in total
(VllmWorker rank=0 pid=3) INFO 01-05 08:00:51 [monitor.py:33] torch.compile took 77.00 s in total
";
    let r = parse(old);
    assert_eq!(r.table, "vllm-0.10..0.11");
    assert!((secs(&r, K::ModelLoad) - 20.5).abs() < 1e-9);
    assert_eq!(
        r.timeline.get(K::ModelLoad).unwrap().rank.as_deref(),
        Some("0")
    );
    assert!((secs(&r, K::TorchCompile) - 15.0).abs() < 1e-9);
}
