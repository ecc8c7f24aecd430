//! Fuzz target: GuideLLM JSON report imports (`coordinator/src/analysis/load/guidellm*`) on
//! arbitrary text.
//!
//! Oracles besides "no panic": recognising a report never depends on more than the
//! parsed JSON value, and an imported report serialises.
#![no_main]

use libfuzzer_sys::fuzz_target;
use servescope_coordinator::analysis::load::guidellm::{import_str, looks_like_guidellm};

fuzz_target!(|input: &[u8]| {
    let Ok(text) = std::str::from_utf8(input) else {
        return;
    };
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(text) {
        let _ = looks_like_guidellm(&v);
    }
    if let Ok(r) = import_str(text, "fuzz.json") {
        serde_json::to_string(&r).expect("an imported report serialises");
    }
});
