use super::*;

const MS: u64 = 1_000_000;

/// A success sent at `send` ms, scheduled at `sched` ms, chunks at `(ms, tokens)`.
fn req(sched: u64, send: u64, chunks: &[(u64, u32)], out: u64) -> RequestRecord {
    let chunks: Vec<ChunkArrival> = chunks
        .iter()
        .map(|(t, k)| ChunkArrival {
            at_ns: t * MS,
            tokens: *k,
        })
        .collect();
    let last = chunks.last().map_or(send * MS, |c| c.at_ns);
    RequestRecord {
        scheduled_ns: sched * MS,
        send_ns: send * MS,
        first_byte_ns: chunks.first().map(|c| c.at_ns),
        first_token_ns: None,
        chunks,
        last_byte_ns: Some(last + MS),
        finished_ns: last + 2 * MS,
        input_tokens: 100,
        output_tokens: out,
        error: None,
    }
}

#[test]
fn ttft_tpot_itl_single_request() {
    // first token at 100 ms, then chunks at 110, 130 (2 tokens), 160.
    let r = req(0, 0, &[(100, 1), (110, 1), (130, 2), (160, 1)], 5);
    let l = r.latencies();
    assert_eq!(l.ttft_ms, Some(100.0));
    assert_eq!(l.e2el_ms, 160.0);
    // (160 − 100)/(5 − 1)
    assert_eq!(l.tpot_ms, Some(15.0));
    // vLLM: one gap per chunk, a 2-token chunk still gives one 20-ms gap.
    assert_eq!(l.itl_ms, vec![10.0, 20.0, 30.0]);
    // per-token split: 20 ms over 2 tokens → two 10-ms samples.
    assert_eq!(l.itl_per_token_ms, vec![10.0, 10.0, 10.0, 30.0]);
}

#[test]
fn zero_token_chunk_and_single_token_output() {
    let r = req(0, 0, &[(50, 0), (60, 1), (80, 1)], 2);
    let l = r.latencies();
    assert_eq!(l.ttft_ms, Some(50.0)); // vLLM chat: role-only chunk is the TTFT
    assert_eq!(l.itl_ms, vec![10.0, 20.0]);
    assert_eq!(l.itl_per_token_ms, vec![10.0, 20.0]);
    let one = req(0, 0, &[(40, 1)], 1);
    assert_eq!(one.latencies().tpot_ms, None);
}

#[test]
fn coordinated_omission_counts_from_schedule() {
    // Due at 0, waited 400 ms for a slot, first token 100 ms after send.
    let r = req(0, 400, &[(500, 1), (510, 1)], 2);
    let l = r.latencies();
    assert_eq!(l.ttft_ms, Some(500.0));
    assert_eq!(l.ttft_from_send_ms, Some(100.0));
    assert_eq!(l.e2el_ms, 510.0);
    assert_eq!(l.e2el_from_send_ms, 110.0);
    assert_eq!(l.queue_wait_ms, 400.0);
    assert_eq!(l.tpot_ms, Some(10.0)); // origin does not matter for TPOT
    let agg = aggregate(&[r], &AggregateOptions::default()).unwrap();
    assert_eq!(agg.ttft_ms.mean, 500.0);
    assert_eq!(agg.ttft_from_send_ms.mean, 100.0);
}

#[test]
fn aggregate_throughput_goodput_failures_concurrency() {
    let mut fail = req(0, 0, &[], 0);
    fail.error = Some(ErrorClass::HttpStatus(503));
    fail.finished_ns = 50 * MS;
    let mut cut = req(0, 0, &[(100, 1)], 1);
    cut.error = Some(ErrorClass::StreamCut);
    let records = vec![
        req(0, 0, &[(100, 1), (110, 1), (120, 1)], 3), // ttft 100, tpot 10
        req(0, 0, &[(300, 1), (400, 1)], 2),           // ttft 300, tpot 100
        req(0, 600, &[(700, 1), (710, 1)], 2),         // ttft 700 from schedule
        fail,
        cut,
    ];
    let opts = AggregateOptions {
        slo: Some(parse_slo("ttft:500ms,tpot:50ms").unwrap()),
        gpus: Some(4),
        replicas: Some(2),
        ..AggregateOptions::default()
    };
    let a = aggregate(&records, &opts).unwrap();
    assert_eq!((a.num_requests, a.completed, a.failed), (5, 3, 2));
    assert_eq!(a.failure_rate, 0.4);
    assert_eq!(a.errors_by_class.get("http_503"), Some(&1));
    assert_eq!(a.errors_by_class.get("stream_cut"), Some(&1));
    // start 0, last finish = 710 + 2 ms
    assert!((a.duration_s - 0.712).abs() < 1e-12);
    assert_eq!(a.total_output_tokens, 7);
    assert_eq!(a.total_input_tokens, 300);
    assert!((a.request_throughput - 3.0 / 0.712).abs() < 1e-9);
    assert!((a.total_token_throughput - 307.0 / 0.712).abs() < 1e-9);
    // only the first is good: 2nd fails tpot, 3rd fails ttft (from schedule).
    assert_eq!(a.good_requests, Some(1));
    assert!((a.request_goodput.unwrap() - 1.0 / 0.712).abs() < 1e-9);
    // in flight: #1,#2,#4,#5 from 0; #3 sent at 600 while #2 (→402) is done.
    assert_eq!(a.peak_concurrency, 4);
    let g = a.per_gpu.unwrap();
    assert!((g.output_throughput - a.output_throughput / 4.0).abs() < 1e-12);
    assert_eq!(a.per_replica.unwrap().divisor, 2);
    assert_eq!(a.tpot_ms.count, 3);
    assert_eq!(a.itl_ms.count, 4);
    assert_eq!(a.peak_output_tokens_per_s, 7.0);
}

#[test]
fn peak_concurrency_half_open() {
    assert_eq!(peak_concurrency([(0, 10), (10, 20), (20, 30)]), 1);
    assert_eq!(peak_concurrency([(0, 10), (5, 20), (6, 7), (19, 30)]), 3);
    assert_eq!(peak_concurrency(std::iter::empty()), 0);
}

#[test]
fn pooled_vs_averaged_percentiles() {
    // Shard A: fast; shard B: 2 slow outliers.
    let a: Vec<_> = (0..98).map(|i| req(0, 0, &[(100 + i, 1)], 1)).collect();
    let b: Vec<_> = (0..2).map(|i| req(0, 0, &[(5000 + i, 1)], 1)).collect();
    let opts = AggregateOptions::default();
    let pooled = pool_shards(&[&a, &b], &opts).unwrap();
    let avg = averaged_shards(&[&a, &b], &opts).unwrap();
    assert_eq!(pooled.method, AggregationMethod::Pooled);
    assert_eq!(avg.method, AggregationMethod::AveragedShards);
    assert_eq!(pooled.ttft_ms.count, 100);
    // pooled p99 over 100 samples: between the 99th (5000) and 100th (5001).
    assert!((pooled.ttft_ms.percentile(99.0).unwrap() - 5000.01).abs() < 1e-6);
    // averaged: (p99(A) + p99(B))/2 = (196.03 + 5000.99)/2
    let want = (196.03 + 5000.99) / 2.0;
    assert!((avg.ttft_ms.percentile(99.0).unwrap() - want).abs() < 1e-6);
    assert_eq!(avg.completed, 100);
}

#[test]
fn slo_parsing() {
    let s = parse_slo("ttft:500ms, tpot:50 e2el:2.5s").unwrap();
    assert_eq!(s.ttft_ms, Some(500.0));
    assert_eq!(s.tpot_ms, Some(50.0));
    assert_eq!(s.e2el_ms, Some(2500.0));
    assert_eq!("tpot:250us".parse::<Slo>().unwrap().tpot_ms, Some(0.25));
    assert_eq!(parse_slo(""), Err(MetricsError::EmptySlo));
    assert_eq!(
        parse_slo("ttft500"),
        Err(MetricsError::SloMissingColon("ttft500".into()))
    );
    assert_eq!(
        parse_slo("itl:5ms"),
        Err(MetricsError::SloUnknownMetric("itl".into()))
    );
    assert_eq!(
        parse_slo("ttft:1,ttft:2"),
        Err(MetricsError::SloDuplicate("ttft".into()))
    );
    for bad in ["ttft:abc", "ttft:5min", "ttft:-1ms", "ttft:"] {
        let e = parse_slo(bad).unwrap_err();
        assert!(matches!(e, MetricsError::SloBadValue { .. }), "{bad}: {e}");
        assert!(e.to_string().contains("ttft"), "{e}");
    }
}

#[test]
fn invalid_records_and_divisors() {
    let mut r = req(100, 50, &[(200, 1)], 1);
    assert!(matches!(
        aggregate(&[r.clone()], &AggregateOptions::default()),
        Err(MetricsError::InvalidRecord { index: 0, .. })
    ));
    r.scheduled_ns = 0;
    let opts = AggregateOptions {
        gpus: Some(0),
        ..AggregateOptions::default()
    };
    assert_eq!(
        aggregate(&[r], &opts),
        Err(MetricsError::ZeroDivisor("--gpus"))
    );
    let empty = aggregate(&[], &AggregateOptions::default()).unwrap();
    assert_eq!((empty.completed, empty.request_throughput), (0, 0.0));
}
