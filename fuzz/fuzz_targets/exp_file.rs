//! Fuzz target: experiment files (`coordinator/src/orchestration/exp/file.rs`, YAML) on arbitrary
//! text, and the `IN:OUT` length lists they hold.
//!
//! Oracles besides "no panic": an accepted file written back as YAML is accepted again
//! as the same experiment.
#![no_main]

use libfuzzer_sys::fuzz_target;
use servescope_coordinator::orchestration::exp::file::{parse, parse_lengths};

fuzz_target!(|input: &[u8]| {
    let Ok(text) = std::str::from_utf8(input) else {
        return;
    };
    let _ = parse_lengths(text);
    if let Ok(f) = parse(text) {
        let yaml = serde_yaml::to_string(&f).expect("an experiment serialises");
        let again = parse(&yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
        assert_eq!(again, f, "{yaml}");
    }
});
