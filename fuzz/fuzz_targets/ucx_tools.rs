//! Fuzz target: UCX tool output (`fabric/src/ucx/`: the `UCX_PROTO_INFO` protocol
//! selection tables of `proto_info.rs`, `ucx_perftest` results of
//! `perftest_parse.rs`) and NIXL's UCX lane lines (`fabric/src/nixl/lanes.rs`), on
//! arbitrary text.
//!
//! Oracles besides "no panic": what is parsed is bounded by the input, and the parse
//! is a function of the text (twice the same).
#![no_main]

use libfuzzer_sys::fuzz_target;
use servescope_fabric::nixl::lanes::from_stderr;
use servescope_fabric::ucx::perftest_parse::parse_perftest;
use servescope_fabric::ucx::proto_info::parse;

fuzz_target!(|input: &[u8]| {
    let text = String::from_utf8_lossy(input);
    let info = parse(&text);
    assert_eq!(info, parse(&text));
    let lines = text.lines().count();
    assert!(info.selections.len() <= lines && info.endpoint_configs.len() <= lines);
    let _ = info.emulated_over_tcp();
    let _ = parse_perftest(&text);
    let _ = from_stderr(&text, &["host", "cuda"]);
});
