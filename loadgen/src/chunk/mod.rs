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
mod tests;
