//! A refused request keeps the server's own message: vLLM 0.32's HTTP 400 answers
//! (captured from a real `vllm serve --max-model-len 1024`, headers and body as
//! sent) replayed byte for byte on loopback.

use std::path::PathBuf;
use std::time::Duration;

use servescope_loadgen::http::HttpClient;
use servescope_loadgen::metrics::ErrorClass;
use servescope_loadgen::request::{execute, Api, Clock, Prompt, Target};
use servescope_loadgen::schedule::Slot;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn fixture(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/vllm-0.32-cpu");
    std::fs::read(p.join(name)).unwrap()
}

/// Serves one connection with `response` after reading the request head and body.
async fn replay(response: Vec<u8>) -> String {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            let n = s.read(&mut buf).await.unwrap();
            got.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&got).to_ascii_lowercase();
            if let Some(end) = text.find("\r\n\r\n") {
                let len: usize = text
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map(|v| v.trim().parse().unwrap())
                    .unwrap_or(0);
                if got.len() >= end + 4 + len {
                    break;
                }
            }
            if n == 0 {
                break;
            }
        }
        s.write_all(&response).await.unwrap();
        s.shutdown().await.unwrap();
    });
    format!("http://{addr}")
}

async fn refused(headers: &str, body: &str) -> (servescope_loadgen::request::Outcome, String) {
    let body = fixture(body);
    let mut response = fixture(headers);
    response.extend_from_slice(&body);
    let url = replay(response).await;
    let target = Target {
        base_url: url,
        api: Api::Completions,
        model: "tiny-llama".into(),
        request_id_prefix: "e-".into(),
        sse_limits: Default::default(),
    };
    let prompt = Prompt {
        text: "hello ".repeat(1100),
        input_tokens: 1100,
        max_tokens: 8,
        ignore_eos: true,
        expect_prefix: None,
    };
    let slot = Slot {
        index: 0,
        scheduled: tokio::time::Instant::now(),
        dispatch_lag: Duration::ZERO,
    };
    let o = execute(&HttpClient::new(1), &target, &prompt, slot, &Clock::new()).await;
    let engine: serde_json::Value = serde_json::from_slice(&body).unwrap();
    (o, engine["error"]["message"].as_str().unwrap().to_string())
}

#[tokio::test]
async fn vllm_max_model_len_refusals_keep_the_engines_message() {
    for (h, b) in [
        ("max_tokens_400.headers", "max_tokens_400.body"),
        ("max_context_400.headers", "max_context_400.body"),
    ] {
        let (o, engine) = refused(h, b).await;
        println!("engine: {engine}\nours:   {:?}", o.error_detail);
        assert_eq!(o.record.error, Some(ErrorClass::HttpStatus(400)));
        assert_eq!(o.status, Some(400));
        assert!(engine.starts_with("This model's maximum context length is 1024 tokens. However,"));
        assert_eq!(
            o.error_detail.as_deref(),
            Some(format!("HTTP 400 Bad Request: {engine}").as_str())
        );
    }
}
