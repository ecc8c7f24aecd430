//! Fuzz target: libfabric `fi_pingpong` output (`fabric/src/libfabric/pingpong_parse.rs`)
//! and its size / count / time fields, on arbitrary text.
//!
//! Oracles besides "no panic": at most one row per input line, every row's numbers
//! finite and not negative.
#![no_main]

use libfuzzer_sys::fuzz_target;
use servescope_fabric::libfabric::pingpong_parse::{
    parse_count, parse_fi_pingpong, parse_size, parse_time,
};

fuzz_target!(|input: &[u8]| {
    let text = String::from_utf8_lossy(input);
    if let Ok(rows) = parse_fi_pingpong(&text) {
        assert!(rows.len() <= text.lines().count());
        for r in rows {
            for v in [r.time_s, r.mb_per_s, r.usec_per_xfer, r.mxfers_per_s] {
                assert!(v.is_finite() && v >= 0.0, "{r:?}");
            }
        }
    }
    for w in text.split_whitespace().take(16) {
        let _ = (parse_count(w), parse_size(w));
        if let Ok(t) = parse_time(w) {
            assert!(t.is_finite() && t >= 0.0, "{w:?} → {t}");
        }
    }
});
