use super::*;
use servescope_loadgen::metrics::{aggregate, AggregateOptions, ChunkArrival, RequestRecord};

const PART: &str = r#"{"date": "20251102-122408", "endpoint_type": "vllm", "backend": "vllm",
        "label": null, "model_id": "m", "tokenizer_id": "m", "num_prompts": 4,
        "request_rate": "inf", "burstiness": 1.0, "max_concurrency": 2, "duration": 2.0,
        "completed": 3, "total_input_tokens": 30, "total_output_tokens": 9,
        "request_throughput": 1.5, "request_goodput": null, "output_throughput": 4.5,
        "total_token_throughput": 19.5, "p99_ttft_ms": 1.0, "custom_meta": {"a": [1, 2]},
        "input_lens": [10, 10, 10, 10], "output_lens": [3, 3, 0, 3],
        "ttfts": [0.1, 0.2, 0.0, 0.3], "itls": [[0.01, 0.02], [0.01, 0.01], [], [0.05, 0.05]],
        "generated_texts": ["a", "b", "", "c"], "errors": ["", "", "timeout", ""]}"#;

#[test]
fn round_trip_keeps_nulls_absent_keys_and_extras() {
    let r = parse_str(PART, "part.json").unwrap();
    assert_eq!(r.label, Field::Null);
    assert_eq!(r.failed, Field::Absent);
    assert_eq!(
        r.request_rate.get().map(RequestRate::as_f64),
        Some(f64::INFINITY)
    );
    let out = to_json_string(&r).unwrap();
    let a: Value = serde_json::from_str(PART).unwrap();
    let b: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(a, b);
    assert!(!out.contains("\"failed\""));
}

#[test]
fn failures_and_provenance() {
    let r = parse_str(PART, "part.json").unwrap();
    let f = r.failures();
    assert_eq!(f.failed, Some(1));
    assert_eq!(f.failure_rate, Some(0.25));
    assert_eq!(f.error_entries, Some(1));
    assert!(f.silent);
    assert_eq!(r.provenance(None), Provenance::PerClient);
    let p = r.provenance(Some(Path::new("x/all-parts/conc4.json")));
    assert!(matches!(p, Provenance::AveragedAggregate { .. }));
    let mut agg = r.clone();
    agg.request_throughput = Field::Value(1.6);
    assert!(matches!(
        agg.provenance(None),
        Provenance::AveragedAggregate { .. }
    ));
}

#[test]
fn bad_keys_are_named() {
    let e = parse_str(r#"{"completed": "many"}"#, "f.json").unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("f.json") && msg.contains("\"completed\""),
        "{msg}"
    );
    let e = parse_str(r#"{"itls": [[0.1, "x"]]}"#, "g.json").unwrap_err();
    assert!(e.to_string().contains("\"itls\""), "{e}");
    assert!(matches!(
        parse_str("[1]", "h.json"),
        Err(VllmJsonError::NotAnObject { .. })
    ));
    assert!(matches!(
        parse_str("{", "i.json"),
        Err(VllmJsonError::Parse { .. })
    ));
    assert!(matches!(
        parse_str("{} {}", "j.json"),
        Err(VllmJsonError::NotOneResult { count: 2, .. })
    ));
}

#[test]
fn samples_and_pooling() {
    let r = parse_str(PART, "p1.json").unwrap();
    let s = request_samples(&r, "p1.json").unwrap();
    assert_eq!(s.completed, 3);
    assert_eq!(s.ttft_s, vec![0.1, 0.2, 0.3]);
    assert_eq!(s.itl_s.len(), 6);
    assert!((s.tpot_s[0] - 0.015).abs() < 1e-12);
    assert!((s.e2el_s[2] - 0.4).abs() < 1e-12);
    let mut r2 = r.clone();
    r2.ttfts = Field::Value(vec![1.0, 2.0, 0.0, 3.0]);
    r2.duration = Field::Value(3.0);
    let pooled = pool_parts(&[("p1", &r), ("p2", &r2)], &[50.0, 99.0]).unwrap();
    assert_eq!(pooled.completed.value(), Some(6));
    assert_eq!(pooled.failed.value(), Some(2));
    assert_eq!(pooled.duration.value(), Some(3.0));
    // np.percentile([.1,.2,.3,1,2,3], 99)*1000 = 2950 (up to rounding)
    let p99 = pooled.percentile_ms(Metric::Ttft, 99.0).unwrap();
    assert!((p99 - 2950.0).abs() < 1e-9, "{p99}");
    let cmp = compare_parts(&[("p1", &r), ("p2", &r2)], None, 99.0).unwrap();
    assert!(cmp.pooled_unavailable.is_none());
    let mut no_arrays = r.clone();
    no_arrays.ttfts = Field::Absent;
    let cmp = compare_parts(&[("p1", &r), ("p3", &no_arrays)], None, 99.0).unwrap();
    assert!(cmp.pooled_unavailable.unwrap().contains("p3"));
}

#[test]
fn export_own_aggregate() {
    let ms = 1_000_000;
    let rec = RequestRecord {
        scheduled_ns: 0,
        send_ns: 0,
        first_byte_ns: Some(90 * ms),
        first_token_ns: None,
        chunks: vec![
            ChunkArrival {
                at_ns: 100 * ms,
                tokens: 1,
            },
            ChunkArrival {
                at_ns: 120 * ms,
                tokens: 1,
            },
        ],
        last_byte_ns: Some(121 * ms),
        finished_ns: 125 * ms,
        input_tokens: 10,
        output_tokens: 2,
        error: None,
    };
    let opts = AggregateOptions {
        percentiles: vec![99.0, 99.9],
        gpus: Some(8),
        ..AggregateOptions::default()
    };
    let agg = aggregate(&[rec], &opts).unwrap();
    let meta = ExportMeta {
        date: "20261123-130000".into(),
        backend: "openai".into(),
        label: None,
        model_id: "m".into(),
        tokenizer_id: "m".into(),
        request_rate: None,
        burstiness: 1.0,
        max_concurrency: Some(1),
    };
    let r = VllmBenchResult::from_aggregate(&agg, &meta);
    let v: Value = serde_json::from_str(&to_json_string(&r).unwrap()).unwrap();
    assert_eq!(v["mean_ttft_ms"], 100.0);
    assert_eq!(v["p99_tpot_ms"], 20.0);
    assert_eq!(v["p99.9_itl_ms"], 20.0);
    assert_eq!(v["request_rate"], "inf");
    assert_eq!(v["label"], Value::Null);
    assert_eq!(v["request_goodput"], Value::Null);
    assert_eq!(v["completed"], 1);
    assert_eq!(v["failed"], 0);
    assert_eq!(v["servescope_gpus"], 8);
    let back = parse_str(&to_json_string(&r).unwrap(), "export").unwrap();
    assert_eq!(back, r);
    assert_eq!(back.provenance(None), Provenance::PerClient);
}
