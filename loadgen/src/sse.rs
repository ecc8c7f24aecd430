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
pub(crate) mod tests {
    use super::*;

    fn decode_all(limits: SseLimits, pieces: &[&[u8]]) -> (Vec<Event>, Result<(), SseError>) {
        let mut dec = SseDecoder::new(limits);
        let mut out = Vec::new();
        for piece in pieces {
            if let Err(e) = dec.push(piece, &mut out) {
                return (out, Err(e));
            }
        }
        (out, dec.finish())
    }

    fn events(input: &[u8]) -> Vec<Event> {
        let (out, res) = decode_all(SseLimits::default(), &[input]);
        assert_eq!(res, Ok(()));
        out
    }

    fn data(input: &[u8]) -> Vec<String> {
        events(input).into_iter().map(|e| e.data).collect()
    }

    fn ev(data: &str) -> Event {
        Event {
            data: data.into(),
            ..Event::default()
        }
    }

    #[test]
    fn data_lines_join_with_newline() {
        assert_eq!(data(b"data: a\ndata: b\n\ndata: c\n\n"), ["a\nb", "c"]);
        assert_eq!(data(b"data\n\ndata:\ndata:\n\n"), ["", "\n"]);
    }

    #[test]
    fn one_leading_space_stripped_and_field_parsing() {
        assert_eq!(data(b"data:x\n\ndata:  x \n\n"), ["x", " x "]);
        assert_eq!(data(b"data: a:b: c\n\n"), ["a:b: c"]);
        // Unknown fields and case-mismatched names are ignored.
        assert_eq!(data(b"Data: no\nfoo: bar\ndata: yes\n\n"), ["yes"]);
    }

    #[test]
    fn comments_are_ignored() {
        assert_eq!(
            data(b": ping\n\n:\ndata: x\n: mid\ndata: y\n\n: tail\n"),
            ["x\ny"]
        );
        // A comment may hold anything, invalid UTF-8 included.
        assert_eq!(data(b":\xff\xfe\ndata: z\n\n"), ["z"]);
    }

    #[test]
    fn blank_line_without_data_dispatches_nothing() {
        assert!(events(b"\n\n\nevent: x\n\nid: 1\n\n").is_empty());
        // The event type was reset by that blank line; the id persists.
        let out = events(b"event: x\n\ndata: d\n\n");
        assert_eq!(out, [ev("d")]);
    }

    #[test]
    fn event_id_and_retry_fields() {
        let out = events(b"event: add\nid: 7\nretry: 1500\ndata: a\n\ndata: b\n\nid\ndata: c\n\n");
        assert_eq!(out[0].event_type.as_deref(), Some("add"));
        assert_eq!(out[0].last_event_id.as_deref(), Some("7"));
        assert_eq!(out[1].event_type, None);
        assert_eq!(out[1].last_event_id.as_deref(), Some("7"));
        assert_eq!(out[2].last_event_id.as_deref(), Some(""));
        let mut dec = SseDecoder::default();
        let mut sink = Vec::new();
        dec.push(
            b"retry: 1500\nretry: 12x\nretry:\nretry: 99999999999999999999999\n",
            &mut sink,
        )
        .unwrap();
        assert_eq!(dec.retry_ms(), Some(1500));
        // An id holding NUL is ignored.
        let out = events(b"id: 1\ndata: a\n\nid: 2\0\ndata: b\n\n");
        assert_eq!(out[1].last_event_id.as_deref(), Some("1"));
        let e = out[0].clone();
        assert_eq!(
            EventRef {
                event_type: None,
                data: &e.data,
                last_event_id: None
            }
            .event_type_or_default(),
            "message"
        );
    }

    #[test]
    fn all_line_terminators() {
        let want = ["a\nb", "c"];
        assert_eq!(data(b"data: a\r\ndata: b\r\n\r\ndata: c\r\n\r\n"), want);
        assert_eq!(data(b"data: a\rdata: b\r\rdata: c\r\r"), want);
        assert_eq!(data(b"data: a\rdata: b\n\r\ndata: c\n\r"), want);
    }

    #[test]
    fn crlf_split_across_chunks() {
        // "\r" ends one chunk, "\n" starts the next: one terminator, not a blank line.
        let (out, res) = decode_all(
            SseLimits::default(),
            &[b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n"],
        );
        assert_eq!(res, Ok(()));
        assert_eq!(out, [ev("a\nb")]);
        // An empty push between them changes nothing.
        let (out, _) = decode_all(SseLimits::default(), &[b"data: a\r", b"", b"\n\r\n"]);
        assert_eq!(out, [ev("a")]);
        // A lone "\r" at a chunk end followed by another line.
        let (out, _) = decode_all(SseLimits::default(), &[b"data: a\r", b"\r"]);
        assert_eq!(out, [ev("a")]);
    }

    #[test]
    fn leading_bom_is_stripped_even_when_split() {
        assert_eq!(data(b"\xEF\xBB\xBFdata: x\n\n"), ["x"]);
        let (out, _) = decode_all(
            SseLimits::default(),
            &[b"\xEF", b"\xBB", b"\xBFdata: x\n\n"],
        );
        assert_eq!(out, [ev("x")]);
        // Only at the start of the stream.
        assert!(matches!(
            decode_all(
                SseLimits::default(),
                &[b"data: x\n\n\xEF\xBB\xBFdata: y\n\n"]
            )
            .0[..],
            [_]
        ));
    }

    #[test]
    fn single_line_event_is_borrowed_from_input() {
        let input = b"data: {\"x\":1}\n\n";
        let mut dec = SseDecoder::default();
        let mut seen = 0;
        dec.push_with(input, |e| {
            let range = input.as_ptr_range();
            assert!(range.contains(&e.data.as_ptr()));
            seen += 1;
        })
        .unwrap();
        assert_eq!(seen, 1);
        assert!(dec.data.capacity() == 0, "nothing copied");
    }

    #[test]
    fn every_split_offset_matches_whole_push() {
        let input: &[u8] =
            b"\xEF\xBB\xBF: hi\r\nevent: e\r\nid: 1\r\ndata: one\r\ndata: two\r\n\r\ndata:x\r\rdata: y\n\n: c\n";
        let whole = events(input);
        assert_eq!(whole.len(), 3);
        for i in 0..=input.len() {
            for j in i..=input.len() {
                let (out, res) = decode_all(
                    SseLimits::default(),
                    &[&input[..i], &input[i..j], &input[j..]],
                );
                assert_eq!(res, Ok(()), "split at {i},{j}");
                assert_eq!(out, whole, "split at {i},{j}");
            }
        }
        let pieces: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(decode_all(SseLimits::default(), &pieces).0, whole);
    }

    #[test]
    fn events_larger_than_64k_work() {
        let payload = "x".repeat(200 * 1024);
        let input = format!("data: {payload}\n\n");
        assert_eq!(data(input.as_bytes()), std::slice::from_ref(&payload));
        // In 16 KiB reads, as from a socket.
        let pieces: Vec<&[u8]> = input.as_bytes().chunks(16 * 1024).collect();
        let (out, res) = decode_all(SseLimits::default(), &pieces);
        assert_eq!(res, Ok(()));
        assert_eq!(out[0].data.len(), payload.len());
        // As many 1 KiB data lines.
        let line = "y".repeat(1023);
        let multi: String = (0..200)
            .map(|_| format!("data: {line}\n"))
            .collect::<String>()
            + "\n";
        assert_eq!(data(multi.as_bytes())[0].len(), 200 * 1024 - 1);
    }

    #[test]
    fn buffers_shrink_after_a_large_event() {
        let mut dec = SseDecoder::default();
        let big = format!("data: {}\n\n", "z".repeat(300 * 1024));
        for piece in big.as_bytes().chunks(1000) {
            dec.push_with(piece, |_| {}).unwrap();
        }
        assert!(dec.data.capacity() <= KEEP_CAPACITY);
        assert!(dec.line.capacity() <= KEEP_CAPACITY);
    }

    #[test]
    fn event_size_limit() {
        let limits = SseLimits {
            max_event_bytes: 10,
            max_line_bytes: 100,
        };
        let (out, res) = decode_all(limits, &[b"data: 0123456789\n\n"]);
        assert_eq!((out.len(), res), (1, Ok(())));
        let (_, res) = decode_all(limits, &[b"data: 0123456789A\n\n"]);
        assert_eq!(res, Err(SseError::EventTooLarge { limit: 10 }));
        // Joined lines count, with their "\n".
        let (_, res) = decode_all(limits, &[b"data: 01234\ndata: 5678\n", b"\n"]);
        assert_eq!(res, Ok(()));
        let (_, res) = decode_all(limits, &[b"data: 01234\n", b"data: 56789\n\n"]);
        assert_eq!(res, Err(SseError::EventTooLarge { limit: 10 }));
        // The default is 1 MiB.
        let over = format!("data: {}\n\n", "a".repeat(DEFAULT_MAX_EVENT_BYTES + 1));
        let (_, res) = decode_all(SseLimits::default(), &[over.as_bytes()]);
        assert_eq!(res, Err(SseError::EventTooLarge { limit: 1 << 20 }));
        let at = format!("data: {}\n\n", "a".repeat(DEFAULT_MAX_EVENT_BYTES));
        assert_eq!(decode_all(SseLimits::default(), &[at.as_bytes()]).1, Ok(()));
    }

    #[test]
    fn line_size_limit_even_without_terminator() {
        let limits = SseLimits {
            max_event_bytes: 100,
            max_line_bytes: 8,
        };
        assert_eq!(decode_all(limits, &[b": 345678\n"]).1, Ok(()));
        let (_, res) = decode_all(limits, &[b": 3456789\n"]);
        assert_eq!(res, Err(SseError::LineTooLarge { limit: 8 }));
        // A line that never ends is refused as soon as it is too long.
        let mut dec = SseDecoder::new(limits);
        let mut out = Vec::new();
        dec.push(b"data: 12", &mut out).unwrap();
        assert_eq!(
            dec.push(b"3", &mut out),
            Err(SseError::LineTooLarge { limit: 8 })
        );
    }

    #[test]
    fn errors_are_sticky_and_keep_earlier_events() {
        let limits = SseLimits {
            max_event_bytes: 4,
            max_line_bytes: 64,
        };
        let mut dec = SseDecoder::new(limits);
        let mut out = Vec::new();
        let err = dec.push(b"data: ok\n\ndata: too long\n\ndata: x\n\n", &mut out);
        assert_eq!(err, Err(SseError::EventTooLarge { limit: 4 }));
        assert_eq!(out, [ev("ok")]);
        assert_eq!(dec.push(b"data: y\n\n", &mut out), err);
        assert_eq!(dec.finish(), err);
    }

    #[test]
    fn invalid_utf8_is_an_error() {
        let (out, res) = decode_all(SseLimits::default(), &[b"data: a\n\ndata: ab\xff\n\n"]);
        assert_eq!(out.len(), 1);
        assert_eq!(
            res,
            Err(SseError::InvalidUtf8 {
                field: "data",
                valid_up_to: 2
            })
        );
        // Split inside a multi-byte character is fine.
        let (out, res) = decode_all(SseLimits::default(), &[b"data: \xC3", b"\xA9\n\n"]);
        assert_eq!((out, res), (vec![ev("\u{e9}")], Ok(())));
        let (_, res) = decode_all(SseLimits::default(), &[b"event: \xC3\ndata: x\n\n"]);
        assert!(matches!(
            res,
            Err(SseError::InvalidUtf8 { field: "event", .. })
        ));
        let (_, res) = decode_all(SseLimits::default(), &[b"id: \xC3\ndata: x\n\n"]);
        assert!(matches!(
            res,
            Err(SseError::InvalidUtf8 { field: "id", .. })
        ));
    }

    #[test]
    fn finish_reports_a_cut_stream() {
        assert_eq!(
            decode_all(SseLimits::default(), &[b"data: a\n\n: ping\n"]).1,
            Ok(())
        );
        assert_eq!(
            decode_all(SseLimits::default(), &[b"data: a\n\r"]).1,
            Ok(())
        );
        assert_eq!(decode_all(SseLimits::default(), &[b""]).1, Ok(()));
        let (_, res) = decode_all(SseLimits::default(), &[b"data: a\n\ndata: {\"x\""]);
        assert_eq!(res, Err(SseError::StreamCut { pending_bytes: 10 }));
        let (_, res) = decode_all(SseLimits::default(), &[b"data: abc\n"]);
        assert_eq!(res, Err(SseError::StreamCut { pending_bytes: 3 }));
        let (_, res) = decode_all(SseLimits::default(), &[b"data: a\n\nevent: x\n"]);
        assert_eq!(res, Err(SseError::StreamCut { pending_bytes: 0 }));
        let (_, res) = decode_all(SseLimits::default(), &[b": partial comment"]);
        assert!(matches!(res, Err(SseError::StreamCut { .. })));
    }

    /// xorshift64*: deterministic, no dependency.
    pub(crate) struct Rng(u64);

    impl Rng {
        pub(crate) fn new(seed: u64) -> Self {
            Self(seed | 1)
        }
        pub(crate) fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        pub(crate) fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    #[test]
    fn random_bytes_never_panic_and_splits_do_not_matter() {
        const ALPHABET: &[&[u8]] = &[
            b"data:",
            b"data: ",
            b"event:",
            b"id:",
            b"retry:",
            b":",
            b" ",
            b"\n",
            b"\r",
            b"\r\n",
            b"x",
            b"{}",
            b"\xff",
            b"\xC3",
            b"\xA9",
            b"\xEF\xBB\xBF",
            b"\0",
            b"12",
        ];
        let mut rng = Rng::new(0x5eed);
        for round in 0..3000 {
            let mut input = Vec::new();
            for _ in 0..rng.below(60) {
                if rng.below(4) == 0 {
                    input.push(rng.next() as u8);
                } else {
                    input.extend_from_slice(ALPHABET[rng.below(ALPHABET.len())]);
                }
            }
            let limits = if round % 2 == 0 {
                SseLimits::default()
            } else {
                SseLimits {
                    max_event_bytes: rng.below(24),
                    max_line_bytes: rng.below(32),
                }
            };
            let whole = decode_all(limits, &[&input]);
            let mut pieces = Vec::new();
            let mut rest = &input[..];
            while !rest.is_empty() {
                let (a, b) = rest.split_at(rng.below(rest.len() + 1));
                pieces.push(a);
                rest = b;
            }
            assert_eq!(
                decode_all(limits, &pieces),
                whole,
                "input {input:?} pieces {pieces:?}"
            );
            for e in &whole.0 {
                assert!(e.data.len() <= limits.max_event_bytes);
            }
        }
    }
}
