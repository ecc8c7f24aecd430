//! Property tests on the startup-log fixtures (tests/fixtures/vllm-startup-logs):
//! shuffled rank interleavings, duplicated Ray echoes, garbage lines, truncated
//! last lines and missing phases never panic and never invent a phase. The PRNG is
//! a fixed-seed splitmix64, so failures reproduce.

use std::collections::{BTreeMap, BTreeSet};

use servescope_coordinator::analysis::startup::{
    line, parse_reader, parse_str, LogParse, PhaseKind as K,
};

mod startup_common;
use startup_common::{dir, opts, parse, FILES};

fn read(name: &str) -> String {
    std::fs::read_to_string(dir().join(name)).unwrap()
}

struct Rng(u64);

/// Fixed seeds; `STARTUP_PROP_SEED=N` explores others.
fn rng(base: u64) -> Rng {
    let extra = std::env::var("STARTUP_PROP_SEED")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(0);
    Rng(base ^ extra.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

impl Rng {
    fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

type Sig = BTreeMap<K, (Option<i64>, Option<i64>, Option<i64>)>;

/// Phases other than gaps, with times and durations (ms).
fn sig(r: &LogParse) -> Sig {
    r.timeline
        .phases
        .iter()
        .filter(|p| p.kind != K::Unattributed)
        .map(|p| {
            (
                p.kind,
                (
                    p.start_ns,
                    p.end_ns,
                    p.duration_s.map(|d| (d * 1000.0).round() as i64),
                ),
            )
        })
        .collect()
}

fn kinds(r: &LogParse) -> BTreeSet<K> {
    sig(r).into_keys().collect()
}

fn lines_of(text: &str) -> Vec<String> {
    text.lines().map(str::to_string).collect()
}

fn run(lines: &[String]) -> LogParse {
    parse_str(&lines.join("\n"), "variant", opts())
}

#[test]
fn startup_prop_shuffled_rank_interleavings() {
    let mut rng = rng(1);
    for f in FILES {
        let full = parse(f);
        let mut queues: BTreeMap<u64, Vec<String>> = BTreeMap::new();
        for l in lines_of(&read(f)) {
            let pid = line::parse(&l).procs.last().map_or(0, |p| p.pid);
            queues.entry(pid).or_default().push(l);
        }
        for _ in 0..20 {
            let mut q: Vec<std::collections::VecDeque<String>> = queues
                .values()
                .map(|v| v.iter().cloned().collect())
                .collect();
            let mut out = Vec::new();
            while q.iter().any(|x| !x.is_empty()) {
                let live: Vec<usize> = (0..q.len()).filter(|i| !q[*i].is_empty()).collect();
                let i = live[rng.below(live.len())];
                out.extend(q[i].pop_front());
            }
            assert_eq!(sig(&run(&out)), sig(&full), "{f}");
        }
    }
}

#[test]
fn startup_prop_duplicated_echoes_and_garbage() {
    let mut rng = rng(2);
    let garbage = [
        "",
        "(",
        "((((pid=",
        "(RayWorkerWrapper pid=) INFO 10-15 11:52:11 [a.py:1] Loading weights took seconds",
        "INFO 13-45 99:99:99 [x.py:1] Model loading took 3 GiB and",
        "Graph capturing finished in x secs, took GiB",
        "torch.compile takes s in total",
        "[repeated 3x across cluster]",
        "\u{1b}[36m\u{1b}[0m\u{1b}",
        "é漢字 (pid=1) ∞ init engine (profile, create kv cache, warmup model) took",
    ];
    for f in FILES {
        let full = parse(f);
        let base = lines_of(&read(f));
        for round in 0..15 {
            let mut out = base.clone();
            for _ in 0..30 {
                let i = rng.below(base.len());
                let l = &base[i];
                let p = line::parse(l);
                let worker = p
                    .procs
                    .last()
                    .is_some_and(|x| x.name.is_empty() || x.name.starts_with("RayWorker"));
                let copy = match rng.below(3) {
                    // The engine core's echo of a worker line.
                    0 if worker => format!(
                        "(ServeReplica:default:LLMServer:llama pid=9) (EngineCore_DP0 pid=8) {l}"
                    ),
                    1 => format!("{l} [repeated 3x across cluster]"),
                    _ => l.clone(),
                };
                // After the original, as Ray's echoes are.
                let pos = i + out[i..].iter().position(|x| x == l).unwrap_or(0);
                let at = pos + 1 + rng.below(out.len() - pos);
                out.insert(at, copy);
            }
            for _ in 0..20 {
                let g = if rng.below(2) == 0 {
                    garbage[rng.below(garbage.len())].to_string()
                } else {
                    (0..rng.below(300))
                        .map(|_| char::from(32 + rng.below(95) as u8))
                        .collect()
                };
                let at = rng.below(out.len() + 1);
                out.insert(at, g);
            }
            if round == 0 {
                out.insert(5, "x".repeat(70 * 1024));
            }
            let r = run(&out);
            assert_eq!(sig(&r), sig(&full), "{f} round {round}");
            if round == 0 {
                assert_eq!(r.long_lines_skipped, 1);
                assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
            }
        }
        // Raw bytes, invalid UTF-8 included, through the reader.
        let mut bytes = read(f).into_bytes();
        for _ in 0..50 {
            let at = rng.below(bytes.len());
            if bytes[at] == b'\n' {
                let junk: Vec<u8> = (0..rng.below(40))
                    .map(|_| (rng.next() & 0xff) as u8)
                    .filter(|b| *b != b'\n')
                    .collect();
                bytes.splice(at + 1..at + 1, junk.into_iter().chain([b'\n']));
            }
        }
        let r = parse_reader(&bytes[..], "bytes", opts()).unwrap();
        assert_eq!(sig(&r), sig(&full), "{f} bytes");
    }
}

#[test]
fn startup_prop_truncation_and_missing_phases_never_invent() {
    let mut rng = rng(3);
    let needles: [(&str, Option<K>); 14] = [
        ("Graph capturing finished", Some(K::CudaGraphCapture)),
        ("torch.compile takes", Some(K::TorchCompile)),
        ("Loading weights took", Some(K::WeightLoad)),
        ("Model loading took", Some(K::ModelLoad)),
        ("Time spent downloading", Some(K::WeightDownload)),
        ("Dynamo bytecode", Some(K::DynamoTransform)),
        ("Compiling a graph", Some(K::InductorCompile)),
        ("Directly load the compiled", Some(K::CompileCacheLoad)),
        ("init engine", Some(K::InitEngine)),
        ("Overall time to stream", Some(K::WeightStreaming)),
        ("Supported tasks", Some(K::ApiReady)),
        ("Available KV cache memory", Some(K::MemoryProfiling)),
        ("Starting to load model", None),
        ("LLMServer", Some(K::ActorStart)),
    ];
    for f in FILES {
        let full = kinds(&parse(f));
        let text = read(f);
        // Truncated anywhere (the last line is partial).
        for _ in 0..40 {
            let mut cut = rng.below(text.len());
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            let r = parse_str(&text[..cut], "cut", opts());
            assert!(
                kinds(&r).is_subset(&full),
                "{f} cut at {cut}: {:?} ⊄ {full:?}",
                kinds(&r)
            );
        }
        // Lines removed: whole phases, or at random.
        let base = lines_of(&text);
        for (needle, kind) in needles {
            let kept: Vec<String> = base
                .iter()
                .filter(|l| !l.contains(needle))
                .cloned()
                .collect();
            let got = kinds(&run(&kept));
            assert!(
                got.is_subset(&full),
                "{f} without {needle:?}: {got:?} ⊄ {full:?}"
            );
            if let Some(k) = kind {
                assert!(!got.contains(&k), "{f} without {needle:?} still has {k:?}");
            }
        }
        for _ in 0..30 {
            let kept: Vec<String> = base.iter().filter(|_| rng.below(4) != 0).cloned().collect();
            let got = kinds(&run(&kept));
            assert!(
                got.is_subset(&full),
                "{f} random deletion: {got:?} ⊄ {full:?}"
            );
        }
    }
    // Nothing in, nothing out.
    assert!(parse_str("", "empty", opts()).timeline.phases.is_empty());
    assert!(parse_str("hello\nworld\n", "noise", opts())
        .timeline
        .phases
        .is_empty());
}

#[test]
fn startup_prop_random_text_never_panics() {
    let mut rng = rng(4);
    let alphabet: Vec<char> = "0123456789 .:,-()[]=_'/xsTPpidINFOtook seconds GiB\u{1b}é漢\t"
        .chars()
        .collect();
    let templates = servescope_coordinator::analysis::startup::patterns::PATTERNS;
    for _ in 0..2000 {
        let mut l = String::new();
        // Often start from a real template with its holes filled with junk.
        if rng.below(2) == 0 {
            let t = templates[rng.below(templates.len())].template;
            for part in t.split('{') {
                let rest = part.split_once('}').map_or(part, |(_, r)| r);
                for _ in 0..rng.below(6) {
                    l.push(alphabet[rng.below(alphabet.len())]);
                }
                l.push_str(rest);
            }
        } else {
            for _ in 0..rng.below(200) {
                l.push(alphabet[rng.below(alphabet.len())]);
            }
        }
        let text = format!("(RayWorkerWrapper pid=7) INFO 10-15 11:52:11 [a.py:1] {l}\n{l}\n");
        let r = parse_str(&text, "fuzz", opts());
        for p in &r.timeline.phases {
            assert!(
                p.duration_s.is_none_or(|d| d.is_finite() && d >= 0.0),
                "{p:?} from {l:?}"
            );
        }
    }
}
