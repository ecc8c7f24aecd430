//! Every startup log in tests/fixtures/vllm-startup-logs (the anyscale
//! replica_initialization terminal output; the test also reads the fuller fixture
//! directory beside the checkout when present) parses into the figures the engine
//! printed, and `compare` rebuilds the per-model tables (mean model load and
//! torch.compile time per model) from them.
//! Hostile variations of these logs: startup_props.rs.

use std::path::Path;

use servescope_coordinator::analysis::startup::compare::{self, Labeled};
use servescope_coordinator::analysis::startup::{
    parse_file, parse_str, LogParse, ParseOptions, PhaseKind as K,
};
use servescope_coordinator::report::startup::page;

mod startup_common;
use startup_common::{dir, parse, FILES};

#[test]
fn repo_copies_match_shared_fixtures() {
    let shared = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/fixtures/vllm-startup-logs"
    ));
    if !shared.is_dir() {
        println!("skipping: ../shared/fixtures/vllm-startup-logs not found");
        return;
    }
    for f in FILES {
        assert_eq!(
            std::fs::read(shared.join(f)).unwrap(),
            std::fs::read(dir().join(f)).unwrap(),
            "{f}"
        );
    }
}

/// (selected seconds, min, max) of a phase.
fn fig(r: &LogParse, k: K) -> (f64, f64, f64) {
    let p = r
        .timeline
        .get(k)
        .unwrap_or_else(|| panic!("{}: no {k:?}", r.name));
    let d = p.duration_s.unwrap();
    let a = |key: &str| p.attrs.get(key).map_or(d, |v| v.parse::<f64>().unwrap());
    (d, a("min_s"), a("max_s"))
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

/// Asserts a phase's range over ranks and that the selected figure is one end of it.
fn range(r: &LogParse, k: K, lo: f64, hi: f64) {
    let (d, min, max) = fig(r, k);
    assert!(
        close(min, lo, 0.006) && close(max, hi, 0.006),
        "{} {k:?}: {min}–{max}, want {lo}–{hi}",
        r.name
    );
    assert!(
        close(d, lo, 0.006) || close(d, hi, 0.006),
        "{} {k:?}: selected {d}",
        r.name
    );
}

fn exact(r: &LogParse, k: K, v: f64) {
    let (d, _, _) = fig(r, k);
    assert!(close(d, v, 0.006), "{} {k:?}: {d}, want {v}", r.name);
}

fn absent(r: &LogParse, k: K) {
    assert!(r.timeline.get(k).is_none(), "{}: unexpected {k:?}", r.name);
}

fn ready(r: &LogParse, s: f64) {
    let v = r.timeline.until(K::ApiReady).unwrap();
    assert!(
        close(v, s, 1e-6),
        "{}: first line → ready {v}, want {s}",
        r.name
    );
}

#[test]
fn startup_figures_match_seed() {
    // The figures each log prints, extracted per file.
    let r = parse("llama70b-base.log");
    exact(&r, K::WeightDownload, 196.47);
    range(&r, K::ModelLoad, 212.73, 213.54);
    range(&r, K::WeightLoad, 15.82, 16.46);
    range(&r, K::DynamoTransform, 12.05, 12.38);
    range(&r, K::InductorCompile, 46.70, 49.91);
    range(&r, K::TorchCompile, 60.79, 61.84);
    exact(&r, K::CudaGraphCapture, 16.0);
    assert_eq!(
        r.timeline.get(K::CudaGraphCapture).unwrap().attrs["gib"],
        "1.05"
    );
    exact(&r, K::InitEngine, 91.82);
    ready(&r, 374.0);
    absent(&r, K::WeightStreaming);
    absent(&r, K::CompileCacheLoad);
    assert_eq!(r.model.as_deref(), Some("Meta-Llama-3-70B"));

    let r = parse("llama70b-s3-runai.log");
    range(&r, K::ModelLoad, 91.88, 92.10);
    range(&r, K::WeightStreaming, 91.06, 91.22);
    assert_eq!(
        r.timeline.get(K::WeightStreaming).unwrap().attrs["size"],
        "131.4 GiB"
    );
    range(&r, K::DynamoTransform, 12.22, 12.70);
    range(&r, K::InductorCompile, 47.35, 49.95);
    range(&r, K::TorchCompile, 60.89, 61.94);
    exact(&r, K::CudaGraphCapture, 16.0);
    exact(&r, K::InitEngine, 91.10);
    ready(&r, 301.0);
    absent(&r, K::WeightDownload);
    assert_eq!(r.model.as_deref(), Some("Meta-Llama-3-70B"));

    let r = parse("llama70B-all.log");
    range(&r, K::ModelLoad, 26.46, 27.51);
    range(&r, K::WeightStreaming, 25.6, 26.72);
    assert_eq!(
        r.timeline.get(K::WeightStreaming).unwrap().attrs["size"],
        "32.9 GiB"
    );
    assert_eq!(
        r.timeline.get(K::WeightStreaming).unwrap().attrs["sharded"],
        "true"
    );
    range(&r, K::DynamoTransform, 11.71, 12.24);
    range(&r, K::CompileCacheLoad, 3.86, 3.94);
    range(&r, K::TorchCompile, 15.65, 16.10);
    exact(&r, K::CudaGraphCapture, 16.0);
    exact(&r, K::InitEngine, 38.11);
    ready(&r, 255.0);
    absent(&r, K::WeightDownload);
    absent(&r, K::InductorCompile);
    assert_eq!(r.model.as_deref(), Some("Meta-Llama-3-70B"));

    let r = parse("qwen235B-base.log");
    exact(&r, K::WeightDownload, 724.11);
    range(&r, K::ModelLoad, 756.96, 758.19);
    range(&r, K::DynamoTransform, 17.03, 18.01);
    range(&r, K::InductorCompile, 92.91, 96.30);
    range(&r, K::TorchCompile, 111.09, 113.04);
    exact(&r, K::CudaGraphCapture, 44.0);
    assert_eq!(
        r.timeline.get(K::CudaGraphCapture).unwrap().attrs["gib"],
        "2.99"
    );
    exact(&r, K::InitEngine, 170.53);
    ready(&r, 1005.0);
    assert_eq!(r.timeline.get(K::FirstRequest).unwrap().confidence, 1.0);

    let r = parse("qwen235B-compile-cache.log");
    exact(&r, K::WeightDownload, 682.15);
    range(&r, K::ModelLoad, 715.11, 716.17);
    range(&r, K::DynamoTransform, 16.74, 17.06);
    range(&r, K::CompileCacheLoad, 5.53, 5.70);
    range(&r, K::TorchCompile, 22.31, 22.71);
    exact(&r, K::CudaGraphCapture, 44.0);
    exact(&r, K::InitEngine, 86.76);
    ready(&r, 971.0);
    absent(&r, K::InductorCompile);
    assert_eq!(r.model.as_deref(), Some("Qwen3-235B-A22B"));
}

#[test]
fn startup_every_log_is_consistent() {
    for f in FILES {
        let r = parse(f);
        assert_eq!(r.table, "vllm-0.10..0.11", "{f}: {}", r.table_reason);
        assert_eq!(r.engine_version.as_deref(), Some("0.1.dev10446+g2dcd12d35"));
        assert!(
            r.duplicates_dropped > 10,
            "{f}: Ray echoes dropped {}",
            r.duplicates_dropped
        );
        assert!(r.warnings.is_empty(), "{f}: {:?}", r.warnings);
        let t = &r.timeline;
        // Waterfall phases do not overlap by more than the log's 1 s resolution and
        // (with the unattributed gaps) cover the first line → first request.
        let mut w: Vec<(i64, i64)> = t
            .phases
            .iter()
            .filter(|p| p.kind.in_waterfall())
            .map(|p| (p.start_ns.unwrap(), p.end_ns.unwrap()))
            .collect();
        w.sort();
        for pair in w.windows(2) {
            assert!(
                pair[1].0 >= pair[0].1 - 1_000_000_000,
                "{f}: overlap {pair:?}"
            );
        }
        let covered: f64 = w.iter().map(|(s, e)| (e - s) as f64 / 1e9).sum();
        let span = t.until(K::FirstRequest).unwrap();
        assert!(
            (covered - span).abs() < 3.0,
            "{f}: waterfall {covered} vs span {span}"
        );
        // Children inside parents (±1 s).
        for p in &t.phases {
            if let Some(parent) = p.kind.parent().and_then(|k| t.get(k)) {
                let (s, e) = (p.start_ns.unwrap(), p.end_ns.unwrap());
                let (ps, pe) = (parent.start_ns.unwrap(), parent.end_ns.unwrap());
                assert!(
                    s >= ps - 2_000_000_000 && e <= pe + 1_000_000_000,
                    "{f}: {:?} outside {:?}",
                    p.kind,
                    parent.kind
                );
            }
        }
        // JSON round trip.
        let json = serde_json::to_string(&r).unwrap();
        let back: LogParse = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
    }
}

#[test]
fn startup_clock_offset_and_year() {
    let r = parse("llama70b-base.log");
    // xet's own JSON line says 2025-10-15T18:54:04Z while the logger says 11:54:04.
    let first = r.timeline.first_ns().unwrap();
    assert_eq!(
        servescope_coordinator::text::utc(first),
        "2025-10-15 18:52:11"
    );
    let utc = parse_file(&dir().join("llama70b-base.log"), ParseOptions::new(2025)).unwrap();
    assert_eq!(
        utc.timeline.first_ns().unwrap() - first,
        -7 * 3600 * 1_000_000_000
    );
    // December → January advances the year.
    let text = "INFO 12-31 23:59:59 [a.py:1] Supported tasks: ['generate']\n(APIServer pid=1) INFO 01-01 00:00:01 [a.py:2] Added request cmpl-1\n";
    let r = parse_str(text, "ny", ParseOptions::new(2025));
    assert!(close(r.timeline.until(K::FirstRequest).unwrap(), 2.0, 1e-9));
}

#[test]
fn startup_compare_reproduces_seed_tables() {
    let items: Vec<Labeled> = [
        ("Baseline", "llama70b-base.log"),
        ("S3/RunAI Streamer", "llama70b-s3-runai.log"),
        ("All Optimizations", "llama70B-all.log"),
        ("Baseline", "qwen235B-base.log"),
        ("Torch.compile Cache", "qwen235B-compile-cache.log"),
    ]
    .into_iter()
    .map(|(l, f)| Labeled {
        label: l.into(),
        parse: parse(f),
    })
    .collect();
    let c = compare::compare(&items);
    assert_eq!(c.rows.len(), 5);
    assert_eq!(c.rows[0].model, "Meta-Llama-3-70B");
    assert_eq!(c.rows[3].model, "Qwen3-235B-A22B");
    // Per-model "Model Load" / "Torch.compile" means (our figure: the rank that finished last).
    let cell = |i: usize, h: &str| c.rows[i].cells[h].mean;
    assert!(close(cell(0, "model load"), 213.541, 0.001));
    assert!(close(cell(1, "model load"), 92.097, 0.001));
    assert!(close(cell(2, "model load"), 27.514, 0.001));
    assert!(close(cell(3, "model load"), 758.192, 0.001));
    assert!(close(cell(4, "model load"), 716.167, 0.001));
    assert!(close(cell(4, "torch.compile"), 22.71, 0.001));
    let table = compare::text_table(&c);
    assert!(
        table.contains("== Meta-Llama-3-70B (seconds)") && table.contains("All Optimizations"),
        "{table}"
    );
    println!("{table}");
    let html = page::render_html(&c);
    assert!(html.contains("<svg") && html.contains("Torch compile") && !html.contains("<script"));

    // Trials: two logs under one label → mean and min–max.
    let trials: Vec<Labeled> = ["llama70b-base.log", "llama70b-s3-runai.log"]
        .into_iter()
        .map(|f| Labeled {
            label: "t".into(),
            parse: parse(f),
        })
        .collect();
    let c = compare::compare(&trials);
    assert_eq!(c.rows.len(), 1);
    let s = c.rows[0].cells["to ready"];
    assert_eq!((s.n, s.min, s.max, s.mean), (2, 301.0, 374.0, 337.5));
    assert!(compare::text_table(&c).contains("337.5 (301.0–374.0)"));
}
