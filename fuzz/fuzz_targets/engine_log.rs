//! Fuzz target: engine-log lines for P/D attribution (`coordinator/src/analysis/pd/logs.rs`:
//! `KV Transfer metrics` lines, request-id lines, NIXL failures) on arbitrary text.
//!
//! Oracles besides "no panic": the counts are bounded by the lines read (a line can
//! name a failure and up to three request events), and the summed KV stats are never
//! negative.
#![no_main]

use libfuzzer_sys::fuzz_target;
use servescope_coordinator::analysis::pd::logs;

fuzz_target!(|input: &[u8]| {
    let text = String::from_utf8_lossy(input);
    let log = logs::parse(&text);
    let lines = text.split('\n').count();
    assert!(log.lines <= lines, "{} > {lines}", log.lines);
    assert!(log.transfer_failures <= lines && log.requests.len() <= 3 * lines);
    assert!(log.kv.lines <= lines);
    for v in [
        log.kv.transfers,
        log.kv.bytes,
        log.kv.xfer_s,
        log.kv.failed,
        log.kv.expired,
    ] {
        assert!(!(v < 0.0), "{log:?}");
    }
    for r in &log.requests {
        assert!(r.line <= lines);
    }
});
