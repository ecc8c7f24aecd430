//! Decoding of OpenAI-compatible streaming payloads (`/v1/completions`,
//! `/v1/chat/completions`), one SSE event's `data` at a time.
//!
//! What a chunk can be ([`Chunk`]): `[DONE]`; a chunk with choices (`choices[].text`, or
//! `choices[].delta.content` and `delta.reasoning_content`/`delta.reasoning` as vLLM sends
//! for reasoning models); a final chunk without choices carrying `usage` (with
//! `stream_options.include_usage`) and vLLM's per-request `metrics` block; an in-stream
//! error (`{"error": {...}}` or `{"object": "error", ...}`).
//!
//! Tokens per chunk: vLLM may put several tokens in one chunk (`--stream-interval`, spec
//! decoding). When the server says how many — `choices[].token_ids` (`return_token_ids`),
//! `logprobs.tokens` / `logprobs.content`, or the growth of cumulative `usage` with
//! `continuous_usage_stats` (tracked by [`ChunkDecoder`]) — [`TokenChunk::tokens`] holds
//! it; otherwise [`TokenChunk::token_count`] counts the text pieces.
//!
//! Parsing borrows: choices are folded while deserializing (no `Vec` per chunk) and text
//! is a `Cow` that borrows from the event unless JSON escapes force a copy.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;

use super::sse::SseError;

mod fast;

/// Failure classes of a streamed response, as the request record names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamErrorClass {
    /// The stream ended mid-event, or without `[DONE]`.
    StreamCut,
    /// Bytes or JSON that are not a valid streaming chunk (bounds, UTF-8, shape).
    MalformedChunk,
    /// The server reported an error inside the stream.
    ServerError,
}

impl StreamErrorClass {
    /// Class of an SSE-level failure.
    pub fn of_sse(err: &SseError) -> Self {
        match err {
            SseError::StreamCut { .. } => Self::StreamCut,
            SseError::EventTooLarge { .. }
            | SseError::LineTooLarge { .. }
            | SseError::InvalidUtf8 { .. } => Self::MalformedChunk,
        }
    }

    /// Stable snake_case name (for the store and JSON).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::StreamCut => "stream_cut",
            Self::MalformedChunk => "malformed_chunk",
            Self::ServerError => "server_error",
        }
    }
}

/// Why an event's data is not a valid streaming chunk. Always [`StreamErrorClass::MalformedChunk`].
#[derive(Debug, thiserror::Error)]
pub enum ChunkError {
    /// Not JSON, or JSON of the wrong types.
    #[error("malformed chunk: {0}")]
    Json(#[from] serde_json::Error),
    /// A JSON object with neither `choices`, `usage`, `metrics` nor an error.
    #[error("malformed chunk: no choices, usage or error")]
    Unrecognised,
    /// Data arrived after `[DONE]`.
    #[error("malformed chunk: data after [DONE]")]
    AfterDone,
}

impl ChunkError {
    /// The failure class.
    pub fn class(&self) -> StreamErrorClass {
        StreamErrorClass::MalformedChunk
    }
}

/// Token accounting from the server (`usage`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, Deserialize)]
pub struct Usage {
    pub prompt_tokens: Option<u64>,
    pub completion_tokens: Option<u64>,
    pub total_tokens: Option<u64>,
}

/// An error the server sent inside the stream.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerError {
    /// `message`, or the error value's JSON text when it has none.
    pub message: String,
    /// `type`, e.g. `BadRequestError`.
    pub kind: Option<String>,
    /// `code`, a number (HTTP-like) or a string, as text.
    pub code: Option<String>,
}

impl ServerError {
    /// The failure class.
    pub fn class(&self) -> StreamErrorClass {
        StreamErrorClass::ServerError
    }
}

/// A chunk carrying choices.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TokenChunk<'a> {
    /// Text of the first choice that has some (`text` or `delta.content`).
    pub text: Option<Cow<'a, str>>,
    /// Reasoning text of the first choice that has some.
    pub reasoning: Option<Cow<'a, str>>,
    /// Bytes of text over all choices.
    pub text_len: usize,
    /// Bytes of reasoning text over all choices.
    pub reasoning_len: usize,
    /// Choices carrying non-empty text or reasoning.
    pub pieces: u32,
    /// Tokens in this chunk, when the server says.
    pub tokens: Option<u32>,
    /// `finish_reason` of the first choice that has one.
    pub finish_reason: Option<Cow<'a, str>>,
    /// Cumulative usage (`continuous_usage_stats`).
    pub usage: Option<Usage>,
    /// vLLM per-request metrics, should they ride on a chunk with choices.
    pub metrics: Option<Value>,
}

impl TokenChunk<'_> {
    /// Tokens this chunk carries: the server's count, else the text pieces.
    pub fn token_count(&self) -> u32 {
        self.tokens.unwrap_or(self.pieces)
    }

    /// No text, no reasoning and no token (e.g. the role-only opening chat chunk).
    pub fn is_empty(&self) -> bool {
        self.pieces == 0 && self.tokens.unwrap_or(0) == 0
    }
}

/// One decoded streaming payload.
#[derive(Debug, Clone, PartialEq)]
pub enum Chunk<'a> {
    /// `data: [DONE]`.
    Done,
    /// A chunk with at least one choice.
    Token(TokenChunk<'a>),
    /// No choices; `usage` and/or vLLM's `metrics` (the final usage chunk).
    Usage {
        usage: Option<Usage>,
        metrics: Option<Value>,
    },
    /// A well-formed chunk with empty `choices` and nothing else of ours.
    Empty,
    /// An in-stream server error.
    Error(ServerError),
}

/// Decodes one event's data without per-stream state.
pub fn decode_chunk(data: &str) -> Result<Chunk<'_>, ChunkError> {
    if data.trim_ascii() == "[DONE]" {
        return Ok(Chunk::Done);
    }
    match fast::scan(data) {
        Some(chunk) => Ok(chunk),
        None => from_raw(serde_json::from_str(data)?),
    }
}

/// [`decode_chunk`] through serde alone, without the fast scanner: the reference the
/// scanner is tested (and fuzzed) against.
#[doc(hidden)]
pub fn decode_chunk_serde(data: &str) -> Result<Chunk<'_>, ChunkError> {
    if data.trim_ascii() == "[DONE]" {
        return Ok(Chunk::Done);
    }
    from_raw(serde_json::from_str(data)?)
}

fn from_raw(raw: RawChunk<'_>) -> Result<Chunk<'_>, ChunkError> {
    if let Some(err) = raw.error {
        return Ok(Chunk::Error(server_error(err)));
    }
    if raw.object.as_ref().is_some_and(|o| o.0 == "error") {
        let mut err = serde_json::Map::new();
        for (key, value) in [
            ("message", raw.message),
            ("type", raw.kind),
            ("code", raw.code),
        ] {
            if let Some(value) = value {
                err.insert(key.to_owned(), value);
            }
        }
        return Ok(Chunk::Error(server_error(Value::Object(err))));
    }
    match raw.choices {
        Some(c) if c.count > 0 => Ok(Chunk::Token(c.into_token(raw.usage, raw.metrics))),
        choices => match (raw.usage, raw.metrics) {
            (None, None) if choices.is_some() => Ok(Chunk::Empty),
            (None, None) => Err(ChunkError::Unrecognised),
            (usage, metrics) => Ok(Chunk::Usage { usage, metrics }),
        },
    }
}

/// Per-request decoder: [`decode_chunk`] plus what needs the stream's history — tokens
/// per chunk from cumulative `continuous_usage_stats`, and data after `[DONE]`.
#[derive(Debug, Clone, Default)]
pub struct ChunkDecoder {
    done: bool,
    completion_tokens: Option<u64>,
    /// The last chunk's bytes before its `choices` value, for the fast scanner.
    prefix: fast::Prefix,
    /// Serde only (the reference the fast path is checked against).
    serde_only: bool,
}

impl ChunkDecoder {
    /// A decoder for a new stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// A decoder that never takes the fast scanner: [`decode_chunk_serde`] per event.
    #[doc(hidden)]
    pub fn serde_only() -> Self {
        Self {
            serde_only: true,
            ..Self::default()
        }
    }

    /// `[DONE]` has been seen.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Decodes the next event's data.
    pub fn decode<'a>(&mut self, data: &'a str) -> Result<Chunk<'a>, ChunkError> {
        if self.done {
            return Err(ChunkError::AfterDone);
        }
        let mut chunk = if self.serde_only {
            decode_chunk_serde(data)?
        } else if data.trim_ascii() == "[DONE]" {
            Chunk::Done
        } else {
            match fast::scan_with(data, Some(&mut self.prefix)) {
                Some(chunk) => chunk,
                None => from_raw(serde_json::from_str(data)?)?,
            }
        };
        match &mut chunk {
            Chunk::Done => self.done = true,
            Chunk::Token(t) => {
                if let Some(now) = t.usage.and_then(|u| u.completion_tokens) {
                    if t.tokens.is_none() {
                        let before = self.completion_tokens.unwrap_or(0);
                        t.tokens =
                            Some(u32::try_from(now.saturating_sub(before)).unwrap_or(u32::MAX));
                    }
                    self.completion_tokens = Some(now);
                }
            }
            Chunk::Usage { .. } | Chunk::Empty | Chunk::Error(_) => {}
        }
        Ok(chunk)
    }
}

fn server_error(err: Value) -> ServerError {
    let text = |v: Option<&Value>| match v {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => Some(other.to_string()),
    };
    match &err {
        Value::String(s) => ServerError {
            message: s.clone(),
            kind: None,
            code: None,
        },
        _ => ServerError {
            message: text(err.get("message")).unwrap_or_else(|| err.to_string()),
            kind: text(err.get("type")),
            code: text(err.get("code")),
        },
    }
}

/// A string that borrows from the input when it has no escapes.
#[derive(Deserialize)]
struct Str<'a>(#[serde(borrow)] Cow<'a, str>);

#[derive(Deserialize)]
struct RawChunk<'a> {
    #[serde(borrow)]
    object: Option<Str<'a>>,
    #[serde(borrow)]
    choices: Option<Choices<'a>>,
    usage: Option<Usage>,
    metrics: Option<Value>,
    error: Option<Value>,
    message: Option<Value>,
    #[serde(rename = "type")]
    kind: Option<Value>,
    code: Option<Value>,
}

#[derive(Deserialize)]
struct RawChoice<'a> {
    #[serde(borrow)]
    text: Option<Str<'a>>,
    #[serde(borrow)]
    delta: Option<RawDelta<'a>>,
    #[serde(borrow)]
    finish_reason: Option<Str<'a>>,
    token_ids: Option<Count>,
    logprobs: Option<RawLogprobs>,
}

#[derive(Deserialize)]
struct RawDelta<'a> {
    #[serde(borrow)]
    content: Option<Str<'a>>,
    #[serde(borrow)]
    reasoning_content: Option<Str<'a>>,
    #[serde(borrow)]
    reasoning: Option<Str<'a>>,
    token_ids: Option<Count>,
}

/// Completions: `{"tokens": [...], ...}`; chat: `{"content": [...]}`.
#[derive(Deserialize)]
struct RawLogprobs {
    tokens: Option<Count>,
    content: Option<Count>,
}

/// Length of a JSON array, without keeping its elements.
struct Count(u32);

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Count;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Count, A::Error> {
                let mut n = 0u32;
                while seq.next_element::<IgnoredAny>()?.is_some() {
                    n = n.saturating_add(1);
                }
                Ok(Count(n))
            }
        }
        d.deserialize_seq(V)
    }
}

/// `choices` folded into totals as it is parsed.
#[derive(Default)]
struct Choices<'a> {
    count: u32,
    text: Option<Cow<'a, str>>,
    reasoning: Option<Cow<'a, str>>,
    text_len: usize,
    reasoning_len: usize,
    pieces: u32,
    tokens: Option<u32>,
    finish_reason: Option<Cow<'a, str>>,
}

impl<'a> Choices<'a> {
    /// The token chunk these choices make, with the chunk's usage and metrics.
    fn into_token(self, usage: Option<Usage>, metrics: Option<Value>) -> TokenChunk<'a> {
        TokenChunk {
            text: self.text,
            reasoning: self.reasoning,
            text_len: self.text_len,
            reasoning_len: self.reasoning_len,
            pieces: self.pieces,
            tokens: self.tokens,
            finish_reason: self.finish_reason,
            usage,
            metrics,
        }
    }

    fn add(&mut self, c: RawChoice<'a>) {
        self.count = self.count.saturating_add(1);
        let (mut text, mut reasoning, mut delta_ids) = (c.text.map(|s| s.0), None, None);
        if let Some(d) = c.delta {
            text = text.or(d.content.map(|s| s.0));
            reasoning = d.reasoning_content.or(d.reasoning).map(|s| s.0);
            delta_ids = d.token_ids;
        }
        let text = text.filter(|t| !t.is_empty());
        let reasoning = reasoning.filter(|t| !t.is_empty());
        if text.is_some() || reasoning.is_some() {
            self.pieces = self.pieces.saturating_add(1);
        }
        if let Some(t) = text {
            self.text_len += t.len();
            self.text.get_or_insert(t);
        }
        if let Some(r) = reasoning {
            self.reasoning_len += r.len();
            self.reasoning.get_or_insert(r);
        }
        let said = c
            .token_ids
            .or(delta_ids)
            .or(c.logprobs.and_then(|l| l.tokens.or(l.content)));
        if let Some(Count(n)) = said {
            self.tokens = Some(self.tokens.unwrap_or(0).saturating_add(n));
        }
        if self.finish_reason.is_none() {
            self.finish_reason = c.finish_reason.map(|s| s.0);
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Choices<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<Choices<'a>>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Choices<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array of choices")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Choices<'a>, A::Error> {
                let mut acc = Choices::default();
                while let Some(choice) = seq.next_element::<RawChoice<'a>>()? {
                    acc.add(choice);
                }
                Ok(acc)
            }
        }
        d.deserialize_seq(V(PhantomData))
    }
}

#[cfg(test)]
mod tests {
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
        let data =
            r#"{"choices":[{"text":"x","token_ids":[5,6]}],"usage":{"completion_tokens":6}}"#;
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
}
