//! Fuzz target: the Prometheus/OpenMetrics exposition parser on arbitrary text,
//! then the window maths (histograms, quantiles, deltas) on what it kept.
//!
//! Oracles besides "no panic" (the engine unit tests' `check_invariants`): the parse
//! limits hold, the kept samples add up, error lines lie within the text, a
//! quantile never exceeds the highest finite bucket bound, and an engine window
//! survives a JSON round trip.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../coordinator/src/analysis/engine/lex.rs"]
#[allow(dead_code)]
mod lex;
#[path = "../../coordinator/src/analysis/engine/pfloat.rs"]
#[allow(dead_code)]
mod pfloat;
#[path = "../../coordinator/src/analysis/engine/prom.rs"]
#[allow(dead_code)]
mod prom;
#[path = "../../coordinator/src/analysis/engine/window.rs"]
#[allow(dead_code)]
mod window;
// The unit tests' oracle (`check_invariants`); their `#[test]` functions are not
// built here.
#[path = "../../coordinator/src/analysis/engine/tests.rs"]
#[allow(dead_code, unused_imports)]
mod tests;

use prom::{parse, ParseLimits};

// Input: a mode byte (odd: small limits from the next three bytes), then the text
// (lossy UTF-8).
fuzz_target!(|input: &[u8]| {
    let [mode, a, b, c, rest @ ..] = input else {
        return;
    };
    let limits = if mode & 1 == 0 {
        ParseLimits::default()
    } else {
        ParseLimits {
            max_samples: usize::from(*a),
            max_line_bytes: usize::from(*b) * 4,
            max_labels: usize::from(*c % 8),
        }
    };
    let text = String::from_utf8_lossy(rest);
    let e = parse(&text, limits);
    // The histograms of the first 16 families: enough to reach the bucket maths.
    tests::check_invariants(&text, limits, &e, &e, 16);
});
