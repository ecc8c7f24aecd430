//! The load client's HTTP layer against the simulator on loopback.

use bytes::Bytes;
use servescope_coordinator::orchestration::load::http::{HttpClient, HttpError};
use servescope_sim::{Faults, SimConfig};

#[tokio::test]
async fn frames_arrive_as_streamed_and_faults_are_classified() {
    let sim = servescope_sim::start(
        SimConfig {
            decode_s_per_token: 0.005,
            prefill_base_s: 0.0,
            prefill_s_per_token: 0.0,
            ..Default::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let c = HttpClient::new(4);
    let url = format!("{}/v1/completions", sim.url());
    let hdr = [("x-request-id".parse().unwrap(), "abc".parse().unwrap())];
    let mut frames = Vec::new();
    let head = c
        .post_stream(
            &url,
            &hdr,
            Bytes::from_static(br#"{"prompt":"a b","max_tokens":10,"stream":true}"#),
            |_| {},
            |t, b| {
                frames.push((t, b.to_vec()));
                true
            },
        )
        .await
        .unwrap();
    assert_eq!(head.status, 200);
    assert_eq!(head.request_id.as_deref(), Some("abc"));
    assert!(
        frames.len() >= 10,
        "one frame per token at 5 ms spacing ({} frames)",
        frames.len()
    );
    let span = frames.last().unwrap().0 - frames[0].0;
    assert!(span.as_millis() >= 40, "frames spread in time: {span:?}");
    let all: Vec<u8> = frames.iter().flat_map(|f| f.1.clone()).collect();
    assert!(String::from_utf8_lossy(&all).ends_with("data: [DONE]\n\n"));
    sim.shutdown().await;

    let cut = servescope_sim::start(
        SimConfig {
            faults: Faults {
                truncate_rate: 1.0,
                ..Default::default()
            },
            ..SimConfig::zero_latency()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let r = c
        .post_stream(
            &format!("{}/v1/completions", cut.url()),
            &[],
            Bytes::from_static(br#"{"prompt":"a","max_tokens":10,"stream":true}"#),
            |_| {},
            |_, _| true,
        )
        .await;
    assert!(matches!(r, Err(HttpError::StreamCut(_))), "{r:?}");
    let port = cut.addr.port();
    cut.shutdown().await;
    let r = c
        .post_stream(
            &format!("http://127.0.0.1:{port}/v1/completions"),
            &[],
            Bytes::new(),
            |_| {},
            |_, _| true,
        )
        .await;
    assert!(matches!(r, Err(HttpError::Connect(_))), "{r:?}");
    let r = c
        .post_stream("not a url", &[], Bytes::new(), |_| {}, |_, _| true)
        .await;
    assert!(matches!(r, Err(HttpError::Url { .. })), "{r:?}");
}
