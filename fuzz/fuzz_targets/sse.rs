//! Fuzz target: the SSE decoder fed arbitrary bytes split at fuzzer-chosen offsets,
//! then the OpenAI chunk decoder on every event.
//!
//! Oracles besides "no panic": the events and the error must not depend on how the
//! bytes were split (compared with one whole push), and the bounds must hold.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../loadgen/src/chunk/mod.rs"]
#[allow(dead_code)]
mod chunk;
#[path = "../../loadgen/src/sse.rs"]
#[allow(dead_code)]
mod sse;

use chunk::ChunkDecoder;
use sse::{Event, SseDecoder, SseError, SseLimits};

/// Decodes `input` cut into pieces of the given sizes (the rest in one piece).
fn run(limits: SseLimits, input: &[u8], cuts: &[u8]) -> (Vec<Event>, Result<(), SseError>) {
    let mut dec = SseDecoder::new(limits);
    let mut events = Vec::new();
    let mut rest = input;
    for &cut in cuts {
        let n = usize::from(cut).min(rest.len());
        let (piece, tail) = rest.split_at(n);
        rest = tail;
        if let Err(e) = dec.push(piece, &mut events) {
            return (events, Err(e));
        }
    }
    if let Err(e) = dec.push(rest, &mut events) {
        return (events, Err(e));
    }
    (events, dec.finish())
}

// Input: a mode byte, a count byte N, N chunk sizes, then the stream itself
// (so seeds are a two-byte header `\0\0` in front of a real stream).
fuzz_target!(|input: &[u8]| {
    let [mode, n, rest @ ..] = input else {
        return;
    };
    let (mode, n) = (*mode, usize::from(*n).min(rest.len()));
    let (cuts, bytes) = rest.split_at(n);
    // Small bounds half the time, so the limit paths are reached.
    let limits = if mode & 1 == 0 {
        SseLimits::default()
    } else {
        SseLimits {
            max_event_bytes: usize::from(mode >> 1) * 4,
            max_line_bytes: usize::from(mode >> 1) * 4 + 16,
        }
    };
    let (split_events, split_result) = run(limits, bytes, cuts);
    let (whole_events, whole_result) = run(limits, bytes, &[]);
    assert_eq!(split_events, whole_events);
    assert_eq!(split_result, whole_result);

    let mut chunks = ChunkDecoder::new();
    for ev in &split_events {
        assert!(ev.data.len() <= limits.max_event_bytes);
        match chunks.decode(&ev.data) {
            Ok(chunk::Chunk::Token(t)) => {
                assert!(t.text.as_ref().map_or(0, |s| s.len()) <= t.text_len);
                assert!(t.text_len + t.reasoning_len <= ev.data.len());
                let _ = t.token_count();
            }
            Ok(_) => {}
            Err(e) => assert_eq!(e.class(), chunk::StreamErrorClass::MalformedChunk),
        }
    }
});
