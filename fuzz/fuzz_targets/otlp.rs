//! Fuzz target: OTLP span decoding into our model (`coordinator/src/analysis/otlp/`): the bytes
//! of an `ExportTraceServiceRequest` as a peer would send them, decoded by prost and
//! ingested by the receiver's collector (request spans, startup phases), under
//! default limits or tiny ones from the first bytes.
//!
//! Oracles besides "no panic": every span received is counted, the kept spans stay
//! within the limit, and what was collected survives a JSON round trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use servescope_coordinator::analysis::otlp::Collected;
use servescope_coordinator::orchestration::otlp_receiver::{Collector, Limits};
use servescope_proto::otlp::collector::trace::v1::ExportTraceServiceRequest;

fuzz_target!(|input: &[u8]| {
    let [mode, a, b, rest @ ..] = input else {
        return;
    };
    let limits = if mode & 1 == 0 {
        Limits::default()
    } else {
        Limits {
            max_spans: u64::from(*a),
            max_names: usize::from(*b % 16),
            max_attrs: usize::from(*b / 16),
            ..Limits::default()
        }
    };
    let Ok(req) = ExportTraceServiceRequest::decode(rest) else {
        return;
    };
    let sent: u64 = req
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .map(|s| s.spans.len() as u64)
        .sum();
    let c = Collector::new(limits);
    c.ingest(&req, Some("127.0.0.1"));
    c.ingest(&req, None);
    let got = c.snapshot();
    assert_eq!(got.stats.spans, 2 * sent, "{:?}", got.stats);
    assert!(got.stats.request_spans + got.stats.startup_spans <= limits.max_spans);
    assert!(got.requests.len() as u64 <= got.stats.request_spans);
    let json = serde_json::to_string(&got).expect("serialises");
    let back: Collected = serde_json::from_str(&json).expect("parses back");
    assert_eq!(back, got);
});
