//! Startup phases from log lines streamed by agents (`startup_log` events) match
//! the phases of the log file parsed directly.

use std::path::PathBuf;

use servescope_coordinator::analysis::startup::agent_logs::{self, KIND};
use servescope_coordinator::analysis::startup::{parse_file, LogParse, ParseOptions, Phase};
use servescope_coordinator::store::Offset;
use servescope_coordinator::store::RunKind;
use servescope_coordinator::Store;
use servescope_proto::v1::{sample, Event, Inventory, Sample};

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/vllm-startup-logs/llama70b-base.log")
}

fn opts() -> ParseOptions {
    let mut o = ParseOptions::new(2025);
    o.utc_offset_s = -7 * 3600;
    o
}

/// The agent's prefilter (`servescope_agent::collect::startup_watch::is_milestone`, plus the first
/// line and the first line naming the LLMServer replica, as its tails send them).
fn agent_filter(lines: &[&str]) -> Vec<String> {
    let (mut first, mut actor) = (false, false);
    let mut out = Vec::new();
    for l in lines {
        let f = !first && !l.trim().is_empty();
        let a = !actor && l.contains("LLMServer");
        if f || a || servescope_agent::collect::startup_watch::is_milestone(l) {
            first |= f;
            actor |= a;
            out.push(l.to_string());
        }
    }
    out
}

const SRC: &str = "/tmp/ray/session_latest/logs/worker-llama.out";

/// A store with one run, one agent ("node-a", offset 5 ms) and the given lines
/// as startup_log events (plus unrelated events), 10 ms apart from t0.
fn store_with(lines: &[String]) -> (Store, i64) {
    let mut st = Store::in_memory().unwrap();
    let run = st.create_run(RunKind::Record, "t", 1, "{}").unwrap();
    let inv = Inventory {
        hostname: "node-a".into(),
        agent_instance: 7,
        ..Default::default()
    };
    let agent = st.agent_id("10.0.0.1:7733", &inv).unwrap();
    st.add_run_agent(run, agent).unwrap();
    let off = Offset {
        offset_ns: 5_000_000,
        error_ns: 100,
        rtt_ns: 200,
        exchanges: 4,
    };
    st.save_offset(run, agent, 1, &off).unwrap();
    let t0 = 1_760_554_331_000_000_000u64;
    let ev = |seq: u64, kind: &str, source: &str, message: &str| Sample {
        seq,
        t_ns: t0 + seq * 10_000_000,
        collect_ns: 0,
        data: Some(sample::Data::Event(Event {
            kind: kind.into(),
            source: source.into(),
            message: message.into(),
            ..Default::default()
        })),
    };
    let mut samples = vec![ev(1, "xid", "kmsg", "Loading weights took 1.0 seconds")];
    for (i, l) in lines.iter().enumerate() {
        samples.push(ev(i as u64 + 2, KIND, SRC, l));
        if i == 3 {
            // Another file interleaved.
            samples.push(ev(
                100_000,
                KIND,
                "/other.log",
                "INFO 10-15 12:00:00 [x.py:1] Added request a.",
            ));
        }
    }
    st.save_samples(run, agent, &samples).unwrap();
    (st, run)
}

/// (kind, start, end, seconds) of a phase.
type Shape = (String, Option<i64>, Option<i64>, Option<String>);

fn shape(p: &LogParse) -> Vec<Shape> {
    p.timeline
        .phases
        .iter()
        .map(|ph: &Phase| {
            (
                ph.kind.name().to_string(),
                ph.start_ns,
                ph.end_ns,
                ph.seconds().map(|s| format!("{s:.3}")),
            )
        })
        .collect()
}

fn streamed(lines: &[String]) -> Vec<agent_logs::AgentLogParse> {
    let (st, run) = store_with(lines);
    agent_logs::parse_run(&st, run, &opts()).unwrap()
}

#[test]
fn startup_agent_logs_all_lines_match_the_file() {
    let direct = parse_file(&fixture(), opts()).unwrap();
    let text = std::fs::read_to_string(fixture()).unwrap();
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    let got = streamed(&lines);
    assert_eq!(
        got.len(),
        2,
        "{:?}",
        got.iter().map(|g| &g.source).collect::<Vec<_>>()
    );
    let r = got.iter().find(|g| g.source == SRC).unwrap();
    assert_eq!(r.parse.name, format!("node-a:{SRC}"));
    assert_eq!(r.parse.timeline.host.as_deref(), Some("node-a"));
    assert_eq!(r.parse.timeline.clock_offset_ns, -5_000_000);
    assert_eq!(r.parse.table, direct.table);
    assert_eq!(r.parse.model, direct.model);
    assert!(!direct.timeline.phases.is_empty());
    assert_eq!(shape(&r.parse), shape(&direct));
    // Same evidence lines, and the agent's receive time of the last one.
    for (a, b) in r.parse.timeline.phases.iter().zip(&direct.timeline.phases) {
        assert_eq!(a.lines, b.lines, "{}", a.kind.name());
        if let Some(&n) = a.lines.iter().max() {
            let want = 1_760_554_331_000_000_000u64 + (n as u64 + 1) * 10_000_000;
            assert_eq!(
                a.attrs.get("agent_t_ns"),
                Some(&want.to_string()),
                "{}",
                a.kind.name()
            );
        }
    }
    assert_eq!(r.first_t_ns, Some(1_760_554_331_020_000_000));
}

#[test]
fn startup_agent_logs_prefiltered_lines_give_the_same_phases() {
    let direct = parse_file(&fixture(), opts()).unwrap();
    let text = std::fs::read_to_string(fixture()).unwrap();
    let all: Vec<&str> = text.lines().collect();
    let kept = agent_filter(&all);
    assert!(
        kept.len() < all.len() / 2,
        "{} of {}",
        kept.len(),
        all.len()
    );
    let got = streamed(&kept);
    let r = got.iter().find(|g| g.source == SRC).unwrap();
    assert_eq!(r.parse.table, direct.table);
    assert_eq!(shape(&r.parse), shape(&direct));
}

#[test]
fn startup_agent_logs_prefilter_keeps_phases_of_every_fixture() {
    let dir = fixture().parent().unwrap().to_path_buf();
    let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    names.sort();
    assert!(names.len() >= 3);
    for p in names {
        let direct = parse_file(&p, opts()).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        let all: Vec<&str> = text.lines().collect();
        let got = streamed(&agent_filter(&all));
        let r = got.iter().find(|g| g.source == SRC).unwrap();
        assert_eq!(r.parse.table, direct.table, "{}", p.display());
        assert_eq!(shape(&r.parse), shape(&direct), "{}", p.display());
    }
}
