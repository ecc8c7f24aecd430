//! Fuzz target: `/proc/PID/maps` parsing for the UCX / libfabric an engine has mapped
//! (`fabric/src/engine_libs.rs`), on arbitrary text.
//!
//! Oracles besides "no panic": every library found is a path of the input, found once.
#![no_main]

use libfuzzer_sys::fuzz_target;
use servescope_fabric::engine_libs::{has_cuda_transport, parse_maps};

fuzz_target!(|input: &[u8]| {
    let text = String::from_utf8_lossy(input);
    let libs = parse_maps(&text);
    for (i, (kind, path)) in libs.iter().enumerate() {
        assert!(text.contains(path.as_str()), "{path:?}");
        assert!(!libs[..i].iter().any(|(k, p)| k == kind && p == path));
    }
    let names: Vec<&str> = text.split_whitespace().take(64).collect();
    let _ = has_cuda_transport(&names);
});
