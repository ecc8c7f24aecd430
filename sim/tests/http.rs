//! The simulator over real HTTP on loopback (HTTP/1.0 so the body arrives raw and
//! each SSE event can be timestamped as it arrives).

use std::time::{Duration, Instant};

use servescope_sim::{Faults, SimConfig};

mod common;

/// Sends a POST and returns (status line, events with arrival times, send instant).
async fn post(
    addr: std::net::SocketAddr,
    path: &str,
    body: &str,
) -> (String, Vec<(Instant, String)>, Instant, String) {
    common::post_id(addr, path, "t-1", body).await
}

#[tokio::test]
async fn streams_with_the_configured_latency_at_concurrency_one() {
    let cfg = SimConfig {
        prefill_base_s: 0.2,
        prefill_s_per_token: 0.001,
        decode_s_per_token: 0.02,
        ..Default::default()
    };
    let sim = servescope_sim::start(cfg.clone(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let prompt = vec!["w"; 100].join(" ");
    let body = format!(
        r#"{{"model":"m","prompt":"{prompt}","max_tokens":20,"stream":true,"stream_options":{{"include_usage":true}}}}"#
    );
    let (status, events, sent, _) = post(sim.addr, "/v1/completions", &body).await;
    assert!(status.contains("200"), "{status}");
    let tokens: Vec<&(Instant, String)> = events
        .iter()
        .filter(|(_, d)| d.contains("\"text\":\" "))
        .collect();
    assert_eq!(tokens.len(), 20);
    let ttft = (tokens[0].0 - sent).as_secs_f64();
    let want = cfg.predicted_ttft_s(100); // 0.3 s
    assert!((ttft - want).abs() / want < 0.02, "ttft {ttft} vs {want}");
    let e2e = (tokens[19].0 - sent).as_secs_f64();
    let tpot = (e2e - ttft) / 19.0;
    assert!((tpot - 0.02).abs() / 0.02 < 0.02, "tpot {tpot}");
    let usage = events
        .iter()
        .find(|(_, d)| d.contains("\"usage\":{"))
        .expect("usage chunk");
    let v: serde_json::Value = serde_json::from_str(&usage.1).unwrap();
    assert_eq!(v["usage"]["prompt_tokens"], 100);
    assert_eq!(v["usage"]["completion_tokens"], 20);
    assert!(v["metrics"]["time_to_first_token_ms"].as_f64().unwrap() >= 299.0);
    // The sim's stamps at its HTTP edge: the request came in after it was sent, the
    // first token went out after the TTFT the model gives and before it arrived.
    let wire = &v["metrics"]["servescope_wire"];
    let into = wire["request_in_unix_ns"].as_u64().unwrap();
    let out = wire["first_token_out_unix_ns"].as_u64().unwrap();
    let now_ns = servescope_proto::now_ns();
    let ago = |t: Instant| now_ns - t.elapsed().as_nanos() as u64;
    let slack = 2_000_000; // two clocks read at different moments
    assert!(into + slack >= ago(sent) && out <= ago(tokens[0].0) + slack);
    assert!(
        (out - into) as f64 / 1e9 >= want - 0.001,
        "{} ns",
        out - into
    );
    assert_eq!(v["id"], "cmpl-t-1");
    assert_eq!(events.last().unwrap().1, "[DONE]");
    let m = sim.engine.metrics.render(0, 0);
    assert!(
        m.contains("vllm:generation_tokens_total{engine=\"0\",model_name=\"servescope-sim\"} 20.0"),
        "{m}"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn queueing_beyond_max_num_seqs() {
    let cfg = SimConfig {
        prefill_base_s: 0.1,
        prefill_s_per_token: 0.0,
        decode_s_per_token: 0.01,
        max_num_seqs: 1,
        ..Default::default()
    };
    let sim = servescope_sim::start(cfg, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let body = r#"{"prompt":"a","max_tokens":10,"stream":true}"#;
    let (a, b) = tokio::join!(
        post(sim.addr, "/v1/completions", body),
        post(sim.addr, "/v1/completions", body)
    );
    let ttft =
        |r: &(String, Vec<(Instant, String)>, Instant, String)| (r.1[0].0 - r.2).as_secs_f64();
    let (t1, t2) = (ttft(&a).min(ttft(&b)), ttft(&a).max(ttft(&b)));
    // The second waits for the first to finish: 0.1 + 9 × 0.01 = 0.19 s, then its own 0.1 s.
    assert!((t1 - 0.1).abs() < 0.01, "{t1}");
    assert!((t2 - 0.29).abs() < 0.02, "{t2}");
    sim.shutdown().await;
}

#[tokio::test]
async fn chat_counting_probe_and_faults() {
    let sim = servescope_sim::start(SimConfig::zero_latency(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let body = r#"{"messages":[{"role":"user","content":"Continue: 1 2 3 4"}],"max_tokens":3,"stream":true}"#;
    let (_, ev, _, _) = post(sim.addr, "/v1/chat/completions", body).await;
    let text: String = ev
        .iter()
        .filter_map(|(_, d)| serde_json::from_str::<serde_json::Value>(d).ok())
        .filter_map(|v| {
            v["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_string)
        })
        .collect();
    assert_eq!(text, " 5 6 7");
    let (status, _, _, body) = post(sim.addr, "/v1/completions", "{nope").await;
    assert!(
        status.contains("400") && body.contains("not valid JSON"),
        "{status} {body}"
    );
    sim.shutdown().await;

    let faulty = SimConfig {
        faults: Faults {
            error_rate: 1.0,
            ..Default::default()
        },
        ..SimConfig::zero_latency()
    };
    let sim = servescope_sim::start(faulty, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let (status, _, _, _) = post(
        sim.addr,
        "/v1/completions",
        r#"{"prompt":"a","stream":true}"#,
    )
    .await;
    assert!(status.contains("500"), "{status}");
    sim.shutdown().await;

    let cut = SimConfig {
        faults: Faults {
            truncate_rate: 1.0,
            ..Default::default()
        },
        ..SimConfig::zero_latency()
    };
    let sim = servescope_sim::start(cut, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let (status, ev, _, _) = post(
        sim.addr,
        "/v1/completions",
        r#"{"prompt":"a","max_tokens":10,"stream":true}"#,
    )
    .await;
    assert!(status.contains("200"));
    assert!(
        ev.len() < 10 && !ev.iter().any(|(_, d)| d == "[DONE]"),
        "{ev:?}"
    );
    sim.shutdown().await;

    let gib = SimConfig {
        faults: Faults {
            gibberish_rate: 1.0,
            ..Default::default()
        },
        ..SimConfig::zero_latency()
    };
    let sim = servescope_sim::start(gib, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let (_, ev, _, _) = post(
        sim.addr,
        "/v1/completions",
        r#"{"prompt":"1 2 3","max_tokens":3,"stream":true}"#,
    )
    .await;
    assert!(
        !ev.iter().any(|(_, d)| d.contains("\" 4\"")),
        "gibberish instead of the count"
    );
    let _ = Duration::ZERO;
    sim.shutdown().await;
}

#[tokio::test]
async fn pd_mode_transfers_kv_and_reports_ground_truth() {
    let pd = servescope_sim::config::PdConfig {
        prefill_slots: 4,
        kv_bytes_per_token: 1_000_000,
        kv_gbps: 1.0, // 100 tokens → 0.1 s
        kv_links: 1,
        handshake_s: 0.05,
        slow_kv_rate: 0.0,
        slow_kv_factor: 100.0,
        ..Default::default()
    };
    let cfg = SimConfig {
        prefill_base_s: 0.1,
        prefill_s_per_token: 0.0,
        decode_s_per_token: 0.01,
        pd: Some(pd),
        ..Default::default()
    };
    let sim = servescope_sim::start(cfg, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let prompt = vec!["w"; 100].join(" ");
    let body = format!(
        r#"{{"prompt":"{prompt}","max_tokens":5,"stream":true,"stream_options":{{"include_usage":true}}}}"#
    );
    for first in [true, false] {
        let (_, ev, sent, _) = post(sim.addr, "/v1/completions", &body).await;
        let ttft = (ev[0].0 - sent).as_secs_f64();
        // prefill 0.1 + (handshake 0.05 the first time) + transfer 0.1 + one step 0.01
        let want = 0.1 + if first { 0.05 } else { 0.0 } + 0.1 + 0.01;
        assert!(
            (ttft - want).abs() < 0.01,
            "first={first}: ttft {ttft} vs {want}"
        );
        let usage = ev
            .iter()
            .find(|(_, d)| d.contains("servescope_ground_truth"))
            .expect("ground truth");
        let v: serde_json::Value = serde_json::from_str(&usage.1).unwrap();
        let gt = &v["metrics"]["servescope_ground_truth"];
        assert_eq!(gt["kv_bytes"], 100_000_000u64);
        assert!((gt["kv_transfer_ms"].as_f64().unwrap() - 100.0).abs() < 5.0);
        // D's queue time contains the transfer, as vLLM's does on a NIXL decode instance.
        assert!(v["metrics"]["queue_time_ms"].as_f64().unwrap() >= 99.0);
    }
    let m = sim.engine.metrics.render(0, 0);
    assert!(
        m.contains(
            "vllm:nixl_xfer_time_seconds_count{engine=\"0\",model_name=\"servescope-sim\"} 2.0"
        ),
        "{m}"
    );
    assert!(m.contains("vllm:nixl_bytes_transferred_bucket"));
    sim.shutdown().await;
}
