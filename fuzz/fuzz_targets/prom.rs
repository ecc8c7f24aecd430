//! Fuzz target: the Prometheus/OpenMetrics exposition parser on arbitrary text,
//! then the window maths (histograms, quantiles, deltas) on what it kept.
//!
//! Oracles besides "no panic": the parse limits hold, the kept samples add up, a
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

use prom::{parse, ParseLimits, MAX_KEPT_ERRORS};
use window::EngineWindow;

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
    assert!(e.errors.len() <= MAX_KEPT_ERRORS && e.errors.len() <= e.errors_total);
    assert!(e.samples_total <= limits.max_samples && e.families.len() <= limits.max_samples);
    let kept: usize = e.families.values().map(|f| f.samples.len()).sum();
    assert_eq!(kept, e.samples_total);
    for f in e.families.values() {
        assert!(f
            .samples
            .iter()
            .all(|s| s.labels.len() <= limits.max_labels));
    }
    for name in e.families.keys().take(16) {
        if let Some(h) = e.histogram(name, &[]) {
            let top = h
                .buckets
                .iter()
                .rev()
                .find(|b| b.0.is_finite())
                .map(|b| b.0);
            for q in [0.0, 0.25, 0.5, 0.9, 1.0] {
                if let (Some(v), Some(top)) = (h.quantile(q), top) {
                    assert!(v.is_nan() || v <= top);
                }
            }
        }
    }
    let w = EngineWindow::from_expositions(&e, &e);
    let json = serde_json::to_string(&w).expect("serialise");
    let back: Result<EngineWindow, _> = serde_json::from_str(&json);
    assert!(back.is_ok());
});
