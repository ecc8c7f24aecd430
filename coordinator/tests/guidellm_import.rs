//! Import of a real GuideLLM 0.8.1 export (tests/fixtures/guidellm/benchmarks.json,
//! produced by `guidellm run` against `servescope sim`; see the README beside it).

use std::path::PathBuf;

use servescope_coordinator::analysis::load::guidellm::{
    import_file, import_str, is_guidellm_file, looks_like_guidellm, GuidellmError, RequestStatus,
};

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/guidellm/benchmarks.json")
}

fn within(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * b.abs().max(1e-12)
}

#[test]
fn imports_the_real_export() {
    let r = import_file(&fixture()).unwrap();
    assert_eq!(r.guidellm_version.as_deref(), Some("0.8.1"));
    assert_eq!(r.schema_version, Some(2));
    assert_eq!(r.model.as_deref(), Some("servescope-sim"));
    assert_eq!(r.target.as_deref(), Some("http://127.0.0.1:8000"));
    assert_eq!(r.benchmarks.len(), 1);
    let b = &r.benchmarks[0];
    assert_eq!(b.strategy.as_deref(), Some("concurrent"));
    assert_eq!(b.streams, Some(2));
    // The run: --constraint kind=max_requests,count=20, no faults.
    assert_eq!(b.totals.successful, 20);
    assert_eq!(b.totals.errored, 0);
    assert_eq!(b.totals.incomplete, 0);
    assert_eq!(b.totals.total, 20);
    assert_eq!(b.requests.len(), 20);
    assert!(b
        .requests
        .iter()
        .all(|q| q.status == RequestStatus::Successful && q.error.is_none()));
    // --data kind=synthetic_text,output_tokens=16: the sim streamed 16 tokens each.
    assert!(b.requests.iter().all(|q| q.output_tokens == Some(16)));
    let ttft = b.ttft_ms.as_ref().unwrap();
    assert_eq!(ttft.count, Some(20));
    // The sim: prefill 5 ms + decode 2 ms per token; TTFT a few ms, ITL ≈ 2 ms.
    let m = ttft.mean.unwrap();
    assert!((5.0..100.0).contains(&m), "TTFT mean {m} ms");
    let itl = b.itl_ms.as_ref().unwrap().mean.unwrap();
    assert!((1.5..5.0).contains(&itl), "ITL mean {itl} ms");
    assert!(b.tpot_ms.as_ref().unwrap().mean.is_some());
    assert!(ttft.percentile(99.0).unwrap() >= ttft.percentile(50.0).unwrap());
    assert_eq!(ttft.percentile(50.0), ttft.median);
    // request_latency is in seconds in the file: here in ms.
    let e2e = b.e2e_ms.as_ref().unwrap().mean.unwrap();
    assert!((m..1000.0).contains(&e2e), "E2E mean {e2e} ms");
    assert!(b.output_throughput.unwrap() > 0.0);
    assert!(b.request_throughput.unwrap() > 0.0);
}

#[test]
fn recomputed_stats_agree_with_the_tool() {
    let r = import_file(&fixture()).unwrap();
    let b = &r.benchmarks[0];
    let stated = b.ttft_ms.as_ref().unwrap().mean.unwrap();
    let ours = b.recomputed_mean_ttft_ms().unwrap();
    assert!(within(ours, stated, 0.01), "TTFT mean {ours} vs {stated}");
    let stated = b.e2e_ms.as_ref().unwrap().mean.unwrap();
    let ours = b.recomputed_mean_e2e_ms().unwrap();
    assert!(within(ours, stated, 0.01), "E2E mean {ours} vs {stated}");
    // Output throughput: all output tokens over the benchmark's duration.
    let tokens: u64 = b.requests.iter().filter_map(|q| q.output_tokens).sum();
    let ours = tokens as f64 / b.duration_s.unwrap();
    let stated = b.output_throughput.unwrap();
    assert!(
        within(ours, stated, 0.01),
        "output tok/s {ours} vs {stated}"
    );
    // Percentiles use a different method than numpy's; both lie within the samples.
    let p99 = b.recomputed_ttft_percentile_ms(99.0).unwrap();
    let t = b.ttft_ms.as_ref().unwrap();
    assert!(p99 >= t.min.unwrap() && p99 <= t.max.unwrap());
}

#[test]
fn sniffs_content() {
    assert!(is_guidellm_file(&fixture()));
    let vllm = serde_json::json!({"completed": 3, "mean_ttft_ms": 1.0});
    assert!(!looks_like_guidellm(&vllm));
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("vllm.json");
    std::fs::write(&p, vllm.to_string()).unwrap();
    assert!(!is_guidellm_file(&p));
    assert!(matches!(
        import_file(&p),
        Err(GuidellmError::NotGuidellm { .. })
    ));
}

#[test]
fn malformed_files_give_clear_errors() {
    let text = std::fs::read_to_string(fixture()).unwrap();

    // Truncated: a JSON error naming the file.
    let e = import_str(&text[..text.len() / 2], "cut.json").unwrap_err();
    assert!(matches!(e, GuidellmError::Json { .. }), "{e}");
    assert!(e.to_string().starts_with("cut.json: not valid JSON"), "{e}");

    // A count of the wrong type: the key path is named.
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["benchmarks"][0]["metrics"]["request_totals"]["successful"] = "twenty".into();
    let e = import_str(&v.to_string(), "bad.json").unwrap_err();
    assert!(
        e.to_string()
            .contains("bad.json: key benchmarks[0].metrics.request_totals.successful"),
        "{e}"
    );

    // A per-request record of the wrong type.
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["benchmarks"][0]["requests"]["successful"][3]["time_to_first_token_ms"] =
        serde_json::json!([1]);
    let e = import_str(&v.to_string(), "bad.json").unwrap_err();
    assert!(
        e.to_string().contains(
            "key benchmarks[0].requests.successful[3].time_to_first_token_ms: expected a number"
        ),
        "{e}"
    );

    // Counts missing entirely.
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["benchmarks"][0]["metrics"]
        .as_object_mut()
        .unwrap()
        .remove("request_totals");
    v["benchmarks"][0]
        .as_object_mut()
        .unwrap()
        .remove("scheduler_metrics");
    let e = import_str(&v.to_string(), "bad.json").unwrap_err();
    assert!(e.to_string().contains("request_totals: missing"), "{e}");

    // Negative count.
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["benchmarks"][0]["metrics"]["request_totals"]["errored"] = serde_json::json!(-1);
    let e = import_str(&v.to_string(), "bad.json").unwrap_err();
    assert!(e.to_string().contains("non-negative integer"), "{e}");

    // Not an object at the top.
    let e = import_str("[1,2]", "arr.json").unwrap_err();
    assert!(matches!(e, GuidellmError::NotGuidellm { .. }), "{e}");

    // A missing file.
    let e = import_file(&PathBuf::from("/nonexistent/guidellm.json")).unwrap_err();
    assert!(matches!(e, GuidellmError::Io { .. }), "{e}");
}
