//! Fuzz target: startup-log parsing (`coordinator/src/analysis/startup/`: the line splitter
//! `line.rs`, the phase patterns `patterns.rs` through `logparse.rs`) on arbitrary
//! text, as vLLM and other engines' logs are read by `startup` commands.
//!
//! Oracles besides "no panic": the whole-text parse and the reader parse agree, and
//! the result survives a JSON round trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use servescope_coordinator::analysis::startup::{line, parse_reader, parse_str, ParseOptions};

fuzz_target!(|input: &[u8]| {
    let text = String::from_utf8_lossy(input);
    for l in text.split('\n').take(64) {
        let _ = line::parse(l);
    }
    let opts = ParseOptions::new(2026);
    let whole = parse_str(&text, "fuzz", opts.clone());
    let read = parse_reader(text.as_bytes(), "fuzz", opts).expect("reading memory");
    assert_eq!(whole, read);
    let json = serde_json::to_string(&whole).expect("serialises");
    let back: servescope_coordinator::analysis::startup::LogParse =
        serde_json::from_str(&json).expect("parses back");
    assert_eq!(back, whole);
});
