//! What a server said when it refused a request: the body of a non-2xx answer,
//! read up to [`BODY_LIMIT`] bytes and reduced to its message.
//!
//! OpenAI-compatible servers answer `{"error": {"message": …}}` (vLLM, OpenAI),
//! older vLLM builds `{"object": "error", "message": …}`, FastAPI validation
//! `{"detail": …}`; anything else is kept as text.

use hyper::StatusCode;
use serde_json::Value;

/// Bytes of an error body kept while reading it; the rest is not read.
pub const BODY_LIMIT: usize = 4096;

/// Characters of the message kept in the stored description.
pub const MESSAGE_LIMIT: usize = 2048;

/// Collects an error body, at most [`BODY_LIMIT`] bytes.
#[derive(Debug, Default, Clone)]
pub struct ErrorBody {
    buf: Vec<u8>,
    truncated: bool,
}

impl ErrorBody {
    /// Adds a frame; false once the limit is reached (stop reading).
    pub fn push(&mut self, bytes: &[u8]) -> bool {
        let room = BODY_LIMIT.saturating_sub(self.buf.len());
        if bytes.len() > room {
            self.truncated = true;
        }
        self.buf.extend_from_slice(&bytes[..bytes.len().min(room)]);
        !self.truncated
    }

    /// `HTTP 400 Bad Request: <the server's message>`, or the status alone when
    /// the body is empty.
    pub fn describe(&self, status: StatusCode) -> String {
        describe(status, &self.buf, self.truncated)
    }
}

/// The status line plus the server's message found in `body` (bounded).
pub fn describe(status: StatusCode, body: &[u8], truncated: bool) -> String {
    let head = format!("HTTP {status}");
    let message = message(body, truncated);
    if message.is_empty() {
        head
    } else {
        format!("{head}: {message}")
    }
}

/// The message in an error body, whitespace-collapsed and at most
/// [`MESSAGE_LIMIT`] characters ("…" marks a cut).
pub fn message(body: &[u8], truncated: bool) -> String {
    let text = String::from_utf8_lossy(body);
    let found = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| json_message(&v));
    let (raw, mut cut) = match found {
        Some(m) => (m, false),
        None => (text.into_owned(), truncated),
    };
    let collapsed = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out: String = collapsed.chars().take(MESSAGE_LIMIT).collect();
    cut |= out.len() < collapsed.len();
    if cut {
        out.push('…');
    }
    out
}

fn json_message(v: &Value) -> Option<String> {
    let text = |x: &Value| match x {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    };
    if let Some(e) = v.get("error") {
        return match e {
            Value::Object(_) => e.get("message").and_then(text).or_else(|| text(e)),
            other => text(other),
        };
    }
    v.get("message")
        .and_then(text)
        .or_else(|| v.get("detail").and_then(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openai_style_error_gives_its_message() {
        let b =
            br#"{"error":{"message":"too long","type":"BadRequestError","param":null,"code":400}}"#;
        assert_eq!(
            describe(StatusCode::BAD_REQUEST, b, false),
            "HTTP 400 Bad Request: too long"
        );
    }

    #[test]
    fn old_vllm_and_fastapi_shapes_are_read() {
        let old =
            br#"{"object":"error","message":"no such model","type":"NotFoundError","code":404}"#;
        assert_eq!(message(old, false), "no such model");
        let fastapi = br#"{"detail":[{"loc":["body","model"],"msg":"Field required"}]}"#;
        assert!(message(fastapi, false).contains("Field required"));
    }

    #[test]
    fn plain_text_is_kept_and_an_empty_body_leaves_the_status() {
        assert_eq!(
            describe(StatusCode::BAD_GATEWAY, b"upstream\n  down", false),
            "HTTP 502 Bad Gateway: upstream down"
        );
        assert_eq!(
            describe(StatusCode::SERVICE_UNAVAILABLE, b"", false),
            "HTTP 503 Service Unavailable"
        );
    }

    #[test]
    fn a_huge_body_is_bounded_and_marked_cut() {
        let mut e = ErrorBody::default();
        let chunk = vec![b'x'; 3000];
        assert!(e.push(&chunk));
        assert!(!e.push(&chunk));
        assert!(!e.push(&chunk));
        let d = e.describe(StatusCode::INTERNAL_SERVER_ERROR);
        assert!(d.ends_with('…'), "{d}");
        assert!(d.chars().count() <= MESSAGE_LIMIT + 40, "{}", d.len());
        let long = format!(r#"{{"error":{{"message":"{}"}}}}"#, "é".repeat(3000));
        let m = message(long.as_bytes(), false);
        assert_eq!(m.chars().count(), MESSAGE_LIMIT + 1);
        assert!(m.ends_with('…'));
    }
}
