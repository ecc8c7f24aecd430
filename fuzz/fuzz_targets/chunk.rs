//! Fuzz target: the streaming-chunk decoder's fast scanner against serde.
//!
//! `decode_chunk` tries a hand scanner for the common chunk shape before serde;
//! `decode_chunk_serde` is serde alone. On any input both must give the same chunk,
//! or both an error. Then the input's lines as one stream's events: a stream decoder
//! (fast scanner with its per-stream prefix cache) and a serde-only one must agree
//! event by event.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../loadgen/src/chunk/mod.rs"]
#[allow(dead_code)]
mod chunk;
#[path = "../../loadgen/src/sse.rs"]
#[allow(dead_code)]
mod sse;

fuzz_target!(|input: &[u8]| {
    let Ok(data) = std::str::from_utf8(input) else {
        return;
    };
    match (chunk::decode_chunk(data), chunk::decode_chunk_serde(data)) {
        (Ok(a), Ok(b)) => assert_eq!(a, b),
        (Err(_), Err(_)) => {}
        (a, b) => panic!("fast {a:?} vs serde {b:?}"),
    }
    let (mut fast, mut slow) = (chunk::ChunkDecoder::new(), chunk::ChunkDecoder::serde_only());
    for line in data.split('\n') {
        match (fast.decode(line), slow.decode(line)) {
            (Ok(a), Ok(b)) => assert_eq!(a, b),
            (Err(_), Err(_)) => {}
            (a, b) => panic!("stream: fast {a:?} vs serde {b:?} on {line:?}"),
        }
    }
});
