//! Tests of the parser and the window maths against vLLM's real `/metrics`
//! (tests/fixtures/vllm-metrics/vllm-0.32.txt), hand-made OpenMetrics, broken
//! input and a seeded mutation run.

use servescope_proto::test_support::Rng;

use super::prom::{parse, Exposition, MetricKind, ParseLimits, MAX_KEPT_ERRORS};
use super::window::{counter_delta, hist_delta, Delta, EngineWindow, Hist};

const FIXTURE: &str = include_str!("../../../tests/fixtures/vllm-metrics/vllm-0.32.txt");

fn p(text: &str) -> Exposition {
    parse(text, ParseLimits::default())
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1.0)
}

const MODEL: [(&str, &str); 1] = [("model_name", "tiny-llama")];

/// Lookups whose values were read off the fixture by hand.
fn check_fixture_lookups(e: &Exposition) {
    assert_eq!(e.value("vllm:prompt_tokens_total", &MODEL), Some(39150.0));
    assert_eq!(e.value("vllm:num_requests_waiting", &[]), Some(0.0));
    assert_eq!(e.value("process_open_fds", &[]), Some(34.0));
    assert_eq!(
        e.value("process_resident_memory_bytes", &[]),
        Some(1.256554496e9)
    );
    assert_eq!(
        e.value(
            "vllm:request_success_total",
            &[("finished_reason", "length")]
        ),
        Some(421.0)
    );
    assert_eq!(e.value("vllm:request_success_total", &[]), Some(421.0));
    assert_eq!(
        e.value(
            "http_request_size_bytes_count",
            &[("handler", "/v1/completions")]
        ),
        Some(421.0)
    );
    assert_eq!(
        e.value("vllm:prompt_tokens_total", &[("engine", "7")]),
        None
    );
    assert_eq!(e.value("vllm:no_such_metric", &[]), None);

    let ttft = e
        .histogram("vllm:time_to_first_token_seconds", &MODEL)
        .expect("ttft");
    assert_eq!((ttft.count, ttft.buckets.len()), (421.0, 23));
    assert!(close(ttft.sum, 6.712751865386963));
    assert_eq!(ttft.buckets[1], (0.005, 123.0));
    assert_eq!(ttft.buckets[4], (0.04, 398.0));
    assert_eq!(ttft.buckets[22], (f64::INFINITY, 421.0));
    // rank 210.5 falls in (0.01, 0.02] holding 204..271.
    let p50 = ttft.quantile(0.5).expect("p50");
    assert!(close(p50, 0.01 + 0.01 * 6.5 / 67.0), "{p50}");

    let e2e = e
        .histogram("vllm:e2e_request_latency_seconds", &[])
        .expect("e2e");
    assert!(close(e2e.sum, 691.0391666889191));
    assert!(close(e2e.quantile(0.5).expect("p50"), 0.3 * 210.5 / 300.0));
    assert!(close(
        e2e.quantile(0.9).expect("p90"),
        5.0 + 5.0 * 17.9 / 35.0
    ));
    assert!(close(e2e.mean().expect("mean"), 691.0391666889191 / 421.0));

    // A histogram whose own name ends in _total.
    let it = e
        .histogram("vllm:iteration_tokens_total", &[])
        .expect("iteration tokens");
    assert_eq!((it.count, it.sum), (62926.0, 178198.0));

    assert_eq!(
        e.label_values("vllm:prompt_tokens_total", "model_name"),
        ["tiny-llama"]
    );
    assert_eq!(
        e.label_values("vllm:request_success", "finished_reason"),
        ["abort", "error", "length", "repetition", "stop"]
    );
    assert_eq!(
        e.label_values("vllm:e2e_request_latency_seconds", "engine"),
        ["0"]
    );
}

#[test]
fn the_vllm_fixture_parses_cleanly_with_its_real_values() {
    let e = p(FIXTURE);
    assert!(e.errors.is_empty(), "{:?}", e.errors);
    assert_eq!(e.errors_total, 0);
    let lines = FIXTURE
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .count();
    assert_eq!(e.samples_total, lines);
    let f = e.family("vllm:prompt_tokens_total").expect("family");
    assert_eq!(f.kind, MetricKind::Counter);
    assert_eq!(
        f.help.as_deref(),
        Some("Number of prefill tokens processed.")
    );
    assert_eq!(
        e.family("vllm:request_prompt_tokens").map(|f| f.kind),
        Some(MetricKind::Histogram)
    );
    assert_eq!(
        e.family("vllm:request_success_created").map(|f| f.kind),
        Some(MetricKind::Gauge)
    );
    check_fixture_lookups(&e);
}

#[test]
fn ray_sanitised_names_give_the_same_lookups() {
    let ray = FIXTURE.replace("vllm:", "ray_vllm_");
    assert!(ray.contains("ray_vllm_prompt_tokens_total{"));
    let e = p(&ray);
    assert!(e.errors.is_empty(), "{:?}", e.errors);
    check_fixture_lookups(&e);
    assert_eq!(
        e.value("ray_vllm_prompt_tokens_total", &[]),
        e.value("vllm_prompt_tokens_total", &[])
    );
    let plain = p(FIXTURE);
    assert!(e.families.keys().eq(plain.families.keys()));
    assert_eq!(
        super::canonical("ray_vllm_nixl_xfer_time_seconds"),
        "vllm:nixl_xfer_time_seconds"
    );
    assert_eq!(
        super::canonical("ray_serve_num_requests"),
        "ray_serve_num_requests"
    );
}

const OPENMETRICS: &str = "# HELP foo_seconds Latency with \\\"quotes\\\", \\\\ and\\nnewline.\r
# TYPE foo_seconds histogram\r
# UNIT foo_seconds seconds\r
foo_seconds_bucket{le=\"0.1\",path=\"/a\\\"b\\\\c\\nd\"} 1 # {trace_id=\"abc\"} 0.05 1700000000.5\r
foo_seconds_bucket{le=\"1.0\",path=\"/a\\\"b\\\\c\\nd\"} 3\r
foo_seconds_bucket{le=\"+Inf\",path=\"/a\\\"b\\\\c\\nd\"} 4\r
foo_seconds_count{path=\"/a\\\"b\\\\c\\nd\"} 4\r
foo_seconds_sum{path=\"/a\\\"b\\\\c\\nd\"} 2.5\r
foo_seconds_created{path=\"/a\\\"b\\\\c\\nd\"} 1700000000.123\r
\r
# TYPE requests counter
requests_total{code=\"200\",} 1.5e3 1700000001.25
requests_created{code=\"200\"} 1700000000
# TYPE temp gauge
temp NaN
temp_hot +Inf
temp_cold -Inf
# TYPE build info
build_info{version=\"1.2\"} 1
# EOF
";

#[test]
fn openmetrics_exemplars_escapes_created_timestamps_and_eof() {
    let e = p(OPENMETRICS);
    assert!(e.errors.is_empty(), "{:?}", e.errors);
    let path = "/a\"b\\c\nd";
    let f = e.family("foo_seconds").expect("family");
    assert_eq!(
        f.help.as_deref(),
        Some("Latency with \"quotes\", \\ and\nnewline.")
    );
    assert_eq!(f.samples.len(), 6, "_created kept as a sample");
    let h = e.histogram("foo_seconds", &[("path", path)]).expect("hist");
    assert_eq!(
        h.buckets,
        vec![(0.1, 1.0), (1.0, 3.0), (f64::INFINITY, 4.0)]
    );
    assert_eq!((h.count, h.sum), (4.0, 2.5));
    assert_eq!(e.value("foo_seconds_created", &[]), Some(1_700_000_000.123));

    assert_eq!(
        e.family("requests").map(|f| f.kind),
        Some(MetricKind::Counter)
    );
    assert_eq!(e.value("requests_total", &[("code", "200")]), Some(1500.0));
    let s = e.samples_named("requests_total").next().expect("sample");
    assert_eq!(s.timestamp_ms, Some(1_700_000_001_250));
    assert_eq!(e.value("requests_created", &[]), Some(1.7e9));

    assert!(e.value("temp", &[]).is_some_and(f64::is_nan));
    assert_eq!(e.value("temp_hot", &[]), Some(f64::INFINITY));
    assert_eq!(e.value("temp_cold", &[]), Some(f64::NEG_INFINITY));
    assert_eq!(e.family("build").map(|f| f.kind), Some(MetricKind::Info));
    assert_eq!(e.value("build_info", &[("version", "1.2")]), Some(1.0));

    let after_eof = p(&format!("{OPENMETRICS}late 1\n"));
    assert_eq!(after_eof.errors_total, 1);
    assert_eq!(after_eof.value("late", &[]), None);
    // 0.0.4: an integer timestamp is milliseconds.
    let prom = p("x 1 1700000000000\n");
    let ts = prom.samples_named("x").next().and_then(|s| s.timestamp_ms);
    assert_eq!(ts, Some(1_700_000_000_000));
}

#[test]
fn a_malformed_line_is_skipped_with_its_line_number() {
    let text = "ok_a 1\nbad{ 2\nok_b{l=\"v\"} 2\nok_c{l=\"v\" 3\n# TYPE ok_d nonsense\n\
                ok_e 1 2 3\nno_value\nx{l=\"\\q\"} 1\nok_f 4\n";
    let e = p(text);
    let lines: Vec<usize> = e.errors.iter().map(|x| x.line).collect();
    assert_eq!(lines, [2, 4, 5, 6, 7, 8], "{:?}", e.errors);
    assert_eq!(e.errors_total, 6);
    assert_eq!(e.samples_total, 3);
    for (n, v) in [("ok_a", 1.0), ("ok_b", 2.0), ("ok_f", 4.0)] {
        assert_eq!(e.value(n, &[]), Some(v));
    }
}

#[test]
fn limits_are_errors_not_panics() {
    let many: String = (0..100).map(|i| format!("m{i} 1\n")).collect();
    let lim = ParseLimits {
        max_samples: 3,
        ..ParseLimits::default()
    };
    let e = parse(&many, lim);
    assert_eq!((e.samples_total, e.errors_total), (3, 97));
    assert_eq!(e.errors.len(), MAX_KEPT_ERRORS);
    let lim = ParseLimits {
        max_labels: 2,
        max_line_bytes: 30,
        ..ParseLimits::default()
    };
    let e = parse(
        "a{x=\"1\",y=\"2\",z=\"3\"} 1\nb 1\nc{x=\"long long long long long\"} 1\n",
        lim,
    );
    assert_eq!(e.errors.iter().map(|x| x.line).collect::<Vec<_>>(), [1, 3]);
    assert_eq!(e.value("b", &[]), Some(1.0));
}

fn hist(buckets: &[(f64, f64)], sum: f64) -> Hist {
    Hist {
        buckets: buckets.to_vec(),
        sum,
        count: buckets.last().map_or(0.0, |b| b.1),
    }
}

#[test]
fn quantiles_interpolate_like_histogram_quantile() {
    let h = hist(
        &[(0.1, 2.0), (0.5, 6.0), (1.0, 8.0), (f64::INFINITY, 10.0)],
        5.0,
    );
    let q = |x| h.quantile(x).expect("quantile");
    assert!(close(q(0.5), 0.4)); // rank 5 in (0.1, 0.5]: 0.1 + 0.4 * 3/4
    assert!(close(q(0.1), 0.05)); // rank 1 in (0, 0.1]: 0.1 * 1/2
    assert!(close(q(0.8), 1.0));
    assert_eq!(q(0.95), 1.0, "+Inf bucket answers the highest finite bound");
    assert_eq!(q(0.0), 0.0);
    assert_eq!(h.mean(), Some(0.5));
    assert_eq!(h.quantile(1.5), None);
    assert_eq!(h.quantile(f64::NAN), None);
    assert_eq!(
        hist(&[(0.1, 0.0), (f64::INFINITY, 0.0)], 0.0).quantile(0.5),
        None
    );
    assert_eq!(hist(&[(0.1, 1.0), (1.0, 2.0)], 1.0).quantile(0.5), None);
}

#[test]
fn counter_deltas_per_series_with_resets_and_new_series() {
    let before = p("c_total{e=\"0\"} 100\nc_total{e=\"1\"} 50\n");
    // e0 restarted (100 -> 10) though the sum grew: still a reset.
    let after = p("c_total{e=\"0\"} 10\nc_total{e=\"1\"} 200\nc_total{e=\"2\"} 5\n");
    assert_eq!(
        counter_delta(&before, &after, "c_total", &[]),
        Some(Delta {
            value: 10.0 + 150.0 + 5.0,
            reset: true
        })
    );
    assert_eq!(
        counter_delta(&before, &after, "c_total", &[("e", "1")]),
        Some(Delta {
            value: 150.0,
            reset: false
        })
    );
    let empty = p("");
    assert_eq!(
        counter_delta(&empty, &after, "c_total", &[("e", "2")]),
        Some(Delta {
            value: 5.0,
            reset: false
        })
    );
    assert_eq!(counter_delta(&after, &empty, "c_total", &[]), None);
}

fn hist_text(counts: [u32; 3], sum: f64) -> String {
    format!(
        "# TYPE h histogram\nh_bucket{{le=\"1\"}} {}\nh_bucket{{le=\"2\"}} {}\n\
         h_bucket{{le=\"+Inf\"}} {}\nh_count {}\nh_sum {sum}\n",
        counts[0], counts[1], counts[2], counts[2]
    )
}

#[test]
fn histogram_deltas_resets_and_absent_before() {
    let before = p(&hist_text([2, 4, 5], 6.0));
    let after = p(&hist_text([3, 8, 11], 16.0));
    let d = hist_delta(&before, &after, "h", &[]).expect("delta");
    assert!(!d.reset);
    assert_eq!(
        d.value.buckets,
        vec![(1.0, 1.0), (2.0, 4.0), (f64::INFINITY, 6.0)]
    );
    assert_eq!((d.value.count, d.value.sum), (6.0, 10.0));
    // rank 3 of 6 falls in (1, 2], which holds ranks 1..4: 1 + 1 * (3 - 1) / 3
    assert!(close(d.value.quantile(0.5).expect("p50"), 1.0 + 2.0 / 3.0));

    let restarted = p(&hist_text([1, 1, 2], 1.0));
    let d = hist_delta(&after, &restarted, "h", &[]).expect("delta");
    assert!(d.reset);
    assert_eq!(d.value.count, 2.0);

    let d = hist_delta(&p(""), &after, "h", &[]).expect("delta");
    assert_eq!((d.value.count, d.reset), (11.0, false));
    assert!(hist_delta(&after, &p(""), "h", &[]).is_none());
}

#[test]
fn the_engine_window_over_the_fixture() {
    let fixture = p(FIXTURE);
    let w = EngineWindow::from_expositions(&p(""), &fixture);
    assert_eq!(w.requests.map(|d| d.value), Some(421.0));
    assert_eq!(w.prompt_tokens.map(|d| d.value), Some(39150.0));
    let ttft = w.ttft.as_ref().expect("ttft");
    assert!(close(
        ttft.value.quantile(0.5).expect("p50"),
        0.01 + 0.01 * 6.5 / 67.0
    ));
    assert_eq!(
        w.request_success.get("length").map(|d| d.value),
        Some(421.0)
    );
    assert_eq!(w.request_success.len(), 5);
    assert!(w.nixl_xfer_time.is_none() && w.nixl_failed_transfers.is_none());
    assert!(!w.reset);

    let json = serde_json::to_string(&w).expect("json");
    let back: EngineWindow = serde_json::from_str(&json).expect("back");
    assert_eq!(back, w, "+Inf buckets survive JSON");

    let same = EngineWindow::from_expositions(&fixture, &fixture);
    assert_eq!(same.requests.map(|d| d.value), Some(0.0));
    let restarted = p("# TYPE vllm:prompt_tokens_total counter\nvllm:prompt_tokens_total{engine=\"0\",model_name=\"tiny-llama\"} 7\n");
    let w = EngineWindow::from_expositions(&fixture, &restarted);
    assert!(w.reset);
    assert_eq!(
        w.prompt_tokens,
        Some(Delta {
            value: 7.0,
            reset: true
        })
    );
}

/// What the parser promises on any input `text` parsed with `lim` into `e`; the
/// mutation test below and the `prom` fuzz target (which includes this file) check
/// it: the limits hold, the kept samples add up, error lines lie within the text,
/// the histograms among the first `families` families (by name) keep every quantile
/// within their highest finite bound, and the window from `before` to `e` survives
/// a JSON round trip.
pub(super) fn check_invariants(
    text: &str,
    lim: ParseLimits,
    e: &Exposition,
    before: &Exposition,
    families: usize,
) {
    assert!(e.errors.len() <= MAX_KEPT_ERRORS && e.errors.len() <= e.errors_total);
    assert!(e.samples_total <= lim.max_samples && e.families.len() <= lim.max_samples);
    let kept: usize = e.families.values().map(|f| f.samples.len()).sum();
    assert_eq!(kept, e.samples_total);
    for f in e.families.values() {
        assert!(f.samples.iter().all(|s| s.labels.len() <= lim.max_labels));
    }
    let n_lines = text.split('\n').count();
    assert!(e
        .errors
        .iter()
        .all(|x| x.line >= 1 && x.line <= n_lines + 1));
    for name in e.families.keys().take(families) {
        let Some(h) = e.histogram(name, &[]) else {
            continue;
        };
        let top = h
            .buckets
            .iter()
            .rev()
            .find(|b| b.0.is_finite())
            .map(|b| b.0);
        for q in [0.0, 0.25, 0.5, 0.9, 0.99, 1.0] {
            if let (Some(v), Some(top)) = (h.quantile(q), top) {
                assert!(v.is_nan() || v <= top, "{name}: {v} > {top}");
            }
        }
    }
    let w = EngineWindow::from_expositions(before, e);
    let json = serde_json::to_string(&w).expect("json");
    let _: EngineWindow = serde_json::from_str(&json).expect("round trip");
}

const SYNTAX: &[u8] = b"{}\"=\\#\n\r ,._:le+-InfNaE0123456789abc_total_bucket# EOF\t";

fn mutate(rng: &mut Rng, base: &[u8]) -> Vec<u8> {
    let mut v = base.to_vec();
    for _ in 0..=rng.index(4) {
        match rng.index(5) {
            0 => {
                for _ in 0..=rng.index(16) {
                    let i = rng.index(v.len());
                    if let Some(b) = v.get_mut(i) {
                        *b = if rng.index(2) == 0 {
                            SYNTAX[rng.index(SYNTAX.len())]
                        } else {
                            rng.next() as u8
                        };
                    }
                }
            }
            1 => v.truncate(rng.index(v.len() + 1)),
            2 if !v.is_empty() => {
                let (a, n) = (rng.index(v.len()), rng.index(4096));
                let piece = v[a..(a + n).min(v.len())].to_vec();
                let at = rng.index(v.len());
                v.splice(at..at, piece);
            }
            3 => {
                v = (0..rng.index(3000))
                    .map(|_| SYNTAX[rng.index(SYNTAX.len())])
                    .collect()
            }
            _ => {
                v = (0..rng.index(3000))
                    .map(|_| (rng.index(95) + 32) as u8)
                    .collect()
            }
        }
    }
    v
}

#[test]
fn mutated_and_random_input_never_panics_and_stays_bounded() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let fixture = p(FIXTURE);
    let (mut with_errors, mut with_samples) = (0, 0);
    for round in 0..3000 {
        let bytes = mutate(&mut rng, FIXTURE.as_bytes());
        let text = String::from_utf8_lossy(&bytes);
        let lim = if round % 2 == 0 {
            ParseLimits::default()
        } else {
            ParseLimits {
                max_samples: 1 + rng.index(300),
                max_line_bytes: 1 + rng.index(300),
                max_labels: rng.index(5),
            }
        };
        let e = parse(&text, lim);
        with_errors += usize::from(e.errors_total > 0);
        with_samples += usize::from(e.samples_total > 0);
        // Every family's histogram (the vLLM latency ones included).
        check_invariants(&text, lim, &e, &fixture, usize::MAX);
    }
    // The inputs reached both the error paths and the sample paths.
    assert!(
        with_errors > 500 && with_samples > 500,
        "{with_errors} {with_samples}"
    );
}
