//! One request as the client saw it ([`RequestRecord`]) and its latencies, each
//! counted from the scheduled time and from the send time.

use serde::{Deserialize, Serialize};

const NS_PER_MS: f64 = 1e6;
pub(super) const NS_PER_S: f64 = 1e9;

/// One token-bearing SSE event as the client saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkArrival {
    /// Arrival time, ns on the client's clock.
    pub at_ns: u64,
    /// Output tokens this event carried (0 for a role-only or empty delta).
    pub tokens: u32,
}

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// Could not connect.
    Connect,
    /// No answer (or no progress) within the timeout.
    Timeout,
    /// Non-2xx HTTP status.
    HttpStatus(u16),
    /// The stream ended before `[DONE]`/the final chunk.
    StreamCut,
    /// An SSE event could not be parsed.
    MalformedChunk,
    /// The server reported an error inside the stream.
    ServerError,
    /// The output failed the correctness probe (e.g. gibberish).
    WrongOutput,
    /// Anything else, with a short description.
    Other(String),
}

impl ErrorClass {
    /// Stable key used in counts and exports: `connect`, `timeout`, `http_503`,
    /// `stream_cut`, `malformed_chunk`, `server_error`, `wrong_output`, `other`.
    pub fn key(&self) -> String {
        match self {
            ErrorClass::Connect => "connect".into(),
            ErrorClass::Timeout => "timeout".into(),
            ErrorClass::HttpStatus(code) => format!("http_{code}"),
            ErrorClass::StreamCut => "stream_cut".into(),
            ErrorClass::MalformedChunk => "malformed_chunk".into(),
            ErrorClass::ServerError => "server_error".into(),
            ErrorClass::WrongOutput => "wrong_output".into(),
            ErrorClass::Other(_) => "other".into(),
        }
    }
}

/// What the load client records for one request (all times ns on one monotonic clock).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestRecord {
    /// When the request was due (open-loop arrival, or when it started waiting for a
    /// concurrency slot). Latencies count from here.
    pub scheduled_ns: u64,
    /// When the request was written to the connection.
    pub send_ns: u64,
    /// First response byte (headers), if any.
    pub first_byte_ns: Option<u64>,
    /// First token-bearing chunk; defaults to `chunks[0].at_ns` when absent.
    pub first_token_ns: Option<u64>,
    /// Every token-bearing chunk in arrival order, the first one included.
    pub chunks: Vec<ChunkArrival>,
    /// Last response byte, if any.
    pub last_byte_ns: Option<u64>,
    /// When the client was done with the request (success or failure).
    pub finished_ns: u64,
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Output tokens (server `usage.completion_tokens`, else counted).
    pub output_tokens: u64,
    /// `None` for a success.
    pub error: Option<ErrorClass>,
}

/// Latencies of one request, in ms.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RequestLatencies {
    /// Scheduled → first token.
    pub ttft_ms: Option<f64>,
    /// Send → first token (vLLM's view).
    pub ttft_from_send_ms: Option<f64>,
    /// (E2EL − TTFT)/(output_tokens − 1); `None` when output_tokens ≤ 1 or no token.
    pub tpot_ms: Option<f64>,
    /// Scheduled → last token-bearing chunk.
    pub e2el_ms: f64,
    /// Send → last token-bearing chunk (vLLM's view).
    pub e2el_from_send_ms: f64,
    /// Send − scheduled.
    pub queue_wait_ms: f64,
    /// vLLM ITL: one gap per chunk after the first.
    pub itl_ms: Vec<f64>,
    /// Per-token ITL: a k-token chunk gives k samples of gap/k.
    pub itl_per_token_ms: Vec<f64>,
}

fn ms(from: u64, to: u64) -> f64 {
    (to as f64 - from as f64) / NS_PER_MS
}

impl RequestRecord {
    /// Whether the request succeeded.
    pub fn is_success(&self) -> bool {
        self.error.is_none()
    }

    /// First token time (`first_token_ns`, else the first chunk).
    pub fn first_token(&self) -> Option<u64> {
        self.first_token_ns
            .or_else(|| self.chunks.first().map(|c| c.at_ns))
    }

    /// End of the request's latency: last chunk, else last byte, else finish.
    pub fn latency_end_ns(&self) -> u64 {
        self.chunks
            .last()
            .map(|c| c.at_ns)
            .or(self.last_byte_ns)
            .unwrap_or(self.finished_ns)
    }

    /// Checks that the timestamps are ordered; `Err` names the first violation.
    pub fn validate(&self) -> Result<(), String> {
        if self.send_ns < self.scheduled_ns {
            return Err("send_ns is before scheduled_ns".into());
        }
        if self.finished_ns < self.send_ns {
            return Err("finished_ns is before send_ns".into());
        }
        let mut prev = self.send_ns;
        for (i, c) in self.chunks.iter().enumerate() {
            if c.at_ns < prev {
                return Err(format!("chunk {i} arrives before the previous event"));
            }
            prev = c.at_ns;
        }
        if let Some(t) = self.first_token() {
            if t < self.send_ns {
                return Err("first_token_ns is before send_ns".into());
            }
        }
        Ok(())
    }

    /// The request's latencies (meaningful for successes).
    pub fn latencies(&self) -> RequestLatencies {
        let end = self.latency_end_ns();
        let first = self.first_token();
        let e2el_ms = ms(self.scheduled_ns, end);
        let ttft_ms = first.map(|t| ms(self.scheduled_ns, t));
        let tpot_ms = match (ttft_ms, self.output_tokens) {
            (Some(ttft), n) if n > 1 => Some((e2el_ms - ttft) / (n - 1) as f64),
            _ => None,
        };
        let mut itl_ms = Vec::with_capacity(self.chunks.len().saturating_sub(1));
        let mut itl_per_token_ms = Vec::new();
        if let Some(c0) = self.chunks.first() {
            let mut prev_chunk = c0.at_ns;
            let mut prev_token = c0.at_ns;
            for c in &self.chunks[1..] {
                itl_ms.push(ms(prev_chunk, c.at_ns));
                prev_chunk = c.at_ns;
                if c.tokens > 0 {
                    let gap = ms(prev_token, c.at_ns) / f64::from(c.tokens);
                    itl_per_token_ms.extend(std::iter::repeat_n(gap, c.tokens as usize));
                    prev_token = c.at_ns;
                }
            }
        }
        RequestLatencies {
            ttft_ms,
            ttft_from_send_ms: first.map(|t| ms(self.send_ns, t)),
            tpot_ms,
            e2el_ms,
            e2el_from_send_ms: ms(self.send_ns, end),
            queue_wait_ms: ms(self.scheduled_ns, self.send_ns),
            itl_ms,
            itl_per_token_ms,
        }
    }
}
