use super::*;
use crate::sse::{SseDecoder, SseLimits};

const ID: &str = r#""id":"cmpl-9a1f0c3e5b7d4e2f8a6c1b0d3e5f7a9c","object":"text_completion","created":1763903047,"model":"meta-llama/Llama-3.1-8B-Instruct""#;

/// A `/v1/completions` stream as vLLM writes it (`stream_options.include_usage`,
/// `--enable-per-request-metrics`), with a keep-alive comment and a chunk carrying
/// two tokens (`--stream-interval 2`).
fn completions_fixture() -> String {
    let tok = |text: &str, finish: &str| {
        format!(
                "data: {{{ID},\"choices\":[{{\"index\":0,\"text\":{text},\"logprobs\":null,\"finish_reason\":{finish},\"stop_reason\":null}}],\"usage\":null}}\n\n"
            )
    };
    let mut s = String::new();
    s += &tok(r#"" Hello""#, "null");
    s += &tok(r#"",""#, "null");
    s += ": ping - 2025-11-23 12:44:07.123456+00:00\n\n";
    s += &tok(r#"" wörld""#, "null");
    s += &tok(r#""\n\"Hi\" \u00e9""#, "null");
    s += &format!(
            "data: {{{ID},\"choices\":[{{\"index\":0,\"text\":\" two toks\",\"logprobs\":null,\"finish_reason\":null,\"stop_reason\":null,\"token_ids\":[1403,311]}}],\"usage\":null}}\n\n"
        );
    s += &tok(r#""!""#, r#""length""#);
    s += &format!(
            "data: {{{ID},\"choices\":[],\"usage\":{{\"prompt_tokens\":12,\"total_tokens\":19,\"completion_tokens\":7,\"prompt_tokens_details\":null}},\"metrics\":{{\"time_to_first_token_ms\":41.2,\"generation_time_ms\":88.0,\"queue_time_ms\":0.4,\"mean_itl_ms\":14.7,\"tokens_per_second\":54.1}}}}\n\n"
        );
    s += "data: [DONE]\n\n";
    s
}

/// A `/v1/chat/completions` stream from a reasoning model: role-only opening chunk,
/// `reasoning_content` deltas, content deltas, usage chunk.
fn chat_fixture() -> String {
    let head = r#""id":"chatcmpl-5c2e","object":"chat.completion.chunk","created":1763903047,"model":"Qwen/Qwen3-8B""#;
    let chunk = |delta: &str, finish: &str| {
        format!(
                "data: {{{head},\"choices\":[{{\"index\":0,\"delta\":{delta},\"logprobs\":null,\"finish_reason\":{finish}}}]}}\n\n"
            )
    };
    let mut s = String::new();
    s += &chunk(r#"{"role":"assistant","content":""}"#, "null");
    s += &chunk(r#"{"reasoning_content":"Think"}"#, "null");
    s += &chunk(r#"{"reasoning_content":"ing."}"#, "null");
    s += &chunk(r#"{"content":"Hi"}"#, "null");
    s += &chunk(r#"{"content":" there"}"#, r#""stop""#);
    s += &format!(
            "data: {{{head},\"choices\":[],\"usage\":{{\"prompt_tokens\":9,\"total_tokens\":13,\"completion_tokens\":4}}}}\n\n"
        );
    s += "data: [DONE]\n\n";
    s
}

#[derive(Debug, Default, PartialEq)]
struct Summary {
    text: String,
    reasoning: String,
    token_chunks: usize,
    tokens: u32,
    usage: Option<Usage>,
    metrics: Option<Value>,
    finish: Option<String>,
    done: bool,
}

/// The load client's loop: SSE decoder, then chunk decoder on every event.
fn run(pieces: &[&[u8]]) -> Result<Summary, StreamErrorClass> {
    let mut sse = SseDecoder::new(SseLimits::default());
    let mut chunks = ChunkDecoder::new();
    let mut sum = Summary::default();
    let mut failed = None;
    for piece in pieces {
        sse.push_with(piece, |ev| {
            if failed.is_some() {
                return;
            }
            match chunks.decode(ev.data) {
                Ok(Chunk::Token(t)) => {
                    sum.text += t.text.as_deref().unwrap_or("");
                    sum.reasoning += t.reasoning.as_deref().unwrap_or("");
                    sum.token_chunks += 1;
                    sum.tokens += t.token_count();
                    if let Some(f) = t.finish_reason {
                        sum.finish = Some(f.into_owned());
                    }
                }
                Ok(Chunk::Usage { usage, metrics }) => {
                    sum.usage = usage;
                    sum.metrics = metrics;
                }
                Ok(Chunk::Done) => sum.done = true,
                Ok(Chunk::Empty) => {}
                Ok(Chunk::Error(e)) => failed = Some(e.class()),
                Err(e) => failed = Some(e.class()),
            }
        })
        .map_err(|e| StreamErrorClass::of_sse(&e))?;
        if let Some(class) = failed {
            return Err(class);
        }
    }
    sse.finish().map_err(|e| StreamErrorClass::of_sse(&e))?;
    if !sum.done {
        return Err(StreamErrorClass::StreamCut);
    }
    Ok(sum)
}

fn expected_completions() -> Summary {
    Summary {
        text: " Hello, wörld\n\"Hi\" é two toks!".into(),
        reasoning: String::new(),
        token_chunks: 6,
        tokens: 7,
        usage: Some(Usage {
            prompt_tokens: Some(12),
            completion_tokens: Some(7),
            total_tokens: Some(19),
        }),
        metrics: Some(
            serde_json::json!({"time_to_first_token_ms":41.2,"generation_time_ms":88.0,
                "queue_time_ms":0.4,"mean_itl_ms":14.7,"tokens_per_second":54.1}),
        ),
        finish: Some("length".into()),
        done: true,
    }
}

#[test]
fn completions_stream_split_at_every_offset() {
    let want = expected_completions();
    for variant in [
        completions_fixture(),
        completions_fixture().replace('\n', "\r\n"),
    ] {
        let fx = variant.as_bytes();
        assert_eq!(run(&[fx]), Ok(expected_completions()));
        for i in 0..=fx.len() {
            assert_eq!(
                run(&[&fx[..i], &fx[i..]]).as_ref(),
                Ok(&want),
                "split at {i}"
            );
        }
        let bytewise: Vec<&[u8]> = fx.chunks(1).collect();
        assert_eq!(run(&bytewise).as_ref(), Ok(&want));
    }
}

#[test]
fn completions_stream_random_multi_splits() {
    let fx = completions_fixture().replace("\n\n", "\r\n\r").into_bytes();
    let mut rng = crate::sse::tests::Rng::new(7);
    for _ in 0..500 {
        let mut pieces = Vec::new();
        let mut rest = &fx[..];
        while !rest.is_empty() {
            let (a, b) = rest.split_at(rng.below(rest.len().min(64) + 1));
            pieces.push(a);
            rest = b;
        }
        assert_eq!(run(&pieces), Ok(expected_completions()));
    }
}

#[test]
fn chat_stream_with_reasoning_split_at_every_offset() {
    let fx = chat_fixture();
    let want = Summary {
        text: "Hi there".into(),
        reasoning: "Thinking.".into(),
        token_chunks: 5,
        tokens: 4,
        usage: Some(Usage {
            prompt_tokens: Some(9),
            completion_tokens: Some(4),
            total_tokens: Some(13),
        }),
        metrics: None,
        finish: Some("stop".into()),
        done: true,
    };
    for i in 0..=fx.len() {
        assert_eq!(
            run(&[&fx.as_bytes()[..i], &fx.as_bytes()[i..]]).as_ref(),
            Ok(&want),
            "split at {i}"
        );
    }
}

#[test]
fn cut_and_broken_streams_get_their_class() {
    let fx = completions_fixture();
    let without_done = fx.trim_end_matches("data: [DONE]\n\n");
    assert_eq!(
        run(&[without_done.as_bytes()]),
        Err(StreamErrorClass::StreamCut)
    );
    assert_eq!(
        run(&[&fx.as_bytes()[..fx.len() - 1]]),
        Err(StreamErrorClass::StreamCut)
    );
    assert_eq!(
        run(&[&fx.as_bytes()[..100]]),
        Err(StreamErrorClass::StreamCut)
    );
    let garbled = fx.replacen("\"choices\":[{", "\"choices\":[{{", 1);
    assert_eq!(
        run(&[garbled.as_bytes()]),
        Err(StreamErrorClass::MalformedChunk)
    );
    let bad_utf8 = [&fx.as_bytes()[..20], b"\xff", &fx.as_bytes()[20..]].concat();
    assert_eq!(run(&[&bad_utf8]), Err(StreamErrorClass::MalformedChunk));
    let head: usize = fx.match_indices("\n\n").nth(2).map_or(0, |(i, _)| i + 2);
    let err = format!("{}data: {{\"error\":{{\"message\":\"boom\",\"type\":\"InternalServerError\",\"code\":500}}}}\n\n", &fx[..head]);
    assert_eq!(run(&[err.as_bytes()]), Err(StreamErrorClass::ServerError));
}

fn token(data: &str) -> TokenChunk<'_> {
    match decode_chunk(data) {
        Ok(Chunk::Token(t)) => t,
        other => panic!("not a token chunk: {other:?}"),
    }
}

#[test]
fn text_borrows_unless_escaped() {
    let t = token(r#"{"choices":[{"index":0,"text":" Hello"}]}"#);
    assert!(matches!(t.text, Some(Cow::Borrowed(" Hello"))));
    let t = token(r#"{"choices":[{"index":0,"delta":{"content":"a\tb\u00e9"}}]}"#);
    assert_eq!(t.text.as_deref(), Some("a\tbé"));
    assert_eq!(
        (t.text_len, t.pieces, t.tokens, t.token_count()),
        (5, 1, None, 1)
    );
}

#[test]
fn tokens_per_chunk_when_the_server_says() {
    // return_token_ids, on the choice or in the delta.
    assert_eq!(
        token(r#"{"choices":[{"text":"ab","token_ids":[1,2,3]}]}"#).token_count(),
        3
    );
    assert_eq!(
        token(r#"{"choices":[{"delta":{"content":"ab","token_ids":[1,2]}}]}"#).tokens,
        Some(2)
    );
    // logprobs: completions' tokens list, chat's content list.
    let t = token(
        r#"{"choices":[{"text":"ab","logprobs":{"tokens":["a","b"],"token_logprobs":[-0.1,-0.2],"text_offset":[0,1],"top_logprobs":null}}]}"#,
    );
    assert_eq!(t.tokens, Some(2));
    let t = token(
        r#"{"choices":[{"delta":{"content":"ab"},"logprobs":{"content":[{"token":"a","logprob":-1.0,"bytes":[97],"top_logprobs":[]},{"token":"b","logprob":-1.0,"bytes":[98],"top_logprobs":[]}]}}]}"#,
    );
    assert_eq!(t.tokens, Some(2));
    // Not said: count the text pieces (several choices when n > 1).
    let t = token(
        r#"{"choices":[{"index":0,"text":"a"},{"index":1,"text":"bc"},{"index":2,"text":""}]}"#,
    );
    assert_eq!(
        (t.tokens, t.pieces, t.text_len, t.text.as_deref()),
        (None, 2, 3, Some("a"))
    );
    // Role-only opening chat chunk: no token.
    let t = token(
        r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#,
    );
    assert!(t.is_empty());
    assert_eq!(t.token_count(), 0);
    // Newer vLLM names the reasoning delta `reasoning`.
    let t = token(r#"{"choices":[{"delta":{"reasoning":"hmm"}}]}"#);
    assert_eq!(
        (t.reasoning.as_deref(), t.reasoning_len, t.pieces),
        (Some("hmm"), 3, 1)
    );
}

#[test]
fn continuous_usage_stats_give_tokens_per_chunk() {
    let mut dec = ChunkDecoder::new();
    let mut counts = Vec::new();
    for (text, done) in [("", 0), ("ab", 1), ("cdef", 4), ("g", 5)] {
        let data = format!(
            r#"{{"choices":[{{"delta":{{"content":"{text}"}}}}],"usage":{{"prompt_tokens":3,"completion_tokens":{done},"total_tokens":{}}}}}"#,
            3 + done
        );
        match dec.decode(&data) {
            Ok(Chunk::Token(t)) => counts.push(t.token_count()),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(counts, [0, 1, 3, 1]);
    // An explicit count wins over the usage delta.
    let data = r#"{"choices":[{"text":"x","token_ids":[5,6]}],"usage":{"completion_tokens":6}}"#;
    assert!(matches!(
        dec.decode(data),
        Ok(Chunk::Token(TokenChunk {
            tokens: Some(2),
            ..
        }))
    ));
}

#[test]
fn usage_metrics_empty_and_done() {
    let c = decode_chunk(
        r#"{"id":"x","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}"#,
    );
    let usage = Usage {
        prompt_tokens: Some(5),
        completion_tokens: Some(2),
        total_tokens: Some(7),
    };
    assert!(matches!(c, Ok(Chunk::Usage { usage: Some(u), metrics: None }) if u == usage));
    let c = decode_chunk(r#"{"choices":[],"metrics":{"queue_time_ms":1.5}}"#);
    assert!(
        matches!(c, Ok(Chunk::Usage { usage: None, metrics: Some(m) }) if m["queue_time_ms"] == 1.5)
    );
    assert!(matches!(
        decode_chunk(r#"{"choices":[],"usage":null}"#),
        Ok(Chunk::Empty)
    ));
    assert!(matches!(decode_chunk("[DONE]"), Ok(Chunk::Done)));
    assert!(matches!(decode_chunk(" [DONE] "), Ok(Chunk::Done)));
    let mut dec = ChunkDecoder::new();
    assert!(matches!(dec.decode("[DONE]"), Ok(Chunk::Done)));
    assert!(dec.is_done());
    assert!(matches!(
        dec.decode(r#"{"choices":[]}"#),
        Err(ChunkError::AfterDone)
    ));
}

#[test]
fn in_stream_errors_both_shapes() {
    let c = decode_chunk(
        r#"{"error":{"object":"error","message":"max_tokens too large","type":"BadRequestError","param":null,"code":400}}"#,
    );
    let want = ServerError {
        message: "max_tokens too large".into(),
        kind: Some("BadRequestError".into()),
        code: Some("400".into()),
    };
    assert!(matches!(&c, Ok(Chunk::Error(e)) if *e == want));
    let c = decode_chunk(
        r#"{"object":"error","message":"max_tokens too large","type":"BadRequestError","param":null,"code":400}"#,
    );
    assert!(matches!(&c, Ok(Chunk::Error(e)) if *e == want));
    let c = decode_chunk(r#"{"error":{"message":"ctx","code":"context_length_exceeded"}}"#);
    assert!(
        matches!(&c, Ok(Chunk::Error(e)) if e.code.as_deref() == Some("context_length_exceeded") && e.kind.is_none())
    );
    let c = decode_chunk(r#"{"error":"overloaded"}"#);
    assert!(matches!(&c, Ok(Chunk::Error(e)) if e.message == "overloaded"));
    let c = decode_chunk(r#"{"error":{"detail":1}}"#);
    assert!(matches!(&c, Ok(Chunk::Error(e)) if e.message == r#"{"detail":1}"#));
    if let Ok(Chunk::Error(e)) = c {
        assert_eq!(e.class(), StreamErrorClass::ServerError);
    }
}

#[test]
fn malformed_chunks() {
    for bad in [
        "",
        "not json",
        "{\"choices\":[{\"text\":\"a\"}]",
        "{\"choices\":5}",
        "{\"choices\":[{\"text\":7}]}",
        "{\"choices\":[{\"text\":\"a\",\"token_ids\":\"x\"}]}",
        "{\"usage\":{\"prompt_tokens\":-1}}",
        "42",
        "[1,2]",
    ] {
        let err = decode_chunk(bad).expect_err(bad);
        assert!(matches!(err, ChunkError::Json(_)), "{bad}: {err}");
        assert_eq!(err.class(), StreamErrorClass::MalformedChunk);
    }
    assert!(matches!(decode_chunk("{}"), Err(ChunkError::Unrecognised)));
    assert!(matches!(
        decode_chunk(r#"{"choices":null}"#),
        Err(ChunkError::Unrecognised)
    ));
}

#[test]
fn sse_error_classes() {
    use crate::sse::SseError;
    assert_eq!(
        StreamErrorClass::of_sse(&SseError::StreamCut { pending_bytes: 1 }),
        StreamErrorClass::StreamCut
    );
    assert_eq!(
        StreamErrorClass::of_sse(&SseError::EventTooLarge { limit: 1 }),
        StreamErrorClass::MalformedChunk
    );
    assert_eq!(
        StreamErrorClass::of_sse(&SseError::LineTooLarge { limit: 1 }),
        StreamErrorClass::MalformedChunk
    );
    assert_eq!(StreamErrorClass::MalformedChunk.as_str(), "malformed_chunk");
}

#[test]
fn random_mutations_of_a_real_stream_never_panic() {
    const INSERTS: &[u8] = b"{}[]\":,\n\r\\";
    let fx = completions_fixture().into_bytes();
    let mut rng = crate::sse::tests::Rng::new(42);
    for _ in 0..2000 {
        let mut bytes = fx.clone();
        for _ in 0..1 + rng.below(8) {
            let at = rng.below(bytes.len());
            match rng.below(3) {
                0 => bytes[at] = rng.next() as u8,
                1 => {
                    bytes.remove(at);
                }
                _ => bytes.insert(at, INSERTS[rng.below(INSERTS.len())]),
            }
        }
        let cut = rng.below(bytes.len() + 1);
        let _ = run(&[&bytes[..cut], &bytes[cut..]]);
    }
}
