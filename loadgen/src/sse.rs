//! Incremental, bounded Server-Sent Events decoder for the load client's hot path.
//!
//! Feed it byte chunks exactly as they come off the socket ([`SseDecoder::push_with`] or
//! [`SseDecoder::push`]); it follows the W3C event-stream rules:
//! - lines end in `\n`, `\r\n` or `\r` (a `\r\n` split across two chunks is one terminator);
//! - `data:` lines are joined with `\n`; `event:`, `id:` (ignored if it holds NUL) and
//!   `retry:` (ASCII digits only) are kept; lines starting with `:` are comments (keep-alive
//!   pings); one space after the colon is stripped; a line without a colon is a field with
//!   an empty value; unknown fields are ignored; a leading UTF-8 BOM is dropped;
//! - a blank line dispatches the event, unless no `data:` line was seen (then it is dropped).
//!
//! Cost: every input byte is scanned once (`memchr2` for the terminators); a line that
//! arrives whole in one chunk and is the only `data:` line of its event is handed out
//! borrowed from that chunk without copying; otherwise bytes are copied into buffers the
//! decoder reuses, so there is no allocation per event once they have grown.
//!
//! Bounds: an event's data (joined) may not exceed [`SseLimits::max_event_bytes`] (default
//! 1 MiB) and a line [`SseLimits::max_line_bytes`]; either is a typed [`SseError`], checked
//! before anything is buffered. Invalid UTF-8 in a field the caller sees is
//! [`SseError::InvalidUtf8`]. After an error the decoder is spent: it returns that error
//! again. [`SseDecoder::finish`] reports a stream cut mid-event as [`SseError::StreamCut`].

use std::ops::Range;

use memchr::{memchr, memchr2};

/// Default upper bound on one event's data: 1 MiB.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 1 << 20;
/// Default upper bound on one line: a maximal `data:` line plus room for the field name.
pub const DEFAULT_MAX_LINE_BYTES: usize = DEFAULT_MAX_EVENT_BYTES + 1024;
/// Buffers grown beyond this by a large event are shrunk back after it, so an idle
/// decoder per in-flight request stays small.
const KEEP_CAPACITY: usize = 64 * 1024;

/// Size bounds of a decoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SseLimits {
    /// Maximum bytes of an event's data (its `data:` values joined with `\n`).
    pub max_event_bytes: usize,
    /// Maximum bytes of one line, terminator excluded.
    pub max_line_bytes: usize,
}

impl Default for SseLimits {
    fn default() -> Self {
        Self {
            max_event_bytes: DEFAULT_MAX_EVENT_BYTES,
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
        }
    }
}

/// Why a stream could not be decoded. Each ends that request, never the run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SseError {
    /// An event's data grew past the limit.
    #[error("SSE event larger than {limit} bytes")]
    EventTooLarge { limit: usize },
    /// A line grew past the limit.
    #[error("SSE line longer than {limit} bytes")]
    LineTooLarge { limit: usize },
    /// A dispatched field (`data`, `event` or `id`) is not UTF-8.
    #[error("SSE {field} field is not valid UTF-8 (valid up to byte {valid_up_to})")]
    InvalidUtf8 {
        field: &'static str,
        valid_up_to: usize,
    },
    /// The stream ended inside an event: bytes or fields without a dispatching blank line.
    #[error("stream cut mid-event: {pending_bytes} bytes not terminated by a blank line")]
    StreamCut { pending_bytes: usize },
}

/// A dispatched event, borrowed from the decoder or the chunk just pushed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventRef<'a> {
    /// The `event:` field; `None` means the default type, `message`.
    pub event_type: Option<&'a str>,
    /// The `data:` lines joined with `\n`.
    pub data: &'a str,
    /// The last `id:` seen on the stream so far (it persists across events).
    pub last_event_id: Option<&'a str>,
}

impl EventRef<'_> {
    /// The event type with the W3C default applied.
    pub fn event_type_or_default(&self) -> &str {
        self.event_type.unwrap_or("message")
    }

    /// An owned copy.
    pub fn to_event(self) -> Event {
        Event {
            event_type: self.event_type.map(str::to_owned),
            data: self.data.to_owned(),
            last_event_id: self.last_event_id.map(str::to_owned),
        }
    }
}

/// An owned event, for callers that prefer [`SseDecoder::push`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Event {
    pub event_type: Option<String>,
    pub data: String,
    pub last_event_id: Option<String>,
}

/// Where the current event's data lives.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Data {
    /// No `data:` line yet.
    None,
    /// One `data:` line, still inside the chunk being pushed.
    Input(Range<usize>),
    /// In `SseDecoder::data`.
    Owned,
}

/// Incremental SSE decoder; one per response stream.
#[derive(Debug)]
pub struct SseDecoder {
    limits: SseLimits,
    /// Bytes of a line not yet terminated (never holds a terminator).
    line: Vec<u8>,
    /// The previous chunk ended in `\r`: a leading `\n` in the next belongs to it.
    skip_lf: bool,
    /// The first line has not been seen (its BOM, if any, is still to strip).
    at_start: bool,
    data: Vec<u8>,
    data_src: Data,
    event_type: Vec<u8>,
    last_event_id: Option<Vec<u8>>,
    retry_ms: Option<u64>,
    /// A field line was seen since the last blank line.
    event_pending: bool,
    failed: Option<SseError>,
}

impl Default for SseDecoder {
    fn default() -> Self {
        Self::new(SseLimits::default())
    }
}

impl SseDecoder {
    /// A decoder with the given bounds.
    pub fn new(limits: SseLimits) -> Self {
        Self {
            limits,
            line: Vec::new(),
            skip_lf: false,
            at_start: true,
            data: Vec::new(),
            data_src: Data::None,
            event_type: Vec::new(),
            last_event_id: None,
            retry_ms: None,
            event_pending: false,
            failed: None,
        }
    }

    /// The bounds in force.
    pub fn limits(&self) -> SseLimits {
        self.limits
    }

    /// The last valid `retry:` value, in milliseconds.
    pub fn retry_ms(&self) -> Option<u64> {
        self.retry_ms
    }

    /// Decodes `bytes`, appending an owned [`Event`] to `out` for each dispatched event.
    /// Events dispatched before an error are still appended.
    pub fn push(&mut self, bytes: &[u8], out: &mut Vec<Event>) -> Result<(), SseError> {
        self.push_with(bytes, |ev| out.push(ev.to_event()))
    }

    /// Decodes `bytes`, calling `on_event` for each dispatched event without allocating.
    /// Events dispatched before an error have been delivered; after an error the decoder
    /// returns that error for every further call.
    pub fn push_with<F>(&mut self, bytes: &[u8], mut on_event: F) -> Result<(), SseError>
    where
        F: FnMut(EventRef<'_>),
    {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        let result = self.scan(bytes, &mut on_event);
        if let Err(err) = &result {
            self.failed = Some(err.clone());
        }
        result
    }

    /// Ends the stream. `Err(StreamCut)` if it stopped inside an event (a partial line, or
    /// field lines without the blank line that dispatches them); the earlier error if the
    /// decoder had failed.
    pub fn finish(self) -> Result<(), SseError> {
        if let Some(err) = self.failed {
            return Err(err);
        }
        if !self.line.is_empty() || self.event_pending {
            return Err(SseError::StreamCut {
                pending_bytes: self.line.len() + self.data_len(),
            });
        }
        Ok(())
    }

    fn scan<F: FnMut(EventRef<'_>)>(
        &mut self,
        input: &[u8],
        on_event: &mut F,
    ) -> Result<(), SseError> {
        let mut pos = 0;
        if self.skip_lf && !input.is_empty() {
            self.skip_lf = false;
            if input[0] == b'\n' {
                pos = 1;
            }
        }
        while pos < input.len() {
            let Some(off) = memchr2(b'\n', b'\r', &input[pos..]) else {
                let rest = &input[pos..];
                self.check_line(self.line.len() + rest.len())?;
                self.line.extend_from_slice(rest);
                break;
            };
            let end = pos + off;
            let next = if input[end] == b'\r' {
                match input.get(end + 1) {
                    Some(b'\n') => end + 2,
                    Some(_) => end + 1,
                    None => {
                        self.skip_lf = true;
                        end + 1
                    }
                }
            } else {
                end + 1
            };
            if self.line.is_empty() {
                self.check_line(end - pos)?;
                self.line_done(input, &input[pos..end], Some(pos..end), on_event)?;
            } else {
                self.check_line(self.line.len() + (end - pos))?;
                self.line.extend_from_slice(&input[pos..end]);
                let mut line = std::mem::take(&mut self.line);
                let result = self.line_done(input, &line, None, on_event);
                line.clear();
                shrink(&mut line);
                self.line = line;
                result?;
            }
            pos = next;
        }
        // The chunk goes away after this call: keep a borrowed data line.
        if let Data::Input(range) = &self.data_src {
            self.data.clear();
            self.data.extend_from_slice(&input[range.clone()]);
            self.data_src = Data::Owned;
        }
        Ok(())
    }

    fn check_line(&self, len: usize) -> Result<(), SseError> {
        if len > self.limits.max_line_bytes {
            return Err(SseError::LineTooLarge {
                limit: self.limits.max_line_bytes,
            });
        }
        Ok(())
    }

    fn data_len(&self) -> usize {
        match &self.data_src {
            Data::None => 0,
            Data::Input(range) => range.len(),
            Data::Owned => self.data.len(),
        }
    }

    /// Handles one complete line. `at` is its place in `input` when it lies there whole.
    fn line_done<F: FnMut(EventRef<'_>)>(
        &mut self,
        input: &[u8],
        mut line: &[u8],
        mut at: Option<Range<usize>>,
        on_event: &mut F,
    ) -> Result<(), SseError> {
        if self.at_start {
            self.at_start = false;
            if let Some(rest) = line.strip_prefix(b"\xEF\xBB\xBF") {
                line = rest;
                at = at.map(|r| r.start + 3..r.end);
            }
        }
        if line.is_empty() {
            return self.dispatch(input, on_event);
        }
        if line[0] == b':' {
            return Ok(());
        }
        let (field, value_start) = match memchr(b':', line) {
            Some(colon) if line.get(colon + 1) == Some(&b' ') => (&line[..colon], colon + 2),
            Some(colon) => (&line[..colon], colon + 1),
            None => (line, line.len()),
        };
        let value = &line[value_start..];
        match field {
            b"data" => {
                self.event_pending = true;
                let at = at.map(|r| r.start + value_start..r.end);
                self.append_data(input, value, at)?;
            }
            b"event" => {
                self.event_pending = true;
                self.event_type.clear();
                self.event_type.extend_from_slice(value);
            }
            b"id" if !value.contains(&0) => {
                self.event_pending = true;
                let id = self.last_event_id.get_or_insert_with(Vec::new);
                id.clear();
                id.extend_from_slice(value);
            }
            b"retry" if !value.is_empty() && value.iter().all(u8::is_ascii_digit) => {
                // All digits, so only overflow can fail: ignore such a value.
                if let Some(ms) = std::str::from_utf8(value).ok().and_then(|s| s.parse().ok()) {
                    self.retry_ms = Some(ms);
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn append_data(
        &mut self,
        input: &[u8],
        value: &[u8],
        at: Option<Range<usize>>,
    ) -> Result<(), SseError> {
        let new_len = match self.data_src {
            Data::None => value.len(),
            _ => self.data_len() + 1 + value.len(),
        };
        if new_len > self.limits.max_event_bytes {
            return Err(SseError::EventTooLarge {
                limit: self.limits.max_event_bytes,
            });
        }
        match (&self.data_src, at) {
            (Data::None, Some(range)) => self.data_src = Data::Input(range),
            (Data::None, None) => {
                self.data.clear();
                self.data.extend_from_slice(value);
                self.data_src = Data::Owned;
            }
            (Data::Input(range), _) => {
                self.data.clear();
                self.data.extend_from_slice(&input[range.clone()]);
                self.data.push(b'\n');
                self.data.extend_from_slice(value);
                self.data_src = Data::Owned;
            }
            (Data::Owned, _) => {
                self.data.push(b'\n');
                self.data.extend_from_slice(value);
            }
        }
        Ok(())
    }

    fn dispatch<F: FnMut(EventRef<'_>)>(
        &mut self,
        input: &[u8],
        on_event: &mut F,
    ) -> Result<(), SseError> {
        self.event_pending = false;
        let data_src = std::mem::replace(&mut self.data_src, Data::None);
        let result = (|| {
            let data = match &data_src {
                Data::None => return Ok(()),
                Data::Input(range) => &input[range.clone()],
                Data::Owned => &self.data[..],
            };
            let event = EventRef {
                event_type: match self.event_type.is_empty() {
                    true => None,
                    false => Some(utf8("event", &self.event_type)?),
                },
                data: utf8("data", data)?,
                last_event_id: match &self.last_event_id {
                    Some(id) => Some(utf8("id", id)?),
                    None => None,
                },
            };
            on_event(event);
            Ok(())
        })();
        self.event_type.clear();
        self.data.clear();
        shrink(&mut self.data);
        result
    }
}

fn utf8<'a>(field: &'static str, bytes: &'a [u8]) -> Result<&'a str, SseError> {
    std::str::from_utf8(bytes).map_err(|e| SseError::InvalidUtf8 {
        field,
        valid_up_to: e.valid_up_to(),
    })
}

fn shrink(buf: &mut Vec<u8>) {
    if buf.capacity() > KEEP_CAPACITY {
        buf.shrink_to(KEEP_CAPACITY / 16);
    }
}

#[cfg(test)]
pub(crate) mod tests;
