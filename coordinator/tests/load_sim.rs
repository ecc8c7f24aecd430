//! The load client against the simulator over real HTTP on loopback: measured
//! latencies match the sim's model, waiting counts, faults become failed requests of
//! the right class and the run completes.

use std::sync::Arc;

use servescope_coordinator::orchestration::load::http::HttpClient;
use servescope_coordinator::orchestration::load::metrics::{aggregate, AggregateOptions};
use servescope_coordinator::orchestration::load::request::{execute, Api, Clock, Outcome, Target};
use servescope_coordinator::orchestration::load::schedule::{run, Arrival, Plan};
use servescope_coordinator::orchestration::load::workload::{counting_probe, RandomWorkload};
use servescope_sim::{Faults, SimConfig, SimHandle};

/// A simulator on a free loopback port.
async fn start_sim(cfg: SimConfig) -> SimHandle {
    servescope_sim::start(cfg, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

async fn load(
    url: &str,
    api: Api,
    arrival: Arrival,
    n: usize,
    input: u32,
    output: u32,
) -> Vec<Outcome> {
    let client = HttpClient::new(64);
    let target = Arc::new(Target {
        base_url: url.to_string(),
        api,
        model: "servescope-sim".into(),
        request_id_prefix: "t-".into(),
        sse_limits: Default::default(),
    });
    let w = Arc::new(RandomWorkload {
        input_tokens: input,
        output_tokens: output,
        ignore_eos: true,
        seed: 9,
    });
    let clock = Clock::new();
    let plan = Plan {
        arrival,
        num_requests: Some(n),
        duration: None,
        seed: 3,
    };
    run(&plan, |slot| {
        let (client, target, w) = (client.clone(), Arc::clone(&target), Arc::clone(&w));
        async move { execute(&client, &target, &w.prompt(slot.index), slot, &clock).await }
    })
    .await
    .unwrap()
}

/// `n` completions of 10-token prompts and `output` tokens each from `concurrency`
/// closed-loop clients.
async fn closed_completions(
    sim: &SimHandle,
    concurrency: usize,
    n: usize,
    output: u32,
) -> Vec<Outcome> {
    let arrival = Arrival::Closed { concurrency };
    load(&sim.url(), Api::Completions, arrival, n, 10, output).await
}

/// One request of the counting correctness probe (count to 8).
async fn counting_request(client: &HttpClient, target: &Target) -> Outcome {
    let slot = servescope_coordinator::orchestration::load::schedule::Slot {
        index: 0,
        scheduled: tokio::time::Instant::now(),
        dispatch_lag: Default::default(),
    };
    execute(
        client,
        target,
        &counting_probe(1, 8, 4),
        slot,
        &Clock::new(),
    )
    .await
}

#[tokio::test]
async fn concurrency_one_matches_the_model_within_two_percent() {
    let cfg = SimConfig {
        prefill_base_s: 0.5,
        prefill_s_per_token: 0.0005,
        decode_s_per_token: 0.01,
        ..Default::default()
    };
    let sim = start_sim(cfg.clone()).await;
    for api in [Api::Completions, Api::Chat] {
        // One unmeasured request first (connection set-up, first-use costs), as a
        // benchmark's warm-up would.
        let url = sim.url();
        let run = |n| load(&url, api, Arrival::Closed { concurrency: 1 }, n, 200, 30);
        run(1).await;
        let out = run(5).await;
        assert!(
            out.iter().all(|o| o.record.error.is_none()),
            "{:?}",
            out[0].error_detail
        );
        assert!(out
            .iter()
            .all(|o| o.server_metrics.is_some() && o.usage.is_some()));
        assert_eq!(out[0].request_id, "t-0");
        let recs: Vec<_> = out.iter().map(|o| o.record.clone()).collect();
        let agg = aggregate(&recs, &AggregateOptions::default()).unwrap();
        let want_ttft = cfg.predicted_ttft_s(200) * 1e3; // 600 ms: 2 % is 12 ms, well above timer and scheduling jitter
        println!(
            "{api:?}: ttft {:.3} tpot {:.3} itl mean {:.3} n_itl {} chunks0 {}",
            agg.ttft_ms.mean,
            agg.tpot_ms.mean,
            agg.itl_ms.mean,
            agg.itl_ms.count,
            recs[0].chunks.len()
        );
        assert!(
            (agg.ttft_ms.mean - want_ttft).abs() / want_ttft < 0.02,
            "{api:?} ttft {} vs {want_ttft}",
            agg.ttft_ms.mean
        );
        assert!(
            (agg.tpot_ms.mean - 10.0).abs() / 10.0 < 0.02,
            "{api:?} tpot {}",
            agg.tpot_ms.mean
        );
        assert!(
            (agg.itl_ms.mean - 10.0).abs() / 10.0 < 0.02,
            "{api:?} itl {}",
            agg.itl_ms.mean
        );
        assert_eq!(agg.total_output_tokens, 150);
        assert_eq!(agg.total_input_tokens, 1000);
        assert_eq!(agg.peak_concurrency, 1);
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn queueing_at_higher_concurrency_follows_the_model() {
    // 2 slots, 8 clients: each request holds a slot 50 + 19×5 = 145 ms, so requests
    // wait in rounds of two: the k-th round's TTFT ≈ k × 145 + 50 ms.
    let cfg = SimConfig {
        prefill_base_s: 0.05,
        prefill_s_per_token: 0.0,
        decode_s_per_token: 0.005,
        max_num_seqs: 2,
        ..Default::default()
    };
    let sim = start_sim(cfg).await;
    let out = closed_completions(&sim, 8, 8, 20).await;
    let mut ttfts: Vec<f64> = out
        .iter()
        .map(|o| (o.record.first_token_ns.unwrap() - o.record.scheduled_ns) as f64 / 1e6)
        .collect();
    ttfts.sort_by(f64::total_cmp);
    for (i, t) in ttfts.iter().enumerate() {
        let want = (i / 2) as f64 * 145.0 + 50.0;
        assert!(
            (t - want).abs() < 0.05 * want + 5.0,
            "request {i}: ttft {t} vs {want} ({ttfts:?})"
        );
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn faults_become_failed_requests_of_the_right_class() {
    let faults = Faults {
        error_rate: 0.2,
        truncate_rate: 0.2,
        ..Default::default()
    };
    let sim = start_sim(SimConfig {
        faults,
        seed: 5,
        ..SimConfig::zero_latency()
    })
    .await;
    let out = closed_completions(&sim, 8, 200, 10).await;
    assert_eq!(out.len(), 200, "the run completes");
    let recs: Vec<_> = out.iter().map(|o| o.record.clone()).collect();
    let agg = aggregate(&recs, &AggregateOptions::default()).unwrap();
    let e500 = agg.errors_by_class.get("http_500").copied().unwrap_or(0);
    let cut = agg.errors_by_class.get("stream_cut").copied().unwrap_or(0);
    assert!((20..=60).contains(&e500), "{:?}", agg.errors_by_class);
    assert!((15..=55).contains(&cut), "{:?}", agg.errors_by_class);
    assert_eq!(agg.failed, e500 + cut);
    assert!(agg.completed >= 100);
    sim.shutdown().await;

    // Gibberish fails the correctness probe.
    let sim = start_sim(SimConfig {
        faults: Faults {
            gibberish_rate: 1.0,
            ..Default::default()
        },
        ..SimConfig::zero_latency()
    })
    .await;
    let client = HttpClient::new(1);
    let target = Target {
        base_url: sim.url(),
        api: Api::Completions,
        model: "m".into(),
        request_id_prefix: "probe-".into(),
        sse_limits: Default::default(),
    };
    let o = counting_request(&client, &target).await;
    assert_eq!(
        o.record.error.as_ref().map(|e| e.key()),
        Some("wrong_output".into()),
        "{:?}",
        o.error_detail
    );
    sim.shutdown().await;
    let sim = start_sim(SimConfig::zero_latency()).await;
    let target = Target {
        base_url: sim.url(),
        ..target
    };
    let o = counting_request(&client, &target).await;
    assert!(o.record.error.is_none(), "{:?}", o.error_detail);
    sim.shutdown().await;
}
