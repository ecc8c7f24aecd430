//! The prefix cache over real HTTP: cached tokens skip prefill and are reported per
//! request and on `/metrics`; over replicas, prefix-affinity routing reaches the
//! workload's ideal hit rate and round robin does not.

use std::net::SocketAddr;
use std::sync::Arc;

use servescope_loadgen::workload::{PrefixRepetition, PrefixSpec, TokenCounter};
use servescope_sim::ingress::{start_replicated_with, Routing};
use servescope_sim::{PrefixCacheConfig, SimConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

mod common;

/// GET `path` over HTTP/1.0; the whole response text.
async fn get(addr: SocketAddr, path: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.0\r\nhost: x\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    String::from_utf8_lossy(&buf).to_string()
}

/// The value of the first sample of `name` in Prometheus text.
fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(&format!("{name}{{")))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name} not in {text}"))
}

/// (queried, hit) tokens from a simulator's `/metrics`.
async fn counters(addr: SocketAddr) -> (f64, f64) {
    let m = get(addr, "/metrics").await;
    (
        sample(&m, "vllm:prefix_cache_queries_total"),
        sample(&m, "vllm:prefix_cache_hits_total"),
    )
}

fn body(prompt: &str, stream: bool) -> String {
    serde_json::json!({"model": "m", "prompt": prompt, "max_tokens": 2, "stream": stream,
        "stream_options": {"include_usage": true}})
    .to_string()
}

/// The JSON of the last event carrying `usage` (streamed) or of the whole answer.
fn answer(events: &[(std::time::Instant, String)], text: &str) -> serde_json::Value {
    let json = match events.iter().rev().find(|(_, d)| d.contains("\"usage\":{")) {
        Some((_, d)) => d.clone(),
        None => text.split("\r\n\r\n").nth(1).unwrap_or("").to_string(),
    };
    serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn words(tag: &str, n: usize) -> String {
    (0..n)
        .map(|i| format!("{tag}{i}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[tokio::test]
async fn cached_tokens_skip_prefill_and_are_reported() {
    let cfg = SimConfig {
        prefill_base_s: 0.005,
        prefill_s_per_token: 0.001,
        decode_s_per_token: 0.001,
        prefix_cache: Some(PrefixCacheConfig {
            block_size: 16,
            capacity_blocks: 64,
        }),
        ..Default::default()
    };
    let sim = servescope_sim::start(cfg.clone(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let system = words("sys", 200);
    let (a, b) = (
        format!("{system} {}", words("a", 20)),
        format!("{system} {}", words("b", 20)),
    );
    let (st, ev, _, text) =
        common::post_id(sim.addr, "/v1/completions", "r1", &body(&a, true)).await;
    assert!(st.contains("200"), "{st}");
    let first = answer(&ev, &text);
    assert_eq!(first["usage"]["prompt_tokens_details"]["cached_tokens"], 0);
    assert_eq!(first["metrics"]["cached_tokens"], 0);
    // The second prompt shares 200 tokens: 12 full blocks of 16 come from the cache.
    let (st, ev, _, text) =
        common::post_id(sim.addr, "/v1/completions", "r2", &body(&b, false)).await;
    assert!(st.contains("200"), "{st}");
    let second = answer(&ev, &text);
    assert_eq!(second["usage"]["prompt_tokens"], 220);
    assert_eq!(
        second["usage"]["prompt_tokens_details"]["cached_tokens"],
        192
    );
    assert_eq!(second["metrics"]["cached_tokens"], 192);
    // Prefill counts only the uncached tokens: 5 ms + 28 × 1 ms, against 225 ms cold.
    let ttft = |v: &serde_json::Value| v["metrics"]["time_to_first_token_ms"].as_f64().unwrap();
    assert!(ttft(&first) >= 224.0, "{first}");
    let want = cfg.predicted_ttft_s(28) * 1e3;
    assert!(
        ttft(&second) >= want - 0.5 && ttft(&second) < want + 20.0,
        "{second}"
    );
    assert_eq!(counters(sim.addr).await, (440.0, 192.0));
    // Without a prefix cache the fields and counters are absent.
    let plain = servescope_sim::start(SimConfig::zero_latency(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let (_, ev, _, text) =
        common::post_id(plain.addr, "/v1/completions", "r3", &body(&b, true)).await;
    let v = answer(&ev, &text);
    assert!(v["usage"].get("prompt_tokens_details").is_none(), "{v}");
    assert!(v["metrics"].get("cached_tokens").is_none(), "{v}");
    assert!(!get(plain.addr, "/metrics").await.contains("prefix_cache"));
    plain.shutdown().await;
    sim.shutdown().await;
}

/// Sends the workload's first `n` prompts through `url`'s ingress, 8 at a time, and
/// returns the hit rate the replicas' `/metrics` counters give.
async fn measured_hit_rate(w: &PrefixRepetition, n: usize, routing: Routing) -> f64 {
    let cfg = SimConfig {
        prefix_cache: Some(PrefixCacheConfig {
            block_size: 16,
            capacity_blocks: 1024,
        }),
        ..SimConfig::zero_latency()
    };
    let sim = start_replicated_with(cfg, 4, "127.0.0.1:0".parse().unwrap(), routing)
        .await
        .unwrap();
    let limit = Arc::new(tokio::sync::Semaphore::new(8));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let permit = Arc::clone(&limit).acquire_owned().await.unwrap();
        let (addr, b) = (sim.ingress.addr, body(&w.prompt(i).text, true));
        tasks.spawn(async move {
            let (st, ev, _, text) =
                common::post_id(addr, "/v1/completions", &format!("p{i}"), &b).await;
            drop(permit);
            assert!(st.contains("200"), "{st}");
            answer(&ev, &text)["usage"]["prompt_tokens_details"]["cached_tokens"]
                .as_u64()
                .unwrap()
        });
    }
    let mut per_request = 0;
    while let Some(r) = tasks.join_next().await {
        per_request += r.unwrap();
    }
    let (mut queried, mut hit) = (0.0, 0.0);
    for r in &sim.replicas {
        let (q, h) = counters(r.addr).await;
        queried += q;
        hit += h;
    }
    sim.shutdown().await;
    assert_eq!(hit, per_request as f64, "counters agree with the answers");
    assert_eq!(queried, (n * 288) as f64);
    hit / queried
}

#[tokio::test]
async fn prefix_affinity_reaches_the_ideal_hit_rate_and_round_robin_does_not() {
    // 16 system prompts of 256 tokens, each request its own 32-token question.
    let w = PrefixRepetition::new(
        PrefixSpec {
            num_prefixes: 16,
            prefix_len: 256,
            suffix_len: 32,
            output_tokens: 2,
            ignore_eos: true,
            seed: 11,
            reuse_prefixes: false,
        },
        TokenCounter::words(),
    );
    let n = 160;
    let ideal = w.ideal_prefix_hit_rate(n, 16);
    assert!(
        (ideal - 144.0 * 256.0 / (160.0 * 288.0)).abs() < 1e-9,
        "{ideal}"
    );
    let affinity = measured_hit_rate(&w, n, Routing::PrefixAffinity { blocks: 1 }).await;
    assert!(
        (affinity - ideal).abs() <= 0.05 * ideal,
        "prefix affinity {affinity:.4} vs ideal {ideal:.4}"
    );
    // Round robin warms every prefix on every replica: up to 4 cold requests each.
    let rr = measured_hit_rate(&w, n, Routing::RoundRobin).await;
    println!("hit rate: ideal {ideal:.4}, prefix affinity {affinity:.4}, round robin {rr:.4}");
    assert!(
        rr < ideal * 0.95 && rr < affinity,
        "round robin {rr:.4}, prefix affinity {affinity:.4}, ideal {ideal:.4}"
    );
}
