//! Property test of the OTLP collector: random span names (vLLM's, near misses,
//! random), times (unset, out of range, backwards) and attribute values of every
//! type never panic, keep the counters consistent and never invent a phase. The
//! PRNG is a fixed-seed splitmix64, so failures reproduce.

mod otlp_common;

use std::collections::BTreeSet;

use otlp_common::*;
use servescope_coordinator::analysis::otlp::startup::kind_of;
use servescope_coordinator::analysis::otlp::summarize;
use servescope_coordinator::analysis::startup::PhaseKind as K;
use servescope_coordinator::orchestration::otlp_receiver::{Collector, Limits};
use servescope_proto::otlp::collector::trace::v1::ExportTraceServiceRequest;
use servescope_proto::otlp::common::v1::any_value::Value;
use servescope_proto::otlp::trace::v1::Span;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const NAMES: [&str; 16] = [
    "Loading (GPU)",
    "Load model",
    "Load weights",
    "Download weights - HF",
    "Compile graph",
    "Inductor compilation",
    "Dynamo bytecode transform",
    "Capture model",
    "Allocate KV cache",
    "Warmup (GPU)",
    "llm_request",
    "Worker init",
    "load weights",
    "",
    "Capture model ",
    "EngineCoreProc init",
];

fn random_time(rng: &mut Rng) -> u64 {
    match rng.below(10) {
        0 => 0,
        1 => u64::MAX - rng.below(1000),
        _ => T0 + rng.below(600 * S),
    }
}

fn random_value(rng: &mut Rng) -> Value {
    match rng.below(6) {
        0 => Value::DoubleValue(f64::from_bits(rng.next())),
        1 => Value::IntValue(rng.next() as i64),
        2 => Value::BoolValue(rng.below(2) == 0),
        3 => Value::BytesValue(rng.next().to_le_bytes().to_vec()),
        4 => s(&format!("{}", rng.below(1000) as f64 / 7.0)),
        _ => s(&"é".repeat(rng.below(700) as usize)),
    }
}

#[tokio::test]
async fn property_random_spans() {
    const KEYS: [&str; 5] = [
        "gen_ai.latency.time_to_first_token",
        "gen_ai.latency.e2e",
        "gen_ai.usage.prompt_tokens",
        "service.name",
        "x",
    ];
    let mut rng = Rng(0x5eed);
    let mut phases_seen = 0usize;
    for round in 0..200 {
        let c = Collector::new(Limits {
            max_spans: 1 + rng.below(80),
            max_names: 1 + rng.below(12) as usize,
            ..Limits::default()
        });
        let mut sent_valid: BTreeSet<String> = BTreeSet::new();
        let mut total = 0u64;
        let mut batch = Vec::new();
        for _ in 0..1 + rng.below(4) {
            let host = format!("h{}", rng.below(3));
            let res = if rng.below(4) == 0 {
                None
            } else {
                resource(&[("service.name", "vllm"), ("host.name", &host)])
            };
            let mut spans = Vec::new();
            for _ in 0..rng.below(40) {
                let name = if rng.below(5) == 0 {
                    format!("rnd{}", rng.below(50))
                } else {
                    NAMES[rng.below(NAMES.len() as u64) as usize].to_string()
                };
                let mut sp = Span {
                    name,
                    start_time_unix_nano: random_time(&mut rng),
                    end_time_unix_nano: random_time(&mut rng),
                    ..Default::default()
                };
                for _ in 0..rng.below(6) {
                    let k = KEYS[rng.below(KEYS.len() as u64) as usize];
                    sp.attributes.push(kv(k, random_value(&mut rng)));
                }
                let ok = i64::try_from(sp.start_time_unix_nano).is_ok()
                    && i64::try_from(sp.end_time_unix_nano).is_ok()
                    && sp.start_time_unix_nano > 0
                    && sp.end_time_unix_nano >= sp.start_time_unix_nano;
                if ok {
                    sent_valid.insert(sp.name.clone());
                }
                total += 1;
                spans.push(sp);
            }
            batch.push(rs(res, spans));
        }
        c.ingest(
            &ExportTraceServiceRequest {
                resource_spans: batch,
            },
            Some("10.0.0.1"),
        );
        let got = if round % 2 == 0 {
            c.snapshot()
        } else {
            c.take()
        };
        let st = got.stats;
        assert_eq!(st.spans, total);
        assert_eq!(
            st.request_spans + st.startup_spans + st.dropped + st.invalid,
            total
        );
        assert_eq!(got.requests.len() as u64, st.request_spans);
        for q in &got.requests {
            assert!(q.ttft_s.is_none_or(|v| v.is_finite() && v >= 0.0));
            assert!(q.e2e_s.is_none_or(|v| v.is_finite() && v >= 0.0));
        }
        let _ = summarize(&got.requests);
        for t in &got.startups {
            phases_seen += t.timeline.phases.len();
            for p in &t.timeline.phases {
                let (Some(a), Some(b)) = (p.start_ns, p.end_ns) else {
                    panic!("phase without times: {p:?}");
                };
                assert!(a <= b, "{p:?}");
                match p.kind {
                    K::Unattributed | K::TorchCompile | K::FirstRequest | K::FirstToken => {}
                    k => {
                        let name = &p.attrs["otlp.span"];
                        assert!(sent_valid.contains(name), "invented {name}");
                        assert_eq!(kind_of(name), Some(k));
                    }
                }
            }
            if t.timeline.get(K::TorchCompile).is_some() {
                assert!(
                    t.timeline.get(K::DynamoTransform).is_some()
                        || t.timeline.get(K::InductorCompile).is_some()
                );
            }
        }
    }
    assert!(
        phases_seen > 100,
        "the generator makes phases: {phases_seen}"
    );
}
