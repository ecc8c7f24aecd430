//! The simulated P/D deployment over real HTTP: the proxy's two legs, the stages'
//! latencies, ground truth, each instance's metrics and the injected faults.

use std::time::{Duration, Instant};

use servescope_sim::config::PdConfig;
use servescope_sim::disagg::{start_cluster, ClusterConfig, ClusterHandle};
use servescope_sim::SimConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

mod common;

/// POSTs through the proxy; returns (status line, data events with arrival times, send time).
async fn post(
    addr: std::net::SocketAddr,
    rid: &str,
    body: &str,
) -> (String, Vec<(Instant, String)>, Instant) {
    let (status, ev, sent, _) = common::post_id(addr, "/v1/completions", rid, body).await;
    (status, ev, sent)
}

async fn metrics(url: &str) -> String {
    let addr: std::net::SocketAddr = url.trim_start_matches("http://").parse().unwrap();
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /metrics HTTP/1.0\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

fn cluster_cfg(fail: f64, delay_ms: u64, batch_ms: u64) -> ClusterConfig {
    ClusterConfig {
        engine: SimConfig {
            prefill_base_s: 0.05,
            prefill_s_per_token: 0.0,
            decode_s_per_token: 0.01,
            pd: Some(PdConfig {
                prefill_slots: 4,
                kv_bytes_per_token: 1_000_000,
                kv_gbps: 1.0, // 100 tokens: 0.1 s
                kv_links: 4,
                handshake_s: 0.05,
                kv_fail_rate: fail,
                kv_lease_s: 0.3,
                ..Default::default()
            }),
            ..Default::default()
        },
        prefills: 1,
        decodes: 1,
        proxy_delay: Duration::from_millis(delay_ms),
        stream_batch: Duration::from_millis(batch_ms),
        otlp_endpoint: None,
    }
}

fn body(tokens: u32) -> String {
    let prompt = vec!["w"; 100].join(" ");
    format!(
        r#"{{"prompt":"{prompt}","max_tokens":{tokens},"stream":true,"stream_options":{{"include_usage":true}}}}"#
    )
}

async fn start(c: ClusterConfig) -> ClusterHandle {
    start_cluster(c, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

#[tokio::test]
async fn proxy_prefill_transfer_decode_with_ground_truth() {
    let h = start(cluster_cfg(0.0, 20, 0)).await;
    for (i, first) in [(0, true), (1, false)] {
        let rid = format!("r-{i}");
        let (status, ev, sent) = post(h.proxy.addr, &rid, &body(5)).await;
        assert!(status.contains("200"), "{status}");
        let ttft = (ev[0].0 - sent).as_secs_f64();
        // proxy 0.02 + prefill 0.05 + (handshake 0.05) + transfer 0.1 + one step 0.01
        let want = 0.02 + 0.05 + if first { 0.05 } else { 0.0 } + 0.1 + 0.01;
        let t = h.truth.get(&rid).expect("truth");
        // The client's TTFT is the truth's timeline end to end: its HTTP hops (client →
        // proxy, proxy → P after the delay, P → D handoff, D's first token → client) plus
        // the modelled stages, which timers never cut short. A debug build's hops and
        // late timers add 10–20 ms (the first request also opens the connections).
        let now = servescope_proto::now_ns();
        let at = |x: Instant| (now - x.elapsed().as_nanos() as u64) as f64 / 1e9;
        let s = |ns: Option<u64>| ns.unwrap() as f64 / 1e9;
        let segments = [
            ("client→proxy", s(t.proxy_in_ns) - at(sent)),
            ("proxy→P", s(t.p_arrival_ns) - s(t.proxy_in_ns)),
            ("P", s(t.p_done_ns) - s(t.p_arrival_ns)),
            ("handoff", s(t.d_arrival_ns) - s(t.p_done_ns)),
            ("D→first token", s(t.d_first_token_ns) - s(t.d_arrival_ns)),
            ("first token→client", at(ev[0].0) - s(t.d_first_token_ns)),
        ];
        let sum: f64 = segments.iter().map(|x| x.1).sum();
        let why =
            format!("first={first}: ttft {ttft:.4} s vs modelled {want:.3} s; {segments:.4?}");
        assert!((sum - ttft).abs() < 0.001, "{why}");
        assert!(ttft >= want - 0.001 && ttft < want + 0.040, "{why}");
        assert_eq!(t.kv_bytes, 100_000_000);
        assert!((t.kv_transfer_ms - 100.0).abs() < 5.0, "{t:?}");
        assert!((t.p_prefill_ms - 50.0).abs() < 5.0, "{t:?}");
        let hs = if first { 50.0 } else { 0.0 };
        assert!((t.kv_handshake_ms - hs).abs() < 5.0, "{t:?}");
        assert_eq!(t.proxy_delay_ms, 20.0);
        assert!(t.p_arrival_ns.unwrap() >= t.proxy_in_ns.unwrap());
        assert!(t.d_arrival_ns.unwrap() >= t.p_done_ns.unwrap());
        // D's per-request metrics block reaches the client; D's queue holds the transfer.
        let usage = ev
            .iter()
            .find(|(_, d)| d.contains("\"metrics\""))
            .expect("metrics block");
        let v: serde_json::Value = serde_json::from_str(&usage.1).unwrap();
        assert!(v["metrics"]["queue_time_ms"].as_f64().unwrap() >= 99.0);
        assert!(v["metrics"].get("servescope_ground_truth").is_none());
    }
    let p = metrics(&h.prefill_urls()[0]).await;
    assert!(
        p.contains(
            "vllm:request_queue_time_seconds_count{engine=\"0\",model_name=\"servescope-sim\"} 2.0"
        ),
        "{p}"
    );
    assert!(
        p.contains(
            "vllm:nixl_xfer_time_seconds_count{engine=\"0\",model_name=\"servescope-sim\"} 0.0"
        ),
        "{p}"
    );
    let d = metrics(&h.decode_urls()[0]).await;
    assert!(
        d.contains(
            "vllm:nixl_xfer_time_seconds_count{engine=\"0\",model_name=\"servescope-sim\"} 2.0"
        ),
        "{d}"
    );
    assert!(
        d.contains(
            "vllm:nixl_bytes_transferred_sum{engine=\"0\",model_name=\"servescope-sim\"} 200000000"
        ),
        "{d}"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn failed_transfers_recompute_and_expire_on_prefill() {
    let h = start(cluster_cfg(1.0, 0, 0)).await;
    let (status, ev, _) = post(h.proxy.addr, "f-1", &body(3)).await;
    assert!(status.contains("200") && ev.len() >= 3, "{status}");
    let t = h.truth.get("f-1").unwrap();
    assert!(
        t.kv_failed && (t.kv_recompute_ms - 50.0).abs() < 1e-6,
        "{t:?}"
    );
    tokio::time::sleep(Duration::from_millis(700)).await;
    let d = metrics(&h.decode_urls()[0]).await;
    assert!(
        d.contains(
            "vllm:nixl_num_failed_transfers_total{engine=\"0\",model_name=\"servescope-sim\"} 1.0"
        ),
        "{d}"
    );
    let p = metrics(&h.prefill_urls()[0]).await;
    assert!(
        p.contains(
            "vllm:nixl_num_kv_expired_reqs_total{engine=\"0\",model_name=\"servescope-sim\"} 1.0"
        ),
        "{p}"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn stream_batching_releases_tokens_in_bursts() {
    let h = start(cluster_cfg(0.0, 0, 50)).await;
    let (_, ev, _) = post(h.proxy.addr, "b-1", &body(20)).await;
    // 20 tokens 10 ms apart leave in a handful of 50 ms bursts.
    let mut bursts = ev.iter().map(|e| e.0).collect::<Vec<_>>();
    bursts.dedup();
    assert!(
        bursts.len() <= 8 && ev.len() >= 20,
        "{} bursts, {} events",
        bursts.len(),
        ev.len()
    );
    h.shutdown().await;
}
