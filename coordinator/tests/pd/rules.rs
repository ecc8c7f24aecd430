//! Each diagnosis rule raised by exactly its injected fault; a clean run raises none.

use super::*;

// The client, the proxy and the engines run in this process: on one thread the
// client's work would count as proxy time; with two they overlap as separate
// processes do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_run_raises_no_finding() {
    let mut e = closed(&[1, 8], 16);
    e.probe = true;
    let _alone = QUIET.write().await;
    let (a, _) = run_inner(clean(), e, Vec::new()).await;
    assert!(a.findings.is_empty(), "{:#?}", a.findings);
    assert!(
        a.kv.effective_gbps.unwrap() > 4.0,
        "{:?}",
        a.kv.effective_gbps
    );
}

#[tokio::test]
async fn slow_kv_transport_is_named() {
    let mut c = clean();
    if let Some(pd) = c.engine.pd.as_mut() {
        pd.slow_kv_rate = 1.0;
        pd.slow_kv_factor = 20.0; // 0.25 GB/s
    }
    let (a, _) = only(c, closed(&[4], 8), "kv_slow_transport").await;
    let g = a.kv.effective_gbps.unwrap();
    assert!((g - 0.25).abs() < 0.03, "{g}");
}

#[tokio::test]
async fn failed_kv_transfers_are_named() {
    let mut c = clean();
    if let Some(pd) = c.engine.pd.as_mut() {
        pd.kv_fail_rate = 0.5;
    }
    let (a, truth) = only(c, closed(&[4], 12), "kv_transfer_failures").await;
    let failed = truth.iter().filter(|t| t.kv_failed).count() as f64;
    assert!(failed > 0.0);
    assert_eq!(a.kv.failed, failed);
}

#[tokio::test]
async fn serialised_kv_transfers_are_named() {
    let mut c = clean();
    if let Some(pd) = c.engine.pd.as_mut() {
        pd.kv_links = 1;
        pd.kv_bytes_per_token = 1_500_000; // 30 ms each, one at a time
    }
    only(c, closed(&[1, 8], 16), "kv_serialising").await;
}

#[tokio::test]
async fn prefill_bound_is_named() {
    let mut c = clean();
    if let Some(pd) = c.engine.pd.as_mut() {
        pd.prefill_slots = 1;
    }
    only(c, closed(&[8], 16), "prefill_bound").await;
}

#[tokio::test]
async fn decode_bound_is_named() {
    let mut c = clean();
    c.engine.max_num_seqs = 2;
    let mut e = closed(&[8], 16);
    e.output_tokens = 24;
    only(c, e, "decode_bound").await;
}

#[tokio::test]
async fn proxy_overhead_is_named() {
    let mut c = clean();
    c.proxy_delay = Duration::from_millis(60);
    only(c, closed(&[2], 6), "proxy_overhead").await;
}

#[tokio::test]
async fn stream_batching_is_named() {
    let mut c = clean();
    c.stream_batch = Duration::from_millis(50);
    let mut e = closed(&[2], 4);
    e.output_tokens = 40;
    only(c, e, "stream_batching").await;
}

#[tokio::test]
async fn gibberish_after_transfer_is_named() {
    let mut c = clean();
    c.engine.faults = Faults {
        gibberish_rate: 1.0,
        ..Faults::default()
    };
    let mut e = closed(&[2], 4);
    e.probe = true;
    only(c, e, "gibberish_after_transfer").await;
}

#[tokio::test]
async fn client_saturation_is_named() {
    // The client's runtime thread is blocked 25 ms out of every 40: requests leave late.
    let hog = tokio::spawn(async {
        loop {
            std::thread::sleep(Duration::from_millis(25));
            tokio::time::sleep(Duration::from_millis(15)).await;
        }
    });
    let e = Exp {
        points: vec![Arrival::Open {
            rate: 40.0,
            burstiness: 1.0,
            max_concurrency: None,
        }],
        num_prompts: 20,
        output_tokens: 4,
        probe: false,
        fabric: None,
    };
    let (a, _) = run(clean(), e).await;
    hog.abort();
    assert!(rules(&a).contains("client_saturation"), "{:#?}", a.findings);
}
