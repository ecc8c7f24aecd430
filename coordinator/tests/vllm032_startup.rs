//! Startup logs of a real vLLM 0.32 (CPU build) server (`fixtures/vllm032`, as
//! captured): every duration the engine printed is placed, the waterfall rows never
//! overlap, nothing printed during startup is taken for a first request, and lines
//! the table cannot place are flagged.

use std::path::Path;

use servescope_coordinator::analysis::startup::compare::{compare, Labeled};
use servescope_coordinator::analysis::startup::{
    parse_str, LogParse, ParseOptions, PhaseKind as K, Timeline,
};

const S: i64 = 1_000_000_000;

fn read(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/vllm032")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn parse(text: &str) -> LogParse {
    parse_str(text, "vllm032", ParseOptions::new(2026))
}

fn secs(t: &Timeline, k: K) -> f64 {
    t.get(k)
        .and_then(|p| p.seconds())
        .unwrap_or_else(|| panic!("no {k:?}: {t:#?}"))
}

fn attr<'a>(t: &'a Timeline, k: K, key: &str) -> &'a str {
    t.get(k)
        .and_then(|p| p.attrs.get(key))
        .map_or_else(|| panic!("no {key} on {k:?}: {t:#?}"), String::as_str)
}

/// Waterfall rows (unattributed gaps included) sorted by start: consecutive rows
/// overlap by at most the log's 1 s timestamp resolution, and a gap never overlaps
/// a row at all.
fn assert_rows_disjoint(t: &Timeline) {
    let mut rows: Vec<(i64, i64, K)> = t
        .rows()
        .filter_map(|p| Some((p.start_ns?, p.end_ns?, p.kind)))
        .collect();
    rows.sort();
    for w in rows.windows(2) {
        let ((_, e0, k0), (s1, _, k1)) = (w[0], w[1]);
        let slack = if k0 == K::Unattributed || k1 == K::Unattributed {
            0
        } else {
            S
        };
        assert!(s1 >= e0 - slack, "{k0:?} overlaps {k1:?}: {rows:?}");
    }
}

#[test]
fn vllm032_every_printed_duration_is_placed() {
    for (name, init_s, weights_s, model_init, profile) in [
        ("serve-plain.log", 41.84, 0.02, "0.203", "0.57"),
        ("serve-otlp.log", 10.73, 0.01, "0.096", "0.25"),
    ] {
        let r = parse(&read(name));
        assert_eq!(r.table, "vllm-0.20..0.33", "{name}");
        assert_eq!(r.table_reason, "engine version 0.32.0", "{name}");
        assert_eq!(r.engine_version.as_deref(), Some("0.32.0"));
        assert_eq!(r.model.as_deref(), Some("tiny-llama"));
        let t = &r.timeline;
        // "init engine (profile, create kv cache, warmup model) took N s"
        assert_eq!(secs(t, K::InitEngine), init_s, "{name}");
        // "Loading weights took N seconds"
        assert_eq!(secs(t, K::WeightLoad), weights_s, "{name}");
        // "Initializing model took N seconds": a fact of the model load.
        assert_eq!(attr(t, K::ModelLoad, "model_init_s"), model_init, "{name}");
        // "Warming up model for the compilation..." → "Warming up done.", with
        // "Initial profiling/warmup run took N s" inside it.
        assert_eq!(attr(t, K::Warmup, "profile_run_s"), profile, "{name}");
        assert_eq!(attr(t, K::InitEngine, "profile_run_s"), profile, "{name}");
        let w = t.get(K::Warmup).unwrap();
        let init = t.get(K::InitEngine).unwrap();
        assert!(
            w.start_ns.unwrap() >= init.start_ns.unwrap() - S,
            "{name}: {t:#?}"
        );
        assert!(w.end_ns.unwrap() <= init.end_ns.unwrap(), "{name}");
        // "CPU KV cache size: 524,288 tokens"
        assert_eq!(
            attr(t, K::KvCacheAllocation, "kv_tokens"),
            "524288",
            "{name}"
        );
        assert_eq!(t.get(K::KvCacheAllocation).unwrap().end_ns, init.end_ns);
        assert!(t.get(K::ApiReady).is_some(), "{name}");
        assert_eq!(r.unplaced_lines, 0, "{name}: {:?}", r.unplaced);
        assert_rows_disjoint(t);
    }
    // The cold start's warm-up is the compile (41 s of wall clock between its lines).
    let r = parse(&read("serve-plain.log"));
    assert_eq!(secs(&r.timeline, K::Warmup), 41.0);
}

#[test]
fn vllm032_chat_template_line_at_startup_is_no_first_request() {
    for name in ["serve-plain.log", "serve-otlp.log"] {
        let r = parse(&read(name));
        // 0.32 prints "Detected the chat template content format" before "Starting
        // vLLM server on"; it logs the requests themselves only as untimed access lines.
        assert!(
            r.timeline.get(K::FirstRequest).is_none(),
            "{name}: {:#?}",
            r.timeline
        );
        assert_eq!(r.timeline.until(K::FirstRequest), None);
    }
    // The same wording after the server listens is a request.
    let mut text = read("serve-plain.log");
    text.push_str("(APIServer pid=6444) INFO 12-06 07:34:30 [hf.py:648] Detected the chat template content format to be 'string'.\n");
    let r = parse(&text);
    let first = r
        .timeline
        .get(K::FirstRequest)
        .expect("first request after server up");
    let ready = r.timeline.get(K::ApiReady).unwrap();
    assert_eq!(first.start_ns.unwrap() - ready.start_ns.unwrap(), 33 * S);
}

#[test]
fn vllm032_init_engine_without_parts_is_one_row_not_unattributed() {
    // The log as a GPU build in eager mode would print it: no warm-up or KV lines
    // inside init engine.
    let text: String = read("serve-plain.log")
        .lines()
        .filter(|l| !l.contains("Warming up") && !l.contains("KV cache size"))
        .map(|l| format!("{l}\n"))
        .collect();
    let r = parse(&text);
    let t = &r.timeline;
    assert!(t.get(K::Warmup).is_none() && t.get(K::KvCacheAllocation).is_none());
    assert!(t.rows().any(|p| p.kind == K::InitEngine), "{t:#?}");
    assert_rows_disjoint(t);
    let init = t.get(K::InitEngine).unwrap();
    for g in t.of(K::Unattributed) {
        let inside = g.end_ns.unwrap() > init.start_ns.unwrap()
            && g.start_ns.unwrap() < init.end_ns.unwrap();
        assert!(!inside, "unattributed {g:?} overlaps init engine {init:?}");
    }
    // The stacked bar (startup compare / startup run HTML) has init engine, and
    // adds up to first line → API ready.
    let c = compare(&[Labeled {
        label: "cpu".into(),
        parse: r.clone(),
    }]);
    let row = &c.rows[0];
    let init_bar = row
        .stack
        .iter()
        .find(|(k, _)| *k == K::InitEngine)
        .map(|(_, v)| *v);
    assert!((init_bar.unwrap() - 41.84).abs() < 0.01, "{:?}", row.stack);
    let unattributed: f64 = row
        .stack
        .iter()
        .filter(|(k, _)| *k == K::Unattributed)
        .map(|(_, v)| v)
        .sum();
    assert!(unattributed < 5.0, "{:?}", row.stack);
    let total = row.stacked_total.unwrap().mean;
    let span = t.until(K::ApiReady).unwrap();
    assert!(
        (total - span).abs() < 1.0,
        "bar {total} vs first line → ready {span}"
    );
}

#[test]
fn vllm032_unplaced_lines_are_flagged() {
    let mut text = read("serve-plain.log");
    // A duration no pattern knows, and a wording of the 0.10–0.11 band.
    text.push_str(
        "(Worker pid=7934) INFO 12-06 07:33:13 [x.py:1] Frobnicating the tensors took 1.50 s\n",
    );
    text.push_str("(Worker pid=7934) INFO 12-06 07:33:13 [gpu_model_runner.py:2] Model loading took 0.01 GiB and 0.50 seconds\n");
    let r = parse(&text);
    assert_eq!(r.table, "vllm-0.20..0.33");
    assert_eq!(r.unplaced_lines, 2, "{:?}", r.unplaced);
    assert!(
        r.unplaced[0].text.starts_with("Frobnicating"),
        "{:?}",
        r.unplaced
    );
    assert!(r.unplaced[0].why.contains("no pattern"));
    assert!(
        r.unplaced[1]
            .why
            .contains("another release band than vllm-0.20..0.33"),
        "{:?}",
        r.unplaced
    );
    // Lines without the logger header (progress bars, Python warnings) are no engine lines.
    assert!(r
        .unplaced
        .iter()
        .all(|u| !u.text.contains("Loading safetensors")));
}

#[test]
fn vllm032_startup_run_separates_its_own_polling_from_the_engine() {
    use servescope_coordinator::analysis::startup::SERVER_UP_NS;
    use servescope_coordinator::orchestration::startup_run::{
        merge, timeline_text, ClientTimes, RunOptions, AFTER_READY_S, CLIENT_SHARE_S, DEFAULT_POLL,
    };
    let log = parse(&read("serve-plain.log"));
    let ready = log.timeline.get(K::ApiReady).unwrap();
    // "Supported tasks:" (07:33:57) is the API-ready line; the server listens from
    // "Starting vLLM server on" (07:33:58, line 70).
    assert_eq!(ready.attrs["server_up_line"], "70");
    let up: i64 = ready.attrs[SERVER_UP_NS].parse().unwrap();
    assert_eq!(up - ready.start_ns.unwrap(), S);
    let at = |d_ms: i64| u64::try_from(up + d_ms * 1_000_000).unwrap();
    let c = ClientTimes {
        health_ok_ns: Some(at(180)),
        last_not_ready_ns: Some(at(80)),
        health_polls: 400,
        first_request_ns: Some(at(250)),
        first_token_ns: Some(at(300)),
        answer_ns: Some(at(320)),
        attempts: 1,
        ..Default::default()
    };
    let t = merge(&[log], &c, 1.0);
    let fr = t.get(K::FirstRequest).unwrap();
    assert_eq!(fr.attrs[AFTER_READY_S], "0.250");
    assert_eq!(fr.attrs[CLIENT_SHARE_S], "0.170");
    assert_eq!(fr.attrs["health_polls"], "400");
    let text = timeline_text(&t, c.answer_ns);
    assert!(
        text.contains(
            "first request: 0.250 s after the engine's server-up line (log clock, 1 s resolution); of that, at most 0.170 s is this client's"
        ),
        "{text}"
    );
    // The client polls often enough that its part stays a small fraction of a second.
    assert!(DEFAULT_POLL <= std::time::Duration::from_millis(100));
    let o = RunOptions::new("http://127.0.0.1:1", "m", ParseOptions::new(2026));
    assert_eq!(o.poll, DEFAULT_POLL);
}

#[test]
fn vllm032_kv_size_in_the_last_second_stays_a_fact() {
    let r = parse(&read("serve-startup-run.log"));
    let t = &r.timeline;
    assert_eq!(secs(t, K::InitEngine), 28.02);
    assert!(t.get(K::KvCacheAllocation).is_none(), "{t:#?}");
    assert_eq!(attr(t, K::InitEngine, "kv_tokens"), "524288");
    assert_eq!(r.unplaced_lines, 0, "{:?}", r.unplaced);
    assert!(t.get(K::FirstRequest).is_none());
    assert_rows_disjoint(t);
}
